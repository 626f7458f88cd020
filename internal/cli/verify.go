package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/npmir/npmir/internal/forensics"
	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/state"
)

// VerifyOptions are the inputs of `npmir verify`.
type VerifyOptions struct {
	IO          *IOStreams
	Factory     *Factory
	Specs       []string
	Since       string
	KnownGood   []string
	Rules       string
	Incident    string
	NoEvidence  bool
	Concurrency int
	Output      OutputOptions
	Registry    RegistryOptions
}

func newVerifyCmd(f *Factory) *cobra.Command {
	opts := &VerifyOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "verify <package>[@version]... [--since T]",
		Short: "Show what suspect versions changed against the last known-good, with verdicts and reasons",
		Long: `Compare each suspect version with the last known-good release and judge it: malicious,
suspicious or clean, with every reason and the id of each rule that fired.

It fetches the packument and the tarballs, checks each tarball against dist.integrity and
shasum, reads the archives safely in memory (never extracting, never running anything,
with limits against tar bombs), diffs files and package.json (lifecycle scripts, new
dependencies, bin, main), and applies the embedded indicator rules (Shai-Hulud 1 and 2,
chalk/debug, nx, event-stream, generic signals) plus --rules FILE.

The packument and the suspect tarballs are preserved as evidence in the incident folder
(<state_dir>/<incident>/evidence, with a SHA-256 manifest) and recorded in the audit log,
unless --no-evidence. Re-running adds nothing already preserved. The registry is only read.`,
		Example: `  npmir verify debug@4.4.2
  npmir verify @ctrl/tinycolor --since 2025-09-15T00:00:00Z --output markdown > verify.md
  npmir verify posthog-node@5.11.3 --rules extra-iocs.yaml --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Specs = args
			if err := opts.Output.validate(); err != nil {
				return err
			}
			if opts.Output.Format == "html" {
				return &usageError{"verify prints text, json or markdown"}
			}
			if len(args) == 0 {
				return &usageError{"name at least one package: name@version, or name with --since"}
			}
			return verifyRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Since, "since", "", "with bare names: every version published at or after T is suspect")
	fl.StringArrayVar(&opts.KnownGood, "known-good", nil, "the version to compare with (V, or name@V); derived when absent")
	fl.StringVar(&opts.Rules, "rules", "", "a rules file (YAML or JSON) merged over the embedded rules")
	fl.StringVar(&opts.Incident, "incident", "", "incident id (default derived from the packages, as contain derives it)")
	fl.BoolVar(&opts.NoEvidence, "no-evidence", false, "do not preserve packuments and tarballs")
	fl.IntVar(&opts.Concurrency, "concurrency", 0, "packages verified at once (default from config, else 8)")
	opts.Output.AddFlags(cmd)
	opts.Registry.AddFlags(cmd)
	return cmd
}

func verifyRun(ctx context.Context, opts *VerifyOptions) error {
	f := opts.Factory
	spec, err := incident.Build(incident.Options{Specs: opts.Specs, Since: opts.Since, KnownGood: opts.KnownGood, IncidentID: opts.Incident, Rules: opts.Rules, Now: f.Now()})
	if err != nil {
		return err
	}
	rules := forensics.DefaultRules()
	if opts.Rules != "" {
		if rules, err = forensics.LoadRules(opts.Rules); err != nil {
			return &usageError{fmt.Sprintf("--rules: %v", err)}
		}
	}
	client, token, err := f.NPM(opts.Registry)
	if err != nil {
		return err
	}
	var (
		store *state.EvidenceStore
		audit *state.Audit
	)
	dir := state.Dir(f.StateDir(), spec.ID)
	if !opts.NoEvidence {
		// Take the incident's lock: a contain of the same incident may be preserving the same
		// evidence right now.
		lock, err := state.Open(filepath.Join(dir, "state.json"))
		if err != nil {
			return err
		}
		defer lock.Close()
		if store, err = state.OpenEvidence(dir); err != nil {
			return err
		}
		if audit, err = state.OpenAudit(filepath.Join(dir, "audit.jsonl")); err != nil {
			return err
		}
		defer audit.Close()
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = f.Concurrency()
	}
	reports := make([]*forensics.Report, len(spec.Targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, t := range spec.Targets {
		g.Go(func() error {
			req := forensics.Request{Package: t.Name, Versions: t.Versions, KnownGood: spec.KnownGood[t.Name], Rules: rules, Now: f.Now}
			if spec.Since != nil {
				req.Since = *spec.Since
			}
			if store != nil {
				req.Evidence = store
			}
			rep, err := forensics.Verify(gctx, client, req)
			if errors.Is(err, npmreg.ErrNotFound) {
				return &usageError{fmt.Sprintf("package %s does not exist on %s (check the name; scoped names are written @scope/name)", t.Name, client.Registry())}
			}
			if err != nil {
				return err
			}
			reports[i] = rep
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return redactErr(err, token)
	}
	if audit != nil {
		for _, rep := range reports {
			for _, ev := range rep.Evidence {
				if err := audit.Append(state.AuditRecord{Incident: spec.ID, Event: "evidence", Detail: fmt.Sprintf("%s %s %s sha256:%s", ev.Kind, rep.Package, ev.Path, ev.SHA256)}); err != nil {
					return err
				}
			}
		}
		opts.IO.Printf("Evidence: %s (manifest.json lists each file's SHA-256)\n", store.Dir())
	}
	switch opts.Output.Format {
	case "json":
		return forensics.WriteJSON(opts.IO.Out, reports...)
	case "markdown":
		for _, rep := range reports {
			if err := forensics.WriteMarkdown(opts.IO.Out, rep); err != nil {
				return err
			}
		}
		return nil
	}
	for _, rep := range reports {
		if err := forensics.WriteText(opts.IO.Out, rep, opts.IO.ColorOut()); err != nil {
			return err
		}
	}
	return nil
}

// redactErr scrubs the token from an error's text while keeping its cause for the exit code.
func redactErr(err error, token string) error {
	if token == "" || err == nil {
		return err
	}
	return &redactedError{err: err, token: token}
}

type redactedError struct {
	err   error
	token string
}

func (e *redactedError) Error() string {
	if len(e.token) < 4 {
		return e.err.Error()
	}
	return strings.ReplaceAll(e.err.Error(), e.token, "[redacted]")
}

func (e *redactedError) Unwrap() error { return e.err }
