package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/state"
)

func newConfigCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect npmir's configuration"}
	var ro RegistryOptions
	check := &cobra.Command{
		Use:   "check",
		Short: "Show what is configured and whether each credential works (read-only calls, secrets never printed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := f.Config()
			if err != nil {
				return err
			}
			w := f.IO.Out
			file := v.ConfigFileUsed()
			if file == "" {
				file = "(none: defaults, NPMIR_* variables and flags)"
			}
			fmt.Fprintf(w, "config file   %s\nstate dir     %s\nconcurrency   %d\n", file, f.StateDir(), f.Concurrency())
			client, token, err := f.NPM(ro)
			if err != nil {
				return err
			}
			source := "none (reads only; contain needs a token)"
			switch {
			case f.Getenv(v.GetString("npm.token_env")) != "":
				source = "$" + v.GetString("npm.token_env")
			case token != "":
				source = "~/.npmrc (" + client.Registry() + ")"
			}
			fmt.Fprintf(w, "npm registry  %s\nnpm token     %s\n", client.Registry(), source)
			if token == "" {
				return nil
			}
			user, err := client.Whoami(context.WithoutCancel(cmd.Context()), "")
			switch {
			case err != nil:
				fmt.Fprintf(w, "npm identity  ✗ %v\n", redactErr(err, token))
				return redactErr(err, token)
			case user == "":
				fmt.Fprintf(w, "npm identity  ✗ the registry does not recognise the token\n")
				return fmt.Errorf("%w: the registry does not recognise the token", npmreg.ErrAuth)
			}
			fmt.Fprintf(w, "npm identity  ✓ %s\n", user)
			return nil
		},
	}
	ro.AddFlags(check)
	cmd.AddCommand(check)
	return cmd
}

func newAuditCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check an incident's audit log and evidence"}
	var incidentID, dir string
	verifyCmd := &cobra.Command{
		Use:   "verify [--incident ID | --dir PATH]",
		Short: "Check the audit log's hash chain and re-hash the evidence against its manifest",
		Long: "Every audit line carries the SHA-256 of the line before it: editing or deleting a line breaks\n" +
			"the chain at the next one. Evidence files are re-hashed against manifest.json. Exit 1 on any problem.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir == "" {
				if incidentID == "" {
					return &usageError{"name the incident: --incident ID or --dir PATH"}
				}
				dir = state.Dir(f.StateDir(), incidentID)
			}
			recs, err := state.VerifyAudit(filepath.Join(dir, "audit.jsonl"))
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IO.Out, "audit log: %d records, chain intact\n", len(recs))
			store, err := state.OpenEvidence(dir)
			if err != nil {
				return err
			}
			problems, err := store.Verify()
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintf(f.IO.Out, "evidence problem: %+v\n", p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%d evidence problem(s)", len(problems))
			}
			fmt.Fprintf(f.IO.Out, "evidence: %d file(s), every hash matches the manifest\n", len(store.Entries()))
			return nil
		},
	}
	verifyCmd.Flags().StringVar(&incidentID, "incident", "", "incident id")
	verifyCmd.Flags().StringVar(&dir, "dir", "", "incident folder")
	cmd.AddCommand(verifyCmd)
	return cmd
}
