package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/npmir/npmir/internal/engine"
	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/report"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/state"
	"github.com/npmir/npmir/internal/steps"
)

// ContainOptions are the inputs of `npmir contain` and `npmir plan`.
type ContainOptions struct {
	IO      *IOStreams
	Factory *Factory

	Specs              []string
	Since              string
	KnownGood          []string
	Maintainer         string
	TokensCreatedAfter string
	LeakedTokenEnv     []string
	Rules              string
	Runbook            string
	Incident           string
	StatePath          string
	DryRun             bool
	Yes                bool
	Concurrency        int
	Output             OutputOptions
	Registry           RegistryOptions
}

// OutputOptions choose how results are printed.
type OutputOptions struct {
	Format string // text, json, markdown
	Events string // "" or jsonl
}

// AddFlags binds the output flags.
func (o *OutputOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", "text", "result format: text, json, markdown or html (an after-action page)")
	cmd.Flags().StringVar(&o.Events, "events", "", "stream one JSON line per op transition to stdout (jsonl)")
}

func (o *OutputOptions) validate() error {
	switch o.Format {
	case "text", "json", "markdown", "html":
	default:
		return &usageError{fmt.Sprintf("--output %q: use text, json, markdown or html", o.Format)}
	}
	if o.Events != "" && o.Events != "jsonl" {
		return &usageError{fmt.Sprintf("--events %q: the only stream format is jsonl", o.Events)}
	}
	return nil
}

// AddFlags binds the registry flags.
func (r *RegistryOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.Registry, "registry", "", "npm registry URL (default from config, NPMIR_REGISTRY, else https://registry.npmjs.org/)")
	cmd.Flags().StringVar(&r.OTP, "otp", "", "one-time password for registry writes (or NPMIR_NPM_OTP)")
	cmd.Flags().BoolVar(&r.AllowInsecure, "allow-insecure", false, "allow plain http:// to a registry that is not on this machine")
	cmd.Flags().DurationVar(&r.Timeout, "timeout", 30*time.Second, "timeout of one registry request")
}

func newContainCmd(f *Factory, runF func(*ContainOptions) error, dryRun bool) *cobra.Command {
	opts := &ContainOptions{IO: f.IO, Factory: f, DryRun: dryRun}
	use, short := "contain <package>[@version]...", "Contain a compromised package: verify, freeze, revoke, inventory, rebuild, notify"
	long := `Walk the containment runbook for the named packages against the live systems.

A package is name@version (one bad version; repeat or comma-separate for more) or a
bare name with --since T (every version published at or after T). Scoped names are
written @scope/name. The plan is shown first; steps marked "approval: required" in the
runbook stop and ask (or need --yes when there is no terminal).

Every op is recorded in the incident's state file before and after it runs, and in a
hash-chained audit log. If the run is interrupted (Ctrl-C, a crash), run the same
command again or ` + "`npmir resume --incident ID`" + `: ops already done are not repeated,
and an op caught mid-way is checked against the registry before it is retried.`
	if dryRun {
		use, short = "plan <package>[@version]...", "Show what contain would do, with zero writes (contain --dry-run)"
		long = "Resolve the packages and expand the runbook into ops exactly as contain would,\nwithout changing anything or writing any state. The ops listed are the ops contain runs."
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Example: `  # freeze one bad version (tags back to the last good release, deprecate the bad one)
  npmir contain debug@4.4.2 --yes

  # every version published since the takeover, two packages, dry run first
  npmir plan @ctrl/tinycolor chalk --since 2025-09-08T13:00:00Z
  npmir contain @ctrl/tinycolor chalk --since 2025-09-08T13:00:00Z

  # a SOAR playbook: no prompts, one JSON document, documented exit codes
  npmir contain posthog-node@5.11.3 --yes --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Specs = args
			if len(args) == 0 && opts.Maintainer == "" {
				return &usageError{"name at least one package (name@version, or name with --since), or --maintainer USER with --since"}
			}
			if err := opts.Output.validate(); err != nil {
				return err
			}
			if opts.Concurrency < 0 {
				return &usageError{"--concurrency must be at least 1"}
			}
			if runF != nil {
				return runF(opts)
			}
			return containRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Since, "since", "", "with bare package names: every version published at or after T (RFC 3339, a date, or 36h/2d ago)")
	fl.StringArrayVar(&opts.KnownGood, "known-good", nil, "the version to fall back to (V, or name@V with several packages); derived when absent")
	fl.StringVar(&opts.Maintainer, "maintainer", "", "the compromised account (or @org): take every package it can publish, with --since; enables the revoke steps")
	fl.StringVar(&opts.TokensCreatedAfter, "tokens-created-after", "", "revoke only tokens created after T (a time, or \"since\" for the --since value); default all")
	fl.StringArrayVar(&opts.LeakedTokenEnv, "leaked-token-env", nil, "a variable holding a token value known to have leaked: npmir proves it is refused after revocation (repeatable)")
	fl.StringVar(&opts.Rules, "rules", "", "a forensics rules file (YAML or JSON) merged over the embedded IOC rules")
	fl.StringVar(&opts.Runbook, "runbook", "", "runbook name (see `npmir runbook list`) or YAML file (default npm-maintainer-compromise)")
	fl.StringVar(&opts.Incident, "incident", "", "incident id (default derived from the packages, so re-running finds the same incident)")
	fl.StringVar(&opts.StatePath, "state", "", "state file path (default <state_dir>/<incident>/state.json)")
	if !dryRun {
		fl.BoolVar(&opts.DryRun, "dry-run", false, "show the plan; change nothing, write nothing")
		fl.BoolVarP(&opts.Yes, "yes", "y", false, "approve every step that requires approval (needed when not on a terminal)")
	}
	fl.IntVar(&opts.Concurrency, "concurrency", 0, "packages worked on at once (default from config, else 8)")
	opts.Output.AddFlags(cmd)
	opts.Registry.AddFlags(cmd)
	return cmd
}

func containRun(ctx context.Context, opts *ContainOptions) error {
	f := opts.Factory
	if opts.Since != "" && !opts.DryRun && !incident.IsAbsoluteTime(opts.Since) {
		// "36h" means another instant on every run, so another incident id: re-running the
		// same command would start a second incident instead of resuming the first.
		if t, err := incident.ParseTime(opts.Since, f.Now()); err == nil {
			return &usageError{fmt.Sprintf("--since %q is relative; contain needs a fixed time so that re-running the same command resumes the same incident: use --since %s", opts.Since, t.Format(time.RFC3339))}
		}
	}
	spec, err := incident.Build(incident.Options{Specs: opts.Specs, Since: opts.Since, KnownGood: opts.KnownGood, IncidentID: opts.Incident,
		Maintainer: opts.Maintainer, TokensCreatedAfter: opts.TokensCreatedAfter, LeakedTokenEnv: opts.LeakedTokenEnv, Rules: opts.Rules, Now: f.Now()})
	if err != nil {
		return err
	}
	rb, err := runbook.Load(opts.Runbook, steps.RunbookLookup)
	if err != nil {
		return err
	}
	statePath := opts.StatePath
	if statePath == "" {
		statePath = filepath.Join(state.Dir(f.StateDir(), spec.ID), "state.json")
	}
	client, token, err := f.NPM(opts.Registry)
	if err != nil {
		return err
	}
	fault, err := engine.ParseFault(f.Getenv(engine.FaultEnv))
	if err != nil {
		return &usageError{err.Error()}
	}
	env, err := f.stepsEnv(spec, client, filepath.Dir(statePath), opts.concurrency())
	if err != nil {
		return err
	}
	env.DryRun = opts.DryRun
	env.IncludeSuspicious = opts.Yes
	if opts.DryRun {
		env.Confirm = nil // a plan asks nothing; it says what contain would ask
	}
	eng := &engine.Engine{Runbook: rb, Fault: fault, Env: env,
		Concurrency: opts.concurrency(), Yes: opts.Yes, Secrets: append(secretsOf(token, opts.Registry.OTP, f.Getenv("NPMIR_NPM_OTP")), env.LeakedTokens...), Now: f.Now}
	out := newPrinter(opts.IO, opts.Output, eng)

	// An incident already on disk is resumed from its recorded plan, never re-planned: the
	// plan is what the audit log's ops refer to.
	if !opts.DryRun && fileExists(statePath) {
		return resumeRun(ctx, &ResumeOptions{IO: opts.IO, Factory: f, StatePath: statePath, Yes: opts.Yes, Output: opts.Output, Registry: opts.Registry, Concurrency: opts.Concurrency}, spec)
	}
	if opts.IO.ErrTTY {
		opts.IO.Printf("Planning incident %s against %s…\n", spec.ID, client.Registry())
	}
	stopProgress := out.readProgress(env)
	plan, err := eng.Plan(ctx)
	stopProgress()
	if err != nil {
		return err
	}
	if opts.DryRun {
		doc := report.Build(plan, "plan")
		doc.Status = "planned"
		doc.Next = "npmir contain " + strings.Join(opts.Specs, " ") + " (same flags, without --dry-run)"
		return out.final(doc, nil)
	}
	if pend := engine.PendingApprovals(plan); len(pend) > 0 && !opts.Yes && !opts.IO.CanPrompt() {
		doc := report.Build(plan, "plan")
		err := &engine.ApprovalError{Step: pend[0]}
		doc.Status = "approval_needed"
		doc.Next = "re-run with --yes to approve: " + stepNames(pend)
		return out.final(doc, err)
	}
	store, err := state.Open(statePath)
	if err != nil {
		return err
	}
	defer store.Close()
	if store.File() != nil { // another run created it between our check and our lock
		store.Close()
		return resumeRun(ctx, &ResumeOptions{IO: opts.IO, Factory: f, StatePath: statePath, Yes: opts.Yes, Output: opts.Output, Registry: opts.Registry, Concurrency: opts.Concurrency}, spec)
	}
	if err := store.Init(plan); err != nil {
		return err
	}
	audit, err := state.OpenAudit(filepath.Join(filepath.Dir(statePath), "audit.jsonl"))
	if err != nil {
		return err
	}
	defer audit.Close()
	if err := audit.Append(state.AuditRecord{Incident: spec.ID, Event: "plan", Detail: fmt.Sprintf("%d op(s) planned from runbook %s (%s)", len(plan.Ops), rb.Name, rb.Digest)}); err != nil {
		return err
	}
	out.planSummary(plan)
	return applyAndReport(ctx, eng, store, audit, out)
}

func (o *ContainOptions) concurrency() int {
	if o.Concurrency > 0 {
		return o.Concurrency
	}
	return o.Factory.Concurrency()
}

func applyAndReport(ctx context.Context, eng *engine.Engine, store *state.Store, audit *state.Audit, out *printer) error {
	if eng.Approve == nil && out.io.CanPrompt() && !eng.Yes {
		eng.Approve = func(_ context.Context, st state.Step, ops []*state.Op) (bool, error) {
			out.io.Printf("\nStep %s/%s (%s) will:\n", st.Stage, st.ID, st.Uses)
			for _, op := range ops {
				out.io.Printf("  • %s\n", op.Description)
			}
			ans, err := out.io.Ask("Approve? [y/N] ")
			if err != nil {
				return false, err
			}
			return strings.EqualFold(ans, "y") || strings.EqualFold(ans, "yes"), nil
		}
	}
	out.total = 0
	for _, op := range store.File().Ops {
		if op.Status == state.Pending || op.Status == state.Started || op.Status == state.Failed {
			out.total++
		}
	}
	runErr := eng.Apply(ctx, store, audit)
	doc := report.Build(store.File(), "apply")
	doc.StateFile = store.Path()
	doc.AuditLog = filepath.Join(filepath.Dir(store.Path()), "audit.jsonl")
	if runErr == nil && doc.Counts.Manual > 0 {
		runErr = &needsActionError{n: doc.Counts.Manual}
	}
	var na *needsActionError
	switch {
	case runErr == nil:
		doc.Status = "done"
	case errors.As(runErr, &na):
		doc.Status = "needs_action"
	case errors.Is(runErr, engine.ErrApprovalNeeded):
		doc.Status = "approval_needed"
		doc.Next = "npmir resume --state " + store.Path() + " --yes"
	case errors.Is(runErr, engine.ErrInterrupted):
		doc.Status = "interrupted"
		doc.Next = "npmir resume --state " + store.Path()
	default:
		doc.Status = "failed"
		doc.Next = "fix the cause, then: npmir resume --state " + store.Path()
	}
	return out.final(doc, runErr)
}

func stepNames(sts []state.Step) string {
	var names []string
	for _, s := range sts {
		names = append(names, s.Stage+"/"+s.ID)
	}
	return strings.Join(names, ", ")
}

func secretsOf(vals ...string) []string {
	var out []string
	for _, v := range vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// printer renders progress lines, events and the final document.
type printer struct {
	io  *IOStreams
	out OutputOptions
	eng *engine.Engine

	mu    sync.Mutex
	total int // ops the run will apply (for the progress bar)
	bar   *progressbar.ProgressBar
}

func newPrinter(io *IOStreams, out OutputOptions, eng *engine.Engine) *printer {
	p := &printer{io: io, out: out, eng: eng}
	eng.OnEvent = func(ev engine.Event) {
		if out.Events == "jsonl" {
			b, _ := json.Marshal(ev)
			io.mu.Lock()
			fmt.Fprintf(io.Out, "%s\n", b)
			io.mu.Unlock()
		}
		if ev.Type == "op" && ev.Op != nil {
			p.opProgress(ev.Op)
		}
	}
	return p
}

// final prints the document in the chosen format and returns err (whose exit code it records).
func (p *printer) final(doc *report.Document, err error) error {
	doc.ExitCode = ExitCode(err)
	if err != nil {
		doc.Error = p.eng.Redact(err.Error())
	}
	switch {
	case p.out.Events == "jsonl":
		b, _ := json.Marshal(doc)
		fmt.Fprintf(p.io.Out, "%s\n", b)
		if p.out.Format == "text" {
			_ = report.WriteText(p.io.ErrOut, doc, report.TextOptions{TTY: p.io.ErrTTY, Color: p.io.ColorErr()})
		}
	case p.out.Format == "json":
		_ = report.WriteJSON(p.io.Out, doc)
	case p.out.Format == "markdown":
		_ = report.WriteMarkdown(p.io.Out, doc, time.Now())
	case p.out.Format == "html":
		_ = report.WriteHTML(p.io.Out, doc, time.Now())
	default:
		_ = report.WriteText(p.io.Out, doc, report.TextOptions{TTY: p.io.OutTTY, Color: p.io.ColorOut()})
	}
	if err != nil {
		return &reportedError{err: err, msg: doc.Error, next: doc.Next}
	}
	return nil
}

// reportedError is an error whose document was already printed; Main prints only its message.
type reportedError struct {
	err  error
	msg  string
	next string
}

func (e *reportedError) Error() string { return e.msg }
func (e *reportedError) Unwrap() error { return e.err }
