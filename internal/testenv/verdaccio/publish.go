package verdaccio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/testenv/npmpkg"
)

// Publish puts one version the way `npm publish --tag tag` does, over HTTP (fast: seeding many
// packages with the npm client would take a second each).
func (s *Server) Publish(ctx context.Context, p npmpkg.Package, tag string) error {
	return s.PublishDocument(ctx, p.Name, p.PublishDocument(s.URL, tag))
}

// PublishDocument PUTs a publish document as is (tests tamper with one before sending it).
func (s *Server) PublishDocument(ctx context.Context, name string, doc map[string]any) error {
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+npmreg.PathEscape(name), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("publish %s: verdaccio said %d %s", name, resp.StatusCode, b)
	}
	return nil
}

// SetTag points a dist-tag at a version over HTTP.
func (s *Server) SetTag(ctx context.Context, name, tag, version string) error {
	body, _ := json.Marshal(version)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+"-/package/"+npmreg.PathEscape(name)+"/dist-tags/"+tag, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("dist-tag %s %s: verdaccio said %d", name, tag, resp.StatusCode)
	}
	return nil
}

// Npm runs the real npm client against this registry with an isolated HOME and cache, in dir.
func (s *Server) Npm(ctx context.Context, dir string, args ...string) (string, error) {
	full := append([]string{"--registry", s.URL, "--userconfig", s.Npmrc, "--cache", filepath.Join(s.Dir, "npm-cache"), "--no-audit", "--no-fund", "--no-update-notifier"}, args...)
	cmd := exec.CommandContext(ctx, "npm", full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+s.Dir, "npm_config_loglevel=error")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("npm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// NpmPublish writes p to a folder and publishes it with the real npm client.
func (s *Server) NpmPublish(ctx context.Context, p npmpkg.Package, tag string) error {
	dir, err := os.MkdirTemp(s.Dir, "pkg-")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), p.PackageJSON(), 0o644); err != nil {
		return err
	}
	for name, data := range p.Files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	_, err = s.Npm(ctx, dir, "publish", "--tag", tag, "--ignore-scripts")
	return err
}
