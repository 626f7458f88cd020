package cli

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/report"
	"github.com/npmir/npmir/internal/state"
)

// Issue 5's acceptance against a real Verdaccio: tokens created through the tokens API are
// listed, revoked, and proven refused afterwards; the login-issued token, which the list does
// not show, is reported as a session that may still be live; the freeze works as in the
// foundation; the owner and 2FA steps, which Verdaccio serves no routes for, end as manual
// actions rather than failures; no token value is written anywhere.
//
// The account is one of this test's own (not the harness's admin): npmir revokes every listed
// token of the --maintainer account, and the shared Verdaccio's admin serves the other tests.
// Its login token cannot be revoked through the API anyway (Verdaccio 6.8 lists only tokens
// made through POST /-/npm/v1/tokens, so there is no key to revoke it by), which the test
// confirms: it still works after the run.
func TestTokensVerdaccioRevokeAndSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const user, password = "npmir-tokens-victim", "npmir-tokens-victim-password-1"
	login, err := verd.AddUser(ctx, user, password)
	if err != nil {
		t.Fatal(err)
	}
	client, err := npmreg.New(npmreg.Options{Registry: verd.URL, Token: login})
	if err != nil {
		t.Fatal(err)
	}
	tok1, err := client.CreateToken(ctx, password, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := client.CreateToken(ctx, password, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range []string{tok1.Token, tok2.Token, login} {
		if who, works, err := client.TokenWorks(ctx, tok); err != nil || !works || who != user {
			t.Fatalf("before the run, token #%d: works=%v as %q, %v", i+1, works, who, err)
		}
	}
	listed, err := client.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if keys := tokenKeys(listed); !slices.Equal(keys, sortedStrings(tok1.Key, tok2.Key)) {
		t.Fatalf("before the run the account lists tokens %v, want the two API tokens %v", keys, sortedStrings(tok1.Key, tok2.Key))
	}
	for _, tk := range listed {
		if npmreg.TokenMatches(tk.Token, login) {
			t.Fatalf("the login token is listed (%s): the session case would not arise", tk.Token)
		}
	}

	since := time.Now().UTC().Add(-time.Minute).Truncate(time.Second) // before the seed
	name := "npmir-tokens-verd-pkg"
	seed(t, name, false)

	e := newEnv(t)
	e["NPM_TOKEN"] = login
	e["TOK1"], e["TOK2"] = tok1.Token, tok2.Token
	r := run(t, e, "contain", name+"@1.1.1", "--maintainer", user, "--since", since.Format(time.RFC3339), "--yes",
		"--leaked-token-env", "TOK1", "--leaked-token-env", "TOK2", "--registry", verd.URL, "--output", "json")
	// Owners and 2FA cannot be set on Verdaccio: those ops need a person (exit 6).
	if r.code != ExitManual {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	d := r.doc(t)
	if d.Status != "needs_action" || d.ExitCode != ExitManual || d.Counts.Failed != 0 || d.Counts.Pending != 0 || d.Counts.Started != 0 {
		t.Fatalf("status %s exit %d counts %+v", d.Status, d.ExitCode, d.Counts)
	}
	// Verdaccio serves no maintainer listing and its search does not index maintainers: the
	// blast radius is the package named, nothing of the other tests' packages.
	if len(d.Targets) != 1 || d.Targets[0].Package != name || !slices.Equal(d.Targets[0].Bad, []string{"1.1.1"}) {
		t.Fatalf("targets %+v, want only %s@1.1.1", d.Targets, name)
	}

	// The two API tokens were listed and revoked, each proven refused right after.
	revoked := map[string]bool{}
	step := findStep(t, d, "revoke", "revoke-tokens")
	if step.Status != "planned" {
		t.Fatalf("revoke-tokens %s: %s", step.Status, step.Reason)
	}
	for _, op := range step.Ops {
		if !strings.HasPrefix(op.ID, "npm/token/") {
			continue
		}
		var p struct{ Key string }
		if err := json.Unmarshal(op.Params, &p); err != nil || p.Key == "" {
			t.Fatalf("op %s: params %s carry no token key (%v)", op.ID, op.Params, err)
		}
		revoked[p.Key] = true
		if op.Status != state.Done || op.Result == nil || !op.Result.Changed || !strings.Contains(op.Result.Summary, "now refuses it") {
			t.Errorf("op %s: %s %+v %s", op.ID, op.Status, op.Result, op.Error)
		}
	}
	for _, key := range []string{tok1.Key, tok2.Key} {
		if !revoked[key] {
			t.Errorf("no revoke op for token key %s; ops: %v", key, opIDs(d))
		}
	}
	if len(revoked) != 2 {
		t.Errorf("%d revoke ops, want 2 (the login token has no key to revoke by)", len(revoked))
	}
	verifyOp := findOp(t, step, "npm/tokens/verify-refused/"+user)
	if verifyOp.Status != state.Done || verifyOp.Result == nil || !strings.Contains(verifyOp.Result.Summary, "all 2 leaked token(s) are refused") {
		t.Errorf("post-revoke check: %s %+v %s", verifyOp.Status, verifyOp.Result, verifyOp.Error)
	}
	// The plan says that the token npmir runs with is a login session the list does not show.
	if !slices.ContainsFunc(step.Notes, func(n string) bool {
		return strings.Contains(n, "not in the account's token list") && strings.Contains(n, "may still be live")
	}) {
		t.Errorf("revoke-tokens notes do not report the login session: %q", step.Notes)
	}

	// The registry agrees: the API tokens are refused and gone from the list; the login session
	// still works (nothing revoked it: the notes are right to warn), and so does the admin's.
	for i, tok := range []string{tok1.Token, tok2.Token} {
		if who, works, err := client.TokenWorks(ctx, tok); err != nil || works {
			t.Errorf("after the run, API token #%d: works=%v as %q, %v", i+1, works, who, err)
		}
	}
	if left, err := client.Tokens(ctx); err != nil || len(left) != 0 {
		t.Errorf("after the run the account still lists %v (%v)", tokenKeys(left), err)
	}
	if who, works, err := client.TokenWorks(ctx, login); err != nil || !works || who != user {
		t.Errorf("the login session: works=%v as %q, %v; want still live (Verdaccio cannot revoke it through the tokens API)", works, who, err)
	}
	if who, works, err := client.TokenWorks(ctx, verd.Token); err != nil || !works || who != verd.User {
		t.Errorf("the harness admin's login token: works=%v as %q, %v", works, who, err)
	}

	// Owner and 2FA settings have no routes on Verdaccio: manual actions with the npm command,
	// not failures.
	for _, id := range []string{"npm/owner/" + name + "/" + user, "npm/access/" + name + "/mfa-publish"} {
		op := findOpIn(t, d, id)
		if op.Status != state.Manual || op.Result == nil || !strings.Contains(op.Result.Summary, "npm ") {
			t.Errorf("op %s: %s %+v %s; want manual, naming the npm command", id, op.Status, op.Result, op.Error)
		}
	}

	// The freeze, as in the foundation.
	v := npmView(t, name, "1.1.1", "1.1.0")
	if v.DistTags["latest"] != "1.1.0" || v.DistTags["next"] != "1.1.0" {
		t.Errorf("dist-tags = %v, want latest and next at 1.1.0", v.DistTags)
	}
	if !strings.Contains(v.Deprecated["1.1.1"], d.Incident) {
		t.Errorf("1.1.1 deprecated = %q, want it to name incident %s", v.Deprecated["1.1.1"], d.Incident)
	}
	if v.Deprecated["1.1.0"] != "" {
		t.Errorf("good 1.1.0 was deprecated: %q", v.Deprecated["1.1.0"])
	}
	for _, id := range []string{"npm/dist-tag/" + name + "/latest", "npm/dist-tag/" + name + "/next", "npm/deprecate/" + name + "/1.1.1"} {
		if op := findOpIn(t, d, id); op.Status != state.Done || op.Result == nil || !op.Result.Changed {
			t.Errorf("op %s: %s %+v %s", id, op.Status, op.Result, op.Error)
		}
	}

	// No token value anywhere: outputs, state, audit, evidence.
	out := outputsOf(t, e, r)
	for i, tok := range []string{login, tok1.Token, tok2.Token} {
		if strings.Contains(out, tok) {
			t.Errorf("token #%d appears in an output or a file under the state dir", i+1)
		}
	}
}

func findStep(t *testing.T, d *report.Document, stage, id string) report.Step {
	t.Helper()
	for _, st := range d.Stages {
		for _, s := range st.Steps {
			if st.Name == stage && s.ID == id {
				return s
			}
		}
	}
	t.Fatalf("no step %s/%s in the document", stage, id)
	return report.Step{}
}

func findOp(t *testing.T, s report.Step, id string) state.Op {
	t.Helper()
	for _, op := range s.Ops {
		if op.ID == id {
			return op
		}
	}
	t.Fatalf("no op %s in step %s; ops: %v", id, s.ID, s.Ops)
	return state.Op{}
}

func findOpIn(t *testing.T, d *report.Document, id string) state.Op {
	t.Helper()
	for _, st := range d.Stages {
		for _, s := range st.Steps {
			for _, op := range s.Ops {
				if op.ID == id {
					return op
				}
			}
		}
	}
	t.Fatalf("no op %s; ops: %v", id, opIDs(d))
	return state.Op{}
}

func tokenKeys(ts []npmreg.Token) []string {
	var keys []string
	for _, tk := range ts {
		keys = append(keys, tk.Key)
	}
	slices.Sort(keys)
	return keys
}

func sortedStrings(s ...string) []string {
	slices.Sort(s)
	return s
}
