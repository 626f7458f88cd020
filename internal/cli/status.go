package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/npmir/npmir/internal/report"
	"github.com/npmir/npmir/internal/state"
)

// StatusOptions are the inputs of `npmir status`.
type StatusOptions struct {
	IO        *IOStreams
	Factory   *Factory
	Incident  string
	StatePath string
	Output    OutputOptions
}

func newStatusCmd(f *Factory) *cobra.Command {
	opts := &StatusOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "status [--incident ID | --state PATH]",
		Short: "Show an incident's progress per stage and op, from its state file",
		Long:  "Read an incident's state file (without locking it: it works while a contain runs) and\nshow each stage, step and op with its status. Nothing is changed.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Output.validate(); err != nil {
				return err
			}
			if opts.StatePath == "" {
				if opts.Incident == "" {
					return &usageError{"name the incident: --incident ID or --state PATH"}
				}
				opts.StatePath = filepath.Join(state.Dir(f.StateDir(), opts.Incident), "state.json")
			}
			return statusRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Incident, "incident", "", "incident id")
	cmd.Flags().StringVar(&opts.StatePath, "state", "", "state file path")
	opts.Output.AddFlags(cmd)
	return cmd
}

func statusRun(opts *StatusOptions) error {
	if !fileExists(opts.StatePath) {
		return &usageError{fmt.Sprintf("no state file at %s", opts.StatePath)}
	}
	f, err := state.Read(opts.StatePath)
	if err != nil {
		return err
	}
	// The state file is a checkpoint; the audit log has every op's latest progress.
	if progress, err := state.ProgressOf(filepath.Join(filepath.Dir(opts.StatePath), "audit.jsonl")); err == nil {
		state.Reconcile(f, progress)
	} else if !errors.Is(err, os.ErrNotExist) {
		opts.IO.Printf("warning: the audit log could not be read (%v); showing the state file's last checkpoint, which may lag\n", err)
	}
	doc := report.Build(f, "status")
	doc.StateFile = opts.StatePath
	doc.AuditLog = filepath.Join(filepath.Dir(opts.StatePath), "audit.jsonl")
	doc.Status = statusWord(doc)
	if doc.Status != "done" {
		doc.Next = "npmir resume --state " + opts.StatePath
	}
	switch opts.Output.Format {
	case "json":
		return report.WriteJSON(opts.IO.Out, doc)
	case "markdown":
		return report.WriteMarkdown(opts.IO.Out, doc, opts.Factory.Now())
	case "html":
		return report.WriteHTML(opts.IO.Out, doc, opts.Factory.Now())
	}
	return report.WriteText(opts.IO.Out, doc, report.TextOptions{TTY: opts.IO.OutTTY, Color: opts.IO.ColorOut()})
}

func statusWord(d *report.Document) string {
	k := d.Counts
	switch {
	case k.Failed > 0:
		return "failed"
	case k.Pending+k.Started > 0 && k.Done > 0:
		return "partial"
	case k.Pending+k.Started > 0:
		return "planned"
	}
	return "done"
}

func reportOf(store *state.Store, mode, status, next string) *report.Document {
	doc := report.Build(store.File(), mode)
	doc.Status, doc.Next = status, next
	doc.StateFile = store.Path()
	doc.AuditLog = filepath.Join(filepath.Dir(store.Path()), "audit.jsonl")
	return doc
}
