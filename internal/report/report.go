// Package report renders an incident's plan and progress: a terminal summary, one versioned JSON
// document for SOAR playbooks, and a Markdown after-action report. Every renderer works from the
// same Document, built from the state file, so what is shown is what is recorded.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/state"
)

// SchemaVersion versions the JSON document; fields are only ever added within a version.
const SchemaVersion = 1

// Document is the result of a contain, plan, resume or status.
type Document struct {
	SchemaVersion int              `json:"schema_version"`
	Kind          string           `json:"kind"` // always "npmir.incident"
	Incident      string           `json:"incident"`
	Mode          string           `json:"mode"`   // plan (dry run), apply, status
	Status        string           `json:"status"` // planned, done, partial, approval_needed, failed, interrupted
	ExitCode      int              `json:"exit_code"`
	Error         string           `json:"error,omitempty"`
	Spec          *incident.Spec   `json:"spec"`
	Runbook       state.RunbookRef `json:"runbook"`
	Registry      string           `json:"registry,omitempty"`
	StateFile     string           `json:"state_file,omitempty"`
	AuditLog      string           `json:"audit_log,omitempty"`
	Targets       []state.Target   `json:"targets"`
	Scope         *state.Scope     `json:"scope,omitempty"`
	Stages        []Stage          `json:"stages"`
	Counts        Counts           `json:"counts"`
	Next          string           `json:"next,omitempty"` // the command to run next, if any
}

// Stage groups steps.
type Stage struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Steps       []Step `json:"steps"`
}

// Step is a runbook step and its ops.
type Step struct {
	ID       string     `json:"id"`
	Uses     string     `json:"uses"`
	Status   string     `json:"status"` // planned, skipped
	Reason   string     `json:"reason,omitempty"`
	Notes    []string   `json:"notes,omitempty"`
	Approval bool       `json:"approval_required"`
	Approved bool       `json:"approved"`
	Ops      []state.Op `json:"ops"`
}

// Counts tallies ops by status.
type Counts struct {
	Ops     int `json:"ops"`
	Done    int `json:"done"`
	Changed int `json:"changed"`
	Pending int `json:"pending"`
	Started int `json:"started"`
	Failed  int `json:"failed"`
	Manual  int `json:"manual"`
	Skipped int `json:"skipped_steps"`
}

// Build makes the document from a state file.
func Build(f *state.File, mode string) *Document {
	d := &Document{SchemaVersion: SchemaVersion, Kind: "npmir.incident", Incident: f.Incident.ID, Mode: mode,
		Spec: f.Incident, Runbook: f.Runbook, Registry: f.Registry, Targets: f.Targets, Scope: f.Scope}
	descriptions := map[string]string{}
	for _, st := range f.Stages {
		descriptions[st.Name] = st.Description
	}
	if d.Targets == nil {
		d.Targets = []state.Target{}
	}
	for _, st := range f.Steps {
		if len(d.Stages) == 0 || d.Stages[len(d.Stages)-1].Name != st.Stage {
			d.Stages = append(d.Stages, Stage{Name: st.Stage, Description: descriptions[st.Stage]})
		}
		s := Step{ID: st.ID, Uses: st.Uses, Status: st.Status, Reason: st.Reason, Notes: st.Notes, Approval: st.Approval, Approved: st.Approved, Ops: []state.Op{}}
		if st.Status == "skipped" {
			d.Counts.Skipped++
		}
		for _, op := range f.Ops {
			if op.Stage == st.Stage && op.Step == st.ID {
				s.Ops = append(s.Ops, *op)
				d.Counts.Ops++
				switch op.Status {
				case state.Done:
					d.Counts.Done++
					if op.Result != nil && op.Result.Changed {
						d.Counts.Changed++
					}
				case state.Pending:
					d.Counts.Pending++
				case state.Started:
					d.Counts.Started++
				case state.Failed:
					d.Counts.Failed++
				case state.Manual:
					d.Counts.Manual++
				}
			}
		}
		last := &d.Stages[len(d.Stages)-1]
		last.Steps = append(last.Steps, s)
	}
	return d
}

// WriteJSON prints the document, indented, with a trailing newline.
func WriteJSON(w io.Writer, d *Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// TextOptions tune the terminal rendering.
type TextOptions struct {
	TTY   bool // aligned table; else tab-separated fields for scripts
	Color bool
}

// WriteText prints the plan/progress as a table (TTY) or tab-separated lines (pipe).
func WriteText(w io.Writer, d *Document, o TextOptions) error {
	c := colors{on: o.Color}
	if !o.TTY {
		for _, st := range d.Stages {
			for _, s := range st.Steps {
				if len(s.Ops) == 0 {
					fmt.Fprintf(w, "%s\t%s\t%s\t-\t%s\n", st.Name, s.ID, s.Status, oneLine(s.Reason, s.Notes))
					continue
				}
				for _, op := range s.Ops {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", st.Name, s.ID, op.Status, op.ID, opText(op))
				}
			}
		}
		return nil
	}
	title := "Incident " + d.Incident
	switch d.Mode {
	case "plan":
		title += "  " + c.yellow("DRY RUN: nothing was changed")
	case "status":
		title += "  (status)"
	}
	fmt.Fprintln(w, c.bold(title))
	fmt.Fprintf(w, "Runbook %s · registry %s\n", d.Runbook.Name, d.Registry)
	if len(d.Targets) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, c.bold("PACKAGE\tBAD VERSIONS\tKNOWN-GOOD\tVERIFY"))
		for _, t := range d.Targets {
			kg := t.KnownGood
			if kg == "" {
				kg = c.red("none")
			} else if t.KnownGoodFrom != "" {
				kg += " (" + t.KnownGoodFrom + ")"
			}
			bad := strings.Join(t.Bad, ", ")
			if bad == "" {
				bad = "none found"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Package, bad, kg, verdictText(c, t.Verdicts))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, c.bold("STAGE\tSTEP\tSTATUS\tACTION"))
	for _, st := range d.Stages {
		for _, s := range st.Steps {
			if len(s.Ops) == 0 {
				status := s.Status
				if status == "planned" {
					status = "ok"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", st.Name, s.ID, c.dim(status), c.dim(oneLine(s.Reason, s.Notes)))
				continue
			}
			for i, op := range s.Ops {
				stage, step := st.Name, s.ID
				if i > 0 {
					stage, step = "", ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", stage, step, c.status(op.Status), opText(op))
			}
			for _, n := range s.Notes {
				fmt.Fprintf(tw, "\t\t\t%s\n", c.dim("note: "+n))
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	k := d.Counts
	fmt.Fprintf(w, "%d op(s): %d done (%d changed), %d pending, %d failed, %d need a person; %d step(s) skipped\n",
		k.Ops, k.Done, k.Changed, k.Pending+k.Started, k.Failed, k.Manual, k.Skipped)
	if sc := d.Scope; sc != nil {
		fmt.Fprintf(w, "Blast radius: %s can publish %d package(s) (%s listing); %d had versions since T\n", sc.Maintainer, sc.Packages, sc.Source, sc.Affected)
	}
	if d.StateFile != "" {
		fmt.Fprintf(w, "State %s · audit %s\n", d.StateFile, d.AuditLog)
	}
	if d.Next != "" {
		fmt.Fprintf(w, "Next: %s\n", d.Next)
	}
	return nil
}

func verdictText(c colors, vs []state.Verdict) string {
	var parts []string
	for _, v := range vs {
		word := v.Verdict
		switch v.Verdict {
		case "malicious":
			word = c.red(word)
		case "suspicious":
			word = c.yellow(word)
		}
		parts = append(parts, v.Version+" "+word)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func opText(op state.Op) string {
	switch {
	case op.Status == state.Manual && op.Result != nil:
		return op.Description + " → by hand: " + op.Result.Summary
	case op.Status == state.Failed:
		return op.Description + " → " + op.Error
	case op.Status == state.Done && op.Result != nil:
		return op.Result.Summary
	}
	return op.Description
}

func oneLine(reason string, notes []string) string {
	parts := slices.Clone(notes)
	if reason != "" {
		parts = append([]string{reason}, parts...)
	}
	return strings.Join(parts, "; ")
}

// WriteMarkdown prints an after-action report.
func WriteMarkdown(w io.Writer, d *Document, now time.Time) error {
	fmt.Fprintf(w, "# Incident %s\n\n", d.Incident)
	fmt.Fprintf(w, "- Status: **%s**\n- Runbook: %s (%s)\n- Registry: %s\n- Report generated: %s\n\n", d.Status, d.Runbook.Name, d.Runbook.Digest, d.Registry, now.UTC().Format(time.RFC3339))
	if len(d.Targets) > 0 {
		fmt.Fprintf(w, "## Targets\n\n| package | bad versions | known-good | verify |\n|---|---|---|---|\n")
		for _, t := range d.Targets {
			var vs []string
			for _, v := range t.Verdicts {
				vs = append(vs, fmt.Sprintf("%s %s (%s)", v.Version, v.Verdict, strings.Join(v.Rules, ", ")))
			}
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", t.Package, strings.Join(t.Bad, ", "), t.KnownGood, mdEscape(strings.Join(vs, "; ")))
		}
		fmt.Fprintln(w)
	}
	for _, st := range d.Stages {
		fmt.Fprintf(w, "## %s\n\n", st.Name)
		if st.Description != "" {
			fmt.Fprintf(w, "%s\n\n", st.Description)
		}
		for _, s := range st.Steps {
			fmt.Fprintf(w, "### %s (`%s`)\n\n", s.ID, s.Uses)
			if s.Reason != "" {
				fmt.Fprintf(w, "Skipped: %s\n\n", s.Reason)
			}
			for _, n := range s.Notes {
				fmt.Fprintf(w, "- note: %s\n", n)
			}
			for _, op := range s.Ops {
				fmt.Fprintf(w, "- [%s] %s\n", op.Status, mdEscape(opText(op)))
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

type colors struct{ on bool }

func (c colors) wrap(code, s string) string {
	if !c.on || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
func (c colors) bold(s string) string   { return c.wrap("1", s) }
func (c colors) dim(s string) string    { return c.wrap("2", s) }
func (c colors) red(s string) string    { return c.wrap("31", s) }
func (c colors) green(s string) string  { return c.wrap("32", s) }
func (c colors) yellow(s string) string { return c.wrap("33", s) }
func (c colors) status(s string) string {
	switch s {
	case state.Done:
		return c.green("✓ done")
	case state.Failed:
		return c.red("✗ failed")
	case state.Manual:
		return c.yellow("! manual")
	case state.Started:
		return c.yellow("… started")
	}
	return s
}
