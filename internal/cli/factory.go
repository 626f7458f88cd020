package cli

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/npmir/npmir/internal/forensics"
	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/steps"
)

// Factory holds what commands share, built lazily so `npmir version` never reads config.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string
	Now    func() time.Time
	// HTTPClient, when set, replaces the registry client's transport (tests).
	HTTPClient *http.Client
	// OnRequest, when set, sees every registry request (tests count writes with it).
	OnRequest func(method, path string)

	configFile string
	v          *viper.Viper
}

// Config returns the merged configuration: flags > NPMIR_* variables > config file > defaults.
// The file is --config, else $XDG_CONFIG_HOME/npmir/config.yaml when it exists.
func (f *Factory) Config() (*viper.Viper, error) {
	if f.v != nil {
		return f.v, nil
	}
	v := viper.New()
	v.SetDefault("registry", npmreg.DefaultRegistry)
	v.SetDefault("state_dir", ".npmir")
	v.SetDefault("concurrency", 8)
	v.SetDefault("npm.token_env", "NPM_TOKEN")
	path := f.configFile
	if path == "" {
		base := f.Getenv("XDG_CONFIG_HOME")
		if base == "" && f.Getenv("HOME") != "" {
			base = filepath.Join(f.Getenv("HOME"), ".config")
		}
		if candidate := filepath.Join(base, "npmir", "config.yaml"); base != "" && fileExists(candidate) {
			path = candidate
		}
	}
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return nil, &usageError{fmt.Sprintf("config %s: %v", path, err)}
		}
	}
	// Variables override the file (viper's Set layer); flags are applied by each command on top.
	// getenv is injected rather than viper.AutomaticEnv so tests control the environment.
	for _, k := range []string{"registry", "state_dir", "concurrency"} {
		if val := f.Getenv("NPMIR_" + strings.ToUpper(k)); val != "" {
			v.Set(k, val)
		}
	}
	f.v = v
	return v, nil
}

// RegistryOptions are the flags every registry-touching command shares.
type RegistryOptions struct {
	Registry      string
	OTP           string
	AllowInsecure bool
	Timeout       time.Duration
}

// NPM builds the registry client. The token comes from the variable named by npm.token_env
// (default NPM_TOKEN), else from the .npmrc line npm itself would use for this registry.
func (f *Factory) NPM(ro RegistryOptions) (*npmreg.Client, string, error) {
	v, err := f.Config()
	if err != nil {
		return nil, "", err
	}
	reg := ro.Registry
	if reg == "" {
		reg = v.GetString("registry")
	}
	token := f.Getenv(v.GetString("npm.token_env"))
	if token == "" {
		npmrc := f.Getenv("NPM_CONFIG_USERCONFIG")
		if npmrc == "" && f.Getenv("HOME") != "" {
			npmrc = filepath.Join(f.Getenv("HOME"), ".npmrc")
		}
		if npmrc != "" {
			token = npmreg.TokenFromNpmrc(npmrc, reg)
		}
	}
	otp := ro.OTP
	if otp == "" {
		otp = f.Getenv("NPMIR_NPM_OTP")
	}
	c, err := npmreg.New(npmreg.Options{Registry: reg, Token: token, OTP: otp, AllowInsecure: ro.AllowInsecure || v.GetBool("allow_insecure"), Timeout: ro.Timeout, HTTPClient: f.HTTPClient})
	if err != nil {
		return nil, "", err
	}
	c.OnRequest = f.OnRequest
	if f.IO.CanPrompt() {
		c.OTPPrompt = func(ctx context.Context) (string, error) {
			return f.IO.AskSecret(fmt.Sprintf("One-time password for %s: ", c.Registry()))
		}
	}
	return c, token, nil
}

// StateDir is where incident folders live.
func (f *Factory) StateDir() string {
	v, err := f.Config()
	if err != nil {
		return ".npmir"
	}
	return v.GetString("state_dir")
}

// Concurrency is the configured default concurrency.
func (f *Factory) Concurrency() int {
	v, err := f.Config()
	if err != nil {
		return 8
	}
	return v.GetInt("concurrency")
}

// stepsEnv builds what the step kinds use for one incident: providers, the leaked token values
// named by the spec (read from the environment now, never stored), and configured allowlists.
func (f *Factory) stepsEnv(spec *incident.Spec, client *npmreg.Client, dir string, conc int) (*steps.Env, error) {
	v, err := f.Config()
	if err != nil {
		return nil, err
	}
	env := &steps.Env{Spec: spec, NPM: client, Now: f.Now, IncidentDir: dir, Concurrency: conc,
		TokensCreatedAfter: spec.TokensCreatedAfter, TrustAllow: v.GetStringSlice("npm.trusted_publishers_allow")}
	if spec.Rules != "" {
		rules, err := forensics.LoadRules(spec.Rules)
		if err != nil {
			return nil, &usageError{fmt.Sprintf("--rules: %v", err)}
		}
		env.Rules = rules
	}
	if f.IO.CanPrompt() {
		env.Confirm = func(q string) (bool, error) {
			ans, err := f.IO.Ask(q)
			return strings.EqualFold(ans, "y") || strings.EqualFold(ans, "yes"), err
		}
	}
	for _, name := range spec.LeakedTokenEnv {
		val := f.Getenv(name)
		if val == "" {
			return nil, &usageError{fmt.Sprintf("--leaked-token-env %s: the variable is empty or unset", name)}
		}
		env.LeakedTokens = append(env.LeakedTokens, val)
	}
	return env, nil
}
