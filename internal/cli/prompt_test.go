package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// runTTY runs npmir as if on a terminal, answering prompts from answers.
func runTTY(t *testing.T, e env, answers string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(answers), Out: &out, ErrOut: &errOut, InTTY: true, OutTTY: true, ErrTTY: true, NoColor: true}
	f := &Factory{IO: io, Getenv: func(k string) string { return e[k] }, Now: time.Now}
	code := Run(context.Background(), args, f)
	return result{out.String(), errOut.String(), code}
}

func TestTerminalApprovalPrompt(t *testing.T) {
	t.Parallel()
	seed(t, "prompt-yes-pkg", false)
	seed(t, "prompt-no-pkg", false)
	e := newEnv(t)
	r := runTTY(t, e, "y\nyes\n", "contain", "prompt-yes-pkg@1.1.1", "--registry", verd.URL)
	if r.code != 0 || strings.Count(r.stderr, "Approve? [y/N]") != 2 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stderr, r.stdout)
	}
	if !strings.Contains(r.stderr, "move latest of prompt-yes-pkg from 1.1.1 to 1.1.0") {
		t.Errorf("the prompt does not list the ops:\n%s", r.stderr)
	}
	// A terminal run prints the aligned table, not tab-separated fields.
	if !strings.Contains(r.stdout, "STAGE") || strings.Contains(r.stdout, "\t") {
		t.Errorf("terminal output is not a table:\n%s", r.stdout)
	}
	r = runTTY(t, e, "n\n", "contain", "prompt-no-pkg@1.1.1", "--registry", verd.URL)
	if r.code != ExitApproval || !strings.Contains(r.stderr, "not approved") {
		t.Fatalf("declined: exit %d\n%s", r.code, r.stderr)
	}
	if v := npmView(t, "prompt-no-pkg"); v.DistTags["latest"] != "1.1.1" {
		t.Errorf("a declined step changed the registry: %v", v.DistTags)
	}
}
