package cli

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/steps"
)

func newRunbookCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runbook",
		Short: "List, show and validate runbooks and the step kinds they can use",
		Long: `A runbook is YAML: apiVersion npmir/v1, kind Runbook, a name, and stages in order, each
with steps {id, uses: <step kind>, with: {params}, approval: required, continue_on_error}.
Copy the default and edit it:

  npmir runbook show npm-maintainer-compromise > mine.yaml
  npmir runbook validate mine.yaml
  npmir contain --runbook mine.yaml debug@4.4.2`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the embedded runbooks and every step kind",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			w := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "RUNBOOK\tSTAGES")
			for _, n := range runbook.Names() {
				rb, err := runbook.Load(n, steps.RunbookLookup)
				if err != nil {
					return err
				}
				var names []string
				for _, s := range rb.Stages {
					names = append(names, s.Name)
				}
				fmt.Fprintf(w, "%s\t%v\n", n, names)
			}
			fmt.Fprintln(w, "\nSTEP KIND\tPROVIDER\tWHAT IT DOES")
			for _, k := range steps.Kinds() {
				i := k.Info()
				fmt.Fprintf(w, "%s\t%s\t%s\n", i.Name, i.Provider, i.Summary)
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show NAME",
		Short: "Print an embedded runbook's YAML (a starting point for your own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := runbook.Embedded(args[0])
			if err != nil {
				return &usageError{err.Error()}
			}
			_, err = f.IO.Out.Write(b)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a runbook: unknown step kinds, bad parameters, duplicate ids, with file:line",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return &usageError{fmt.Sprintf("read runbook: %v", err)}
			}
			rb, problems := runbook.Parse(data, args[0], steps.RunbookLookup)
			if len(problems) > 0 {
				for _, p := range problems {
					fmt.Fprintln(f.IO.Out, p.String())
				}
				return &reportedError{err: problems, msg: fmt.Sprintf("%s: %d problem(s)", args[0], len(problems))}
			}
			n := 0
			for _, s := range rb.Stages {
				n += len(s.Steps)
			}
			fmt.Fprintf(f.IO.Out, "%s: valid (%d stages, %d steps)\n", args[0], len(rb.Stages), n)
			return nil
		},
	})
	return cmd
}
