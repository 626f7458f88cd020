package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/npmir/npmir/internal/engine"
	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/state"
)

// ResumeOptions are the inputs of `npmir resume`.
type ResumeOptions struct {
	IO          *IOStreams
	Factory     *Factory
	Incident    string
	StatePath   string
	Yes         bool
	Concurrency int
	Output      OutputOptions
	Registry    RegistryOptions
}

func newResumeCmd(f *Factory, runF func(*ResumeOptions) error) *cobra.Command {
	opts := &ResumeOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "resume [--incident ID | --state PATH]",
		Short: "Finish an interrupted incident from its state file",
		Long: `Continue an incident where it stopped. Ops already done are skipped; an op that was
started but not recorded as finished is first checked against the registry (did the
write land?) and only retried if it did not. The plan is the one recorded when the
incident started; the runbook file is not re-read.`,
		Example: "  npmir resume --incident inc-demo-pkg-1a2b3c4d --yes\n  npmir resume --state /var/lib/npmir/inc-42/state.json --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Output.validate(); err != nil {
				return err
			}
			if opts.StatePath == "" {
				if opts.Incident == "" {
					return &usageError{"name the incident: --incident ID or --state PATH (see `ls " + f.StateDir() + "`)"}
				}
				opts.StatePath = filepath.Join(state.Dir(f.StateDir(), opts.Incident), "state.json")
			}
			if runF != nil {
				return runF(opts)
			}
			return resumeRun(cmd.Context(), opts, nil)
		},
	}
	cmd.Flags().StringVar(&opts.Incident, "incident", "", "incident id")
	cmd.Flags().StringVar(&opts.StatePath, "state", "", "state file path")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "approve every step that requires approval")
	cmd.Flags().IntVar(&opts.Concurrency, "concurrency", 0, "packages worked on at once (default from config, else 8)")
	opts.Output.AddFlags(cmd)
	opts.Registry.AddFlags(cmd)
	return cmd
}

// resumeRun applies what remains of a recorded incident. want, when set, is the spec the
// caller expects (contain re-run): a different one is refused rather than silently merged.
func resumeRun(ctx context.Context, opts *ResumeOptions, want *incident.Spec) error {
	f := opts.Factory
	if !fileExists(opts.StatePath) {
		return &usageError{fmt.Sprintf("no state file at %s: nothing to resume", opts.StatePath)}
	}
	store, err := state.Open(opts.StatePath)
	if err != nil {
		return err
	}
	defer store.Close()
	file := store.File()
	if file == nil {
		return &usageError{fmt.Sprintf("no state file at %s: nothing to resume", opts.StatePath)}
	}
	if want != nil && !want.Equal(file.Incident) {
		return &usageError{fmt.Sprintf("incident %s already exists with other inputs (%s); pass --incident NEW to start another, or `npmir resume --incident %s` to finish it", file.Incident.ID, file.Incident.DefaultIDKey(), file.Incident.ID)}
	}
	ro := opts.Registry
	if ro.Registry == "" {
		ro.Registry = file.Registry
	} else if file.Registry != "" && strings.TrimSuffix(ro.Registry, "/") != strings.TrimSuffix(file.Registry, "/") {
		opts.IO.Printf("warning: --registry %s differs from the registry this incident was planned against (%s)\n", ro.Registry, file.Registry)
	}
	client, token, err := f.NPM(ro)
	if err != nil {
		return err
	}
	fault, err := engine.ParseFault(f.Getenv(engine.FaultEnv))
	if err != nil {
		return &usageError{err.Error()}
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = f.Concurrency()
	}
	env, err := f.stepsEnv(file.Incident, client, filepath.Dir(opts.StatePath), conc)
	if err != nil {
		return err
	}
	eng := &engine.Engine{Env: env, Concurrency: conc, Yes: opts.Yes,
		Secrets: append(secretsOf(token, ro.OTP, f.Getenv("NPMIR_NPM_OTP")), env.LeakedTokens...), Fault: fault, Now: f.Now}
	out := newPrinter(opts.IO, opts.Output, eng)
	if pend := engine.PendingApprovals(file); len(pend) > 0 && !opts.Yes && !opts.IO.CanPrompt() {
		return out.final(reportOf(store, "apply", "approval_needed", "re-run with --yes to approve: "+stepNames(pend)), &engine.ApprovalError{Step: pend[0]})
	}
	audit, err := state.OpenAudit(filepath.Join(filepath.Dir(opts.StatePath), "audit.jsonl"))
	if err != nil {
		var ce *state.ChainError
		if errors.As(err, &ce) {
			return fmt.Errorf("%w; the state file was not touched", err)
		}
		return err
	}
	defer audit.Close()
	if opts.IO.ErrTTY {
		fmt.Fprintf(opts.IO.ErrOut, "Resuming incident %s (%s)…\n", file.Incident.ID, opts.StatePath)
	}
	return applyAndReport(ctx, eng, store, audit, out)
}
