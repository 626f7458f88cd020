// Command demo is `make demo`: it starts the pinned Verdaccio on 127.0.0.1, seeds a package whose
// maintainer account was "hijacked" (good 1.0.0 and 1.1.0, bad 1.1.1 on latest and next), runs
// npmir plan and npmir contain against it, shows what the real npm client now sees, and cleans up.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/npmir/npmir/internal/testenv/verdaccio"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	root, err := verdaccio.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "npmir-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	say("Starting Verdaccio 6.8.0 on 127.0.0.1 …")
	s, err := verdaccio.Start(ctx, verdaccio.Options{Dir: filepath.Join(work, "verdaccio"), Root: root})
	if err != nil {
		return err
	}
	defer s.Stop()
	say("Seeding demo-pkg: 1.0.0, 1.1.0 (good), 1.1.1 (published by the hijacked account, tagged latest and next) …")
	if err := s.SeedCompromised(ctx, "demo-pkg", true); err != nil {
		return err
	}
	show(s, work, "npm view demo-pkg dist-tags (before)", "view", "demo-pkg", "dist-tags")

	bin := filepath.Join(root, "bin", "npmir")
	npmir := func(args ...string) error {
		say("$ npmir " + strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, bin, append(args, "--registry", s.URL)...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "NPM_TOKEN="+s.Token, "NPMIR_STATE_DIR="+filepath.Join(work, ".npmir"))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd.Run()
	}
	if err := npmir("verify", "demo-pkg@1.1.1", "--incident", "demo-001"); err != nil {
		return err
	}
	if err := npmir("plan", "demo-pkg@1.1.1", "--incident", "demo-001", "--output", "markdown"); err != nil {
		return err
	}
	if err := npmir("contain", "demo-pkg@1.1.1", "--incident", "demo-001", "--yes", "--output", "markdown"); err != nil {
		return err
	}
	show(s, work, "npm view demo-pkg dist-tags (after)", "view", "demo-pkg", "dist-tags")
	show(s, work, "npm view demo-pkg@1.1.1 deprecated (after)", "view", "demo-pkg@1.1.1", "deprecated")
	say("Re-running the same contain changes nothing (every op reported done):")
	if err := npmir("contain", "demo-pkg@1.1.1", "--incident", "demo-001", "--yes", "--output", "json"); err != nil {
		return err
	}
	// A consumer that locked the bad version before the freeze: inventory finds it (exit 1).
	app := filepath.Join(work, "consumer-app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		return err
	}
	lock := `{"name":"consumer-app","lockfileVersion":3,"requires":true,"packages":{"":{"name":"consumer-app","dependencies":{"demo-pkg":"^1.1.0"}},"node_modules/demo-pkg":{"version":"1.1.1"}}}`
	if err := os.WriteFile(filepath.Join(app, "package-lock.json"), []byte(lock), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name":"consumer-app","dependencies":{"demo-pkg":"^1.1.0"}}`), 0o644); err != nil {
		return err
	}
	say("$ npmir inventory --incident demo-001 consumer-app   (exit 1 means consumers were found)")
	inv := exec.CommandContext(ctx, bin, "inventory", "--incident", "demo-001", app)
	inv.Dir = work
	inv.Env = append(os.Environ(), "NPMIR_STATE_DIR="+filepath.Join(work, ".npmir"))
	inv.Stdout, inv.Stderr = os.Stdout, os.Stderr
	_ = inv.Run()
	audit, _ := os.ReadFile(filepath.Join(work, ".npmir", "demo-001", "audit.jsonl"))
	say(fmt.Sprintf("The audit log has %d hash-chained lines. Stopping Verdaccio and cleaning up.", strings.Count(string(audit), "\n")))
	say("Next: `bin/npmir rehearse` runs the whole runbook against a simulated worm incident (300 packages: --packages 300 --affected 40).")
	return nil
}

func say(s string) { fmt.Printf("\n\x1b[1m== %s\x1b[0m\n", s) }

func show(s *verdaccio.Server, dir, title string, args ...string) {
	out, err := s.Npm(context.Background(), dir, args...)
	say(title)
	if err != nil {
		fmt.Println(err)
	}
	fmt.Print(out)
}
