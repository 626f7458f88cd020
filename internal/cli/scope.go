package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/npmir/npmir/internal/engine"
	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/steps"
)

// ScopeOptions are the inputs of `npmir scope`.
type ScopeOptions struct {
	IO          *IOStreams
	Factory     *Factory
	Maintainer  string
	Since       string
	Concurrency int
	Output      OutputOptions
	Registry    RegistryOptions
}

func newScopeCmd(f *Factory) *cobra.Command {
	opts := &ScopeOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "scope --maintainer USER --since T",
		Short: "List every package an account can publish and what it published since T (read-only)",
		Long: `Measure the blast radius of a compromised account before acting: every package the
account (or @org) can publish, from the registry's user or org listing (falling back to a
maintainer search where the listing is not served), and for each the versions published at
or after T. Nothing is changed. ` + "`npmir contain --maintainer USER --since T`" + ` acts on the
same list.`,
		Example: "  npmir scope --maintainer maint-compromised --since 2025-11-24T00:00:00Z\n  npmir scope --maintainer @ctrl --since 36h --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Output.validate(); err != nil {
				return err
			}
			if opts.Maintainer == "" || opts.Since == "" {
				return &usageError{"scope needs --maintainer USER and --since T"}
			}
			return scopeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Maintainer, "maintainer", "", "the compromised account, or @org")
	cmd.Flags().StringVar(&opts.Since, "since", "", "versions published at or after T count (RFC 3339, a date, or 36h/2d ago)")
	cmd.Flags().IntVar(&opts.Concurrency, "concurrency", 0, "packuments read at once (default from config, else 8)")
	opts.Output.AddFlags(cmd)
	opts.Registry.AddFlags(cmd)
	return cmd
}

// ScopeReport is the JSON document of `npmir scope`.
type ScopeReport struct {
	SchemaVersion int            `json:"schema_version"`
	Kind          string         `json:"kind"` // npmir.scope
	Maintainer    string         `json:"maintainer"`
	Since         string         `json:"since"`
	Source        string         `json:"source"`
	Registry      string         `json:"registry"`
	Packages      int            `json:"packages"`
	Affected      []ScopeAffects `json:"affected"`
	Warning       string         `json:"warning,omitempty"`
}

// ScopeAffects is one package with versions since T.
type ScopeAffects struct {
	Package   string   `json:"package"`
	Versions  []string `json:"versions"`
	KnownGood string   `json:"known_good,omitempty"`
}

func scopeRun(ctx context.Context, opts *ScopeOptions) error {
	f := opts.Factory
	spec, err := incident.Build(incident.Options{Maintainer: opts.Maintainer, Since: opts.Since, Now: f.Now()})
	if err != nil {
		return err
	}
	client, _, err := f.NPM(opts.Registry)
	if err != nil {
		return err
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = f.Concurrency()
	}
	env := &steps.Env{Spec: spec, NPM: client, Concurrency: conc}
	p := &printer{io: opts.IO, out: opts.Output, eng: &engine.Engine{Env: env}}
	stop := p.readProgress(env)
	err = steps.Resolve(ctx, env)
	stop()
	if err != nil {
		return err
	}
	rep := ScopeReport{SchemaVersion: 1, Kind: "npmir.scope", Maintainer: opts.Maintainer, Since: spec.Since.Format("2006-01-02T15:04:05Z"),
		Source: env.Scope.Source, Registry: client.Registry(), Packages: len(env.Scope.Packages), Affected: []ScopeAffects{}}
	for _, t := range env.Affected() {
		rep.Affected = append(rep.Affected, ScopeAffects{Package: t.Name, Versions: t.Bad, KnownGood: t.KnownGood})
	}
	if env.Scope.Source == "search" && len(env.Scope.Packages) == 0 {
		rep.Warning = "the registry serves no package listing for this account and its search found nothing; that is not proof the account owns nothing (Verdaccio, for one, does not index maintainers)"
	}
	if opts.Output.Format == "json" {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(opts.IO.Out, "%s can publish %d package(s) (registry %s listing); %d have versions published since %s\n",
		rep.Maintainer, rep.Packages, rep.Source, len(rep.Affected), rep.Since)
	if rep.Warning != "" {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", rep.Warning)
	}
	if len(rep.Affected) > 0 {
		w := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "\nPACKAGE\tVERSIONS SINCE T\tKNOWN-GOOD")
		for _, a := range rep.Affected {
			fmt.Fprintf(w, "%s\t%s\t%s\n", a.Package, strings.Join(a.Versions, ", "), a.KnownGood)
		}
		return w.Flush()
	}
	return nil
}
