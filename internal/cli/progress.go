package cli

import (
	"sync"

	"github.com/schollz/progressbar/v3"

	"github.com/npmir/npmir/internal/state"
	"github.com/npmir/npmir/internal/steps"
)

// bigRun is the op count above which a terminal gets a progress bar instead of one line per op.
const bigRun = 40

// readProgress shows a bar on a terminal while planning reads hundreds of packuments. It
// returns the function that removes it.
func (p *printer) readProgress(env *steps.Env) func() {
	if !p.io.ErrTTY {
		return func() {}
	}
	var (
		mu  sync.Mutex
		bar *progressbar.ProgressBar
	)
	env.Progress = func(phase string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if total < 20 {
			return
		}
		if bar == nil {
			bar = newBar(p, total, phase)
		}
		bar.Describe(phase)
		_ = bar.Set(done)
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if bar != nil {
			_ = bar.Clear()
		}
		env.Progress = nil
	}
}

func newBar(p *printer, total int, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.io.ErrOut),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionEnableColorCodes(p.io.ColorErr()),
	)
}

// planSummary prints, before anything acts, what is about to happen: the blast radius and the
// ops per step (each op when there are few). It goes to stderr: stdout is for the result.
func (p *printer) planSummary(f *state.File) {
	w := p.io
	runnable := 0
	for _, op := range f.Ops {
		if op.Status == state.Pending || op.Status == state.Started || op.Status == state.Failed {
			runnable++
		}
	}
	p.total = runnable
	if sc := f.Scope; sc != nil {
		w.Printf("%s can publish %d package(s) (from the registry's %s listing); %d have versions published since %s\n",
			sc.Maintainer, sc.Packages, sc.Source, sc.Affected, f.Incident.Since.UTC().Format("2006-01-02T15:04:05Z"))
	}
	w.Printf("Plan for incident %s: %d op(s) on %d package(s)\n", f.Incident.ID, runnable, len(f.Targets))
	why := map[string]string{}
	for _, st := range f.Stages {
		why[st.Name] = st.Description
	}
	lastStage := ""
	for _, st := range f.Steps {
		var ops []*state.Op
		for _, op := range f.Ops {
			if op.Stage == st.Stage && op.Step == st.ID {
				ops = append(ops, op)
			}
		}
		if len(ops) == 0 {
			continue
		}
		if st.Stage != lastStage {
			lastStage = st.Stage
			if d := why[st.Stage]; d != "" {
				w.Printf("  %s: %s\n", st.Stage, d)
			}
		}
		w.Printf("  %s/%s: %d op(s)\n", st.Stage, st.ID, len(ops))
		if runnable <= bigRun {
			for _, op := range ops {
				w.Printf("    • %s\n", op.Description)
			}
		}
	}
}

// opProgress reports one finished op: a ✓ line, or on a terminal with a big run a bar (with
// lines only for failures and manual actions, which a person must read).
func (p *printer) opProgress(op *state.Op) {
	color := p.io.ColorErr()
	mark := func(sym, code string) string {
		if color {
			return "\x1b[" + code + "m" + sym + "\x1b[0m"
		}
		return sym
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	useBar := p.io.ErrTTY && p.total > bigRun
	if useBar && p.bar == nil {
		p.bar = newBar(p, p.total, "applying")
	}
	line := ""
	switch op.Status {
	case state.Done:
		if !useBar {
			line = mark("✓", "32") + " " + op.Result.Summary
		}
	case state.Failed:
		line = mark("✗", "31") + " " + op.Description + ": " + op.Error
	case state.Manual:
		line = mark("!", "33") + " " + op.Result.Summary
	default:
		return
	}
	if p.bar != nil {
		_ = p.bar.Add(1)
		if line != "" {
			_ = p.bar.Clear()
		}
	}
	if line != "" {
		p.io.Printf("%s\n", line)
	}
	if p.bar != nil && p.bar.IsFinished() {
		_ = p.bar.Clear()
	}

}
