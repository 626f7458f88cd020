// Package cli is npmir's command line: one file per command, each with an Options struct holding
// its flags and dependencies and a run function that does the work. Exit codes are decided in
// exactly one place (ExitCode).
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Version is set at build time (-ldflags "-X github.com/npmir/npmir/internal/cli.Version=...").
var Version = "dev"

// Main runs npmir with args and returns the process exit code.
func Main(args []string, io *IOStreams, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// The first Ctrl-C finishes the ops in flight and stops; a second one kills at once.
		stop()
		if io.ErrTTY {
			io.Printf("\nStopping after the ops in flight (Ctrl-C again to abort at once)…\n")
		}
	}()
	return Run(ctx, args, &Factory{IO: io, Getenv: getenv, Now: time.Now})
}

// Run executes one command line with a prepared factory (tests call it directly).
func Run(ctx context.Context, args []string, f *Factory) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var rep *reportedError
	msg := err.Error()
	if errors.As(err, &rep) {
		msg = rep.msg
		if rep.next != "" {
			msg += "\n  next: " + rep.next
		}
	}
	fmt.Fprintf(f.IO.ErrOut, "npmir: %s\n", msg)
	return ExitCode(err)
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "npmir",
		Short: "Incident response for a compromised npm publishing identity",
		Long: `npmir stops trust from propagating when an npm maintainer's publishing identity is
compromised: it verifies what changed, freezes the bad versions (dist-tags back to the
last known-good release, deprecation), revokes the identity's reach, finds consumers,
and records every action in a resumable state file and a hash-chained audit log.

Start with a dry run, then contain:
  npmir plan debug@4.4.2
  npmir contain debug@4.4.2

Exit codes are documented by ` + "`npmir help exit-codes`" + `.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetVersionTemplate("npmir {{.Version}} (" + runtime.Version() + ")\n")
	root.PersistentFlags().StringVar(&f.configFile, "config", "", "config file (default $XDG_CONFIG_HOME/npmir/config.yaml)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	root.AddCommand(
		newContainCmd(f, nil, false),
		newContainCmd(f, nil, true),
		newResumeCmd(f, nil),
		newStatusCmd(f),
		newScopeCmd(f),
		newVerifyCmd(f),
		newInventoryCmd(f),
		newRehearseCmd(f),
		newConfigCmd(f),
		newAuditCmd(f),
		newRunbookCmd(f),
		newVersionCmd(f),
		newEnvCmd(f),
		&cobra.Command{Use: "exit-codes", Short: "What each exit code means", Long: exitCodesHelp},
	)
	// Unknown subcommands and bad args are usage errors, not generic ones.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return &usageError{fmt.Sprintf("unknown command %q for npmir (see npmir --help)", args[0])}
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return root
}

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print npmir's version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(f.IO.Out, "npmir %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

func newEnvCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: "List the environment variables npmir reads (secret values masked)",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			for _, v := range EnvVars {
				val := f.Getenv(v.Name)
				switch {
				case val == "":
					val = "(unset)"
				case v.Sensitive:
					val = "(set, hidden)"
				}
				fmt.Fprintf(f.IO.Out, "%-22s %-14s %s\n", v.Name, val, v.Doc)
			}
		},
	}
}
