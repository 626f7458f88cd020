package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/npmir/npmir/internal/engine"
	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/runbook"
)

// Exit codes. They are a contract with scripts: add new ones, never renumber.
const (
	ExitOK        = 0 // everything in the plan is done (or, for plan/status, the command worked)
	ExitError     = 1 // an error: registry unreachable, state unreadable, op failed
	ExitUsage     = 2 // bad usage or input: flags, package names, unknown package, runbook
	ExitApproval  = 3 // a step needs approval and there is no terminal: re-run with --yes
	ExitAuth      = 4 // authentication or authorization failed (token, OTP)
	ExitResumable = 5 // stopped part-way (Ctrl-C, SIGTERM): re-run or `npmir resume`
	ExitManual    = 6 // done, but some ops need a person (listed as manual in the report)
)

const exitCodesHelp = `npmir exit codes (stable; scripts and SOAR playbooks may rely on them):

  0  done: every op in the plan is done;
     for plan, status and validate: the command worked; for inventory: every file
     was read and none pins, lists, installs or admits a bad version
  1  error: registry unreachable, an op failed, state file unreadable or locked;
     the state file is intact: fix the cause and re-run the same command.
     For inventory: consumers found, or a file could not be read (never counted as
     clean), or a merge is missing shards; stderr and the document say which
  2  bad usage or input: a malformed package spec, an unknown package or version,
     a bad flag, an invalid runbook (validate prints file:line for each problem)
  3  approval needed: a runbook step requires approval and there is no terminal to
     ask on; nothing was changed by that step: re-run with --yes to approve
  4  authentication or authorization failed: the registry refused the token (401/403),
     or wants a one-time password (pass --otp CODE or set NPMIR_NPM_OTP)
  5  stopped part-way (Ctrl-C or SIGTERM): resumable; re-run the same command or
     ` + "`npmir resume --incident ID`" + `
  6  done as far as npmir can go, but some ops need a person: a tag with no
     known-good version, a package whose only owner is the compromised account, a
     route the registry does not serve, a login session still live. They are listed
     as "manual" in the report (status needs_action); containment is not complete

With --output json the document's "exit_code" field carries the same number.
`

// usageError marks a command-line mistake (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// ExitCode maps an error to the documented exit codes. It is the only place that does.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var (
		ue  *usageError
		iue *incident.UsageError
		nue *npmreg.UsageError
		rbp runbook.Problems
	)
	var na *needsActionError
	switch {
	case errors.As(err, &na):
		return ExitManual
	case errors.Is(err, engine.ErrInterrupted), errors.Is(err, context.Canceled):
		return ExitResumable
	case errors.Is(err, engine.ErrApprovalNeeded):
		return ExitApproval
	case errors.Is(err, npmreg.ErrAuth), errors.Is(err, npmreg.ErrOTPRequired):
		return ExitAuth
	case errors.As(err, &ue), errors.As(err, &iue), errors.As(err, &nue), errors.As(err, &rbp):
		return ExitUsage
	}
	return ExitError
}

// needsActionError is a run that did all it could while some ops need a person (exit 6).
type needsActionError struct{ n int }

func (e *needsActionError) Error() string {
	return fmt.Sprintf("%d op(s) need a person: they are listed as manual in the report; containment is not complete until they are done", e.n)
}
