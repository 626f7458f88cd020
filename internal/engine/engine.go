// Package engine turns an incident spec and a runbook into a plan of concrete ops and applies
// it: stage by stage, ops of different packages concurrently, each op recorded as started before
// it runs and done or failed after, so a crash or Ctrl-C at any point resumes without losing or
// repeating an action.
package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/state"
	"github.com/npmir/npmir/internal/steps"
)

// Engine runs one incident.
type Engine struct {
	// Runbook is needed to Plan; Apply works from the state file alone.
	Runbook *runbook.Runbook
	Env     *steps.Env
	// Concurrency bounds how many packages are worked on at once.
	Concurrency int
	// Yes approves every gated step. Otherwise Approve (nil when no one can be asked) decides.
	Yes     bool
	Approve func(ctx context.Context, step state.Step, ops []*state.Op) (bool, error)
	// OnEvent, when set, is told of every step and op transition (events JSONL, TTY lines).
	OnEvent func(Event)
	// Secrets are redacted from every error text before it is stored or shown.
	Secrets []string
	Fault   *Fault
	// OpTimeout bounds one op; it runs to completion even after Ctrl-C so that no write is
	// left half-known.
	OpTimeout time.Duration
	Now       func() time.Time
}

// Event is one transition, streamed as JSON lines with --events jsonl.
type Event struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"` // stage, approval, op
	Incident string    `json:"incident"`
	Stage    string    `json:"stage,omitempty"`
	Step     string    `json:"step,omitempty"`
	Op       *state.Op `json:"op,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

var (
	// ErrApprovalNeeded: a gated step has work and no one approved it (exit 3).
	ErrApprovalNeeded = errors.New("approval needed")
	// ErrInterrupted: the run was stopped part-way (Ctrl-C); resumable (exit 5).
	ErrInterrupted = errors.New("interrupted")
)

// ApprovalError names the step that needs approval.
type ApprovalError struct {
	Step     state.Step
	Declined bool
}

func (e *ApprovalError) Error() string {
	if e.Declined {
		return fmt.Sprintf("step %s/%s was not approved; nothing of it was done", e.Step.Stage, e.Step.ID)
	}
	return fmt.Sprintf("step %s/%s needs approval: re-run with --yes (no terminal to ask on)", e.Step.Stage, e.Step.ID)
}

func (e *ApprovalError) Unwrap() error { return ErrApprovalNeeded }

// OpsFailedError reports the ops that failed in a stage; Err is the first cause.
type OpsFailedError struct {
	Stage string
	Ops   []*state.Op
	Err   error
}

func (e *OpsFailedError) Error() string {
	ids := make([]string, len(e.Ops))
	for i, op := range e.Ops {
		ids[i] = op.ID
	}
	return fmt.Sprintf("stage %s: %d op(s) failed (%s): %v", e.Stage, len(e.Ops), strings.Join(ids, ", "), e.Err)
}

func (e *OpsFailedError) Unwrap() error { return e.Err }

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) emit(ev Event) {
	if e.OnEvent == nil {
		return
	}
	ev.Time = e.now().UTC()
	ev.Incident = e.Env.Spec.ID
	e.OnEvent(ev)
}

// Plan resolves the targets against the registry (read-only) and expands every runbook step
// into ops. Nothing is written anywhere.
func (e *Engine) Plan(ctx context.Context) (*state.File, error) {
	if e.Env.Fault == nil {
		e.Env.Fault = e.Fault.Hit
	}
	if e.Env.NPM != nil {
		if err := steps.Resolve(ctx, e.Env); err != nil {
			return nil, err
		}
	}
	f := &state.File{
		Incident: e.Env.Spec,
		Runbook:  state.RunbookRef{Name: e.Runbook.Name, Source: e.Runbook.Source, Digest: e.Runbook.Digest},
	}
	// Targets are recorded after planning: the verify step may narrow a target's bad versions.
	defer func() {
		for _, t := range e.Env.Targets {
			f.Targets = append(f.Targets, state.Target{Package: t.Name, Bad: t.Bad, KnownGood: t.KnownGood, KnownGoodFrom: t.KnownGoodFrom, Verdicts: t.Verdicts})
		}
	}()
	if e.Env.NPM != nil {
		f.Registry = e.Env.NPM.Registry()
	}
	if sc := e.Env.Scope; sc != nil {
		f.Scope = &state.Scope{Maintainer: sc.Maintainer, Source: sc.Source, Packages: len(sc.Packages), Affected: len(e.Env.Affected())}
	}
	for _, st := range e.Runbook.Stages {
		f.Stages = append(f.Stages, state.Stage{Name: st.Name, Description: strings.TrimSpace(st.Description)})
	}
	seen := map[string]bool{}
	for _, ss := range e.Runbook.Steps() {
		st := state.Step{Stage: ss.Stage, ID: ss.Step.ID, Uses: ss.Step.Uses, Status: "planned", Approval: ss.Step.NeedsApproval(), ContinueOnError: ss.Step.ContinueOnError}
		kind, ok := steps.Lookup(ss.Step.Uses)
		if !ok { // validation catches this; keep the plan honest if it did not
			st.Status, st.Reason = "skipped", "unknown step kind "+ss.Step.Uses
			f.Steps = append(f.Steps, st)
			continue
		}
		sp, err := kind.Plan(ctx, e.Env, steps.Step{Stage: ss.Stage, Step: ss.Step})
		if err != nil {
			return nil, fmt.Errorf("plan %s/%s: %w", ss.Stage, ss.Step.ID, err)
		}
		st.Notes = sp.Notes
		if sp.Skip != "" {
			st.Status, st.Reason = "skipped", sp.Skip
		}
		for _, op := range sp.Ops {
			if seen[op.ID] {
				return nil, fmt.Errorf("plan %s/%s: op id %s planned twice (a runbook with two steps of the same kind on the same targets?)", ss.Stage, ss.Step.ID, op.ID)
			}
			seen[op.ID] = true
			status := state.Pending
			var res *state.Result
			if op.Manual != "" {
				status, res = state.Manual, &state.Result{Summary: op.Manual}
			}
			f.Ops = append(f.Ops, &state.Op{ID: op.ID, Stage: op.Stage, Step: op.Step, Kind: op.Kind, Key: op.Key,
				Description: op.Description, Target: op.Target, Params: op.Params, Status: status, Result: res})
		}
		if sp.Skip == "" && len(sp.Ops) == 0 && len(sp.Notes) == 0 {
			st.Notes = append(st.Notes, "nothing to do")
		}
		f.Steps = append(f.Steps, st)
	}
	return f, nil
}

// PendingApprovals lists the gated steps that still have work and no approval.
func PendingApprovals(f *state.File) []state.Step {
	var out []state.Step
	for _, st := range f.Steps {
		if st.Approval && !st.Approved && len(runnable(f, st)) > 0 {
			out = append(out, st)
		}
	}
	return out
}

func runnable(f *state.File, st state.Step) []*state.Op {
	var out []*state.Op
	for _, op := range f.Ops {
		if op.Stage == st.Stage && op.Step == st.ID && (op.Status == state.Pending || op.Status == state.Started || op.Status == state.Failed) {
			out = append(out, op)
		}
	}
	return out
}

// Apply runs every op not yet done, in stage order, recording progress in store and audit.
func (e *Engine) Apply(ctx context.Context, store *state.Store, audit *state.Audit) (err error) {
	if e.Env.Fault == nil {
		e.Env.Fault = e.Fault.Hit
	}
	// The audit log is the write-ahead record; the state file a checkpoint of it. Bring the
	// checkpoint up to the log first (after a crash it may lag), then keep it close behind.
	progress := audit.Progress()
	store.Note(func(f *state.File) { state.Reconcile(f, progress) })
	store.Checkpoints(250 * time.Millisecond)
	defer func() {
		// A state file that could not be written must not pass silently: the audit log
		// still holds everything, and a resume rebuilds the file from it.
		if ferr := store.Flush(); ferr != nil && err == nil {
			err = &recordError{ferr}
		}
	}()
	f := store.File()
	var stages []string
	for _, st := range f.Steps {
		if !slices.Contains(stages, st.Stage) {
			stages = append(stages, st.Stage)
		}
	}
	for _, stage := range stages {
		if ctx.Err() != nil {
			return ErrInterrupted
		}
		if err := e.approveStage(ctx, store, audit, stage); err != nil {
			return err
		}
		if err := e.runStage(ctx, store, audit, stage); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) approveStage(ctx context.Context, store *state.Store, audit *state.Audit, stage string) error {
	f := store.File()
	for i := range f.Steps {
		st := f.Steps[i]
		if st.Stage != stage || !st.Approval || st.Approved {
			continue
		}
		ops := runnable(f, st)
		if len(ops) == 0 {
			continue
		}
		actor := "--yes"
		if !e.Yes {
			if e.Approve == nil {
				return &ApprovalError{Step: st}
			}
			ok, err := e.Approve(ctx, st, ops)
			if err != nil {
				return err
			}
			if !ok {
				return &ApprovalError{Step: st, Declined: true}
			}
			actor = "terminal prompt"
		}
		if err := audit.Append(state.AuditRecord{Incident: f.Incident.ID, Event: "approval", Stage: st.Stage, Step: st.ID, Actor: actor, Detail: fmt.Sprintf("%d op(s) approved", len(ops))}); err != nil {
			return err
		}
		if err := store.Update(func(cur **state.File) { (*cur).Steps[i].Approved = true }); err != nil {
			return err
		}
		e.emit(Event{Type: "approval", Stage: st.Stage, Step: st.ID, Detail: actor})
	}
	return nil
}

func (e *Engine) runStage(ctx context.Context, store *state.Store, audit *state.Audit, stage string) error {
	f := store.File()
	// The plan, not the runbook file, decides: a resume must not change behaviour because
	// someone edited the runbook mid-incident.
	continueOnError := map[string]bool{}
	for _, st := range f.Steps {
		continueOnError[st.ID] = st.ContinueOnError
	}
	// Ops sharing a key (one package) run in plan order: a deprecate after a tag move must
	// see the registry the move left. Different keys run concurrently.
	var keys []string
	groups := map[string][]*state.Op{}
	for _, op := range f.Ops {
		if op.Stage != stage {
			continue
		}
		if op.Status == state.Done || op.Status == state.Skipped || op.Status == state.Manual {
			continue
		}
		if _, ok := groups[op.Key]; !ok {
			keys = append(keys, op.Key)
		}
		groups[op.Key] = append(groups[op.Key], op)
	}
	if len(keys) == 0 {
		return nil
	}
	e.emit(Event{Type: "stage", Stage: stage, Detail: "started"})
	limit := e.Concurrency
	if limit <= 0 {
		limit = 8
	}
	var (
		mu     sync.Mutex
		failed []*state.Op
		errs   = map[string]error{}
	)
	g := new(errgroup.Group)
	g.SetLimit(limit)
	for _, key := range keys {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			for _, op := range groups[key] {
				if ctx.Err() != nil {
					return nil
				}
				err := e.runOp(ctx, store, audit, op)
				if err == nil {
					continue
				}
				var fatal *recordError
				if errors.As(err, &fatal) {
					return err // the state or audit could not be written: stop everything
				}
				mu.Lock()
				failed = append(failed, op)
				errs[op.ID] = err
				mu.Unlock()
				if !continueOnError[op.Step] {
					return nil // later ops of this package wait for the resume
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ErrInterrupted
	}
	var blocking []*state.Op
	var cause error
	for _, op := range failed {
		if continueOnError[op.Step] {
			continue
		}
		blocking = append(blocking, op)
		// The cause reported (and its exit code) is stable: an authentication failure
		// first, else the first blocking op in plan order.
		if err := errs[op.ID]; cause == nil || (errors.Is(err, npmreg.ErrAuth) || errors.Is(err, npmreg.ErrOTPRequired)) && !errors.Is(cause, npmreg.ErrAuth) && !errors.Is(cause, npmreg.ErrOTPRequired) {
			cause = err
		}
	}
	if len(blocking) > 0 {
		slices.SortFunc(blocking, func(a, b *state.Op) int { return cmpIndex(f, a, b) })
		return &OpsFailedError{Stage: stage, Ops: blocking, Err: cause}
	}
	return nil
}

// cmpIndex orders two ops by their place in the plan.
func cmpIndex(f *state.File, a, b *state.Op) int {
	return slices.Index(f.Ops, a) - slices.Index(f.Ops, b)
}

// recordError is a failure to write the state file or the audit log: the run cannot go on
// safely, since what it did could no longer be known.
type recordError struct{ err error }

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

func (e *Engine) runOp(ctx context.Context, store *state.Store, audit *state.Audit, op *state.Op) error {
	kind, ok := steps.Lookup(op.Kind)
	if !ok {
		return fmt.Errorf("op %s: unknown step kind %s", op.ID, op.Kind)
	}
	sop := steps.Op{ID: op.ID, Stage: op.Stage, Step: op.Step, Kind: op.Kind, Key: op.Key, Description: op.Description, Target: op.Target, Params: op.Params}
	incidentID := e.Env.Spec.ID
	timeout := e.OpTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	// An op is not cancelled by Ctrl-C once it starts: finishing it (bounded by the timeout)
	// leaves a known state instead of a write whose fate must be checked.
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()

	if op.Status == state.Started || op.Status == state.Failed {
		// Interrupted mid-op (the audit log says started, nothing after), or failed with an
		// answer that may have been lost after the write landed: find out before doing it
		// again, so the record says who changed what.
		res, landed, err := kind.Check(opCtx, e.Env, sop)
		if err != nil {
			return e.fail(store, audit, op, fmt.Errorf("check whether %s landed: %w", op.ID, err))
		}
		if landed {
			if res.Manual != "" {
				return e.manual(store, audit, op, res)
			}
			return e.complete(store, audit, op, res, "landed before the interruption; confirmed by a read")
		}
	}
	// "started" is durable in the audit log before anything is sent; the state file follows.
	if err := audit.Append(state.AuditRecord{Incident: incidentID, Event: "started", Op: op.ID, Stage: op.Stage, Step: op.Step, Detail: op.Description}); err != nil {
		return &recordError{err}
	}
	now := e.now().UTC()
	store.Note(func(*state.File) {
		op.Status, op.Attempts, op.StartedAt, op.FinishedAt, op.Error, op.Result = state.Started, op.Attempts+1, &now, nil, "", nil
	})
	e.emit(Event{Type: "op", Stage: op.Stage, Step: op.Step, Op: snapshot(op)})
	e.Fault.Hit("after-started")
	res, err := kind.Apply(opCtx, e.Env, sop)
	if err != nil {
		return e.fail(store, audit, op, err)
	}
	e.Fault.Hit("after-apply")
	if res.Manual != "" {
		return e.manual(store, audit, op, res)
	}
	return e.complete(store, audit, op, res, "")
}

// manual records an op that turned out, when applied, to need a person: nothing was written.
func (e *Engine) manual(store *state.Store, audit *state.Audit, op *state.Op, res steps.Result) error {
	summary := res.Manual
	if res.Summary != "" {
		summary = res.Summary + ": " + res.Manual
	}
	if err := audit.Append(state.AuditRecord{Incident: e.Env.Spec.ID, Event: "manual", Op: op.ID, Stage: op.Stage, Step: op.Step, Detail: summary}); err != nil {
		return &recordError{err}
	}
	e.finish(store, op, state.Manual, &state.Result{Summary: summary}, "")
	return nil
}

func (e *Engine) complete(store *state.Store, audit *state.Audit, op *state.Op, res steps.Result, note string) error {
	detail := res.Summary
	changed := res.Changed
	rec := state.AuditRecord{Incident: e.Env.Spec.ID, Event: "done", Op: op.ID, Stage: op.Stage, Step: op.Step, Changed: &changed, Detail: detail}
	if note != "" {
		rec.Actor = note
	}
	if err := audit.Append(rec); err != nil {
		return &recordError{err}
	}
	e.Fault.Hit("after-audit")
	e.finish(store, op, state.Done, &state.Result{Changed: res.Changed, Summary: res.Summary}, "")
	e.Fault.Hit("after-done")
	return nil
}

// finish records an op's outcome in the state file; the audit log already holds it.
func (e *Engine) finish(store *state.Store, op *state.Op, status string, res *state.Result, errText string) {
	now := e.now().UTC()
	store.Note(func(*state.File) {
		op.Status, op.Result, op.Error, op.FinishedAt = status, res, errText, &now
	})
	e.emit(Event{Type: "op", Stage: op.Stage, Step: op.Step, Op: snapshot(op)})
}

func (e *Engine) fail(store *state.Store, audit *state.Audit, op *state.Op, err error) error {
	text := e.Redact(err.Error())
	if aerr := audit.Append(state.AuditRecord{Incident: e.Env.Spec.ID, Event: "failed", Op: op.ID, Stage: op.Stage, Step: op.Step, Detail: text}); aerr != nil {
		return &recordError{aerr}
	}
	e.finish(store, op, state.Failed, nil, text)
	return &opError{text: text, err: err}
}

// opError carries the redacted text while keeping the cause for errors.Is (exit codes).
type opError struct {
	text string
	err  error
}

func (e *opError) Error() string { return e.text }
func (e *opError) Unwrap() error { return e.err }

// Redact removes every known secret value from s.
func (e *Engine) Redact(s string) string {
	for _, sec := range e.Secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// snapshot copies an op for an event. Ops are written only by the goroutine running them (under
// the store's lock), so that goroutine can copy without locking.
func snapshot(op *state.Op) *state.Op {
	cp := *op
	return &cp
}
