package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/sim"
	"github.com/npmir/npmir/internal/state"
)

// maintainerWorld is a simulated registry seeded with the compromised-maintainer scenario.
type maintainerWorld struct {
	reg *sim.Registry
	sc  *sim.Scenario
	env env
}

func newMaintainerWorld(t *testing.T, o sim.ScenarioOptions) *maintainerWorld {
	t.Helper()
	reg := sim.NewRegistry(sim.Options{Seed: 7})
	sc, err := sim.SeedCompromisedMaintainer(reg, o)
	if err != nil {
		t.Fatal(err)
	}
	reg.Start()
	t.Cleanup(reg.Close)
	e := newEnv(t)
	e["NPM_TOKEN"] = sc.Token
	var names []string
	for i, tok := range append(slices.Clone(sc.AttackerTokens), sc.SessionToken) {
		name := fmt.Sprintf("LEAKED_%d", i)
		e[name] = tok
		names = append(names, name)
	}
	cfg := filepath.Join(e["HOME"], "npmir.yaml")
	if err := os.WriteFile(cfg, []byte("npm:\n  trusted_publishers_allow: ["+sc.AllowedRepository+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e["CONFIG"] = cfg
	e["LEAKED"] = strings.Join(names, ",")
	return &maintainerWorld{reg: reg, sc: sc, env: e}
}

func (w *maintainerWorld) args(extra ...string) []string {
	a := []string{"contain", "--maintainer", w.sc.Maintainer, "--since", w.sc.Since.Format(time.RFC3339),
		"--tokens-created-after", "since", "--incident", "mc", "--yes", "--registry", w.reg.URL, "--config", w.env["CONFIG"], "--concurrency", "16"}
	for _, n := range strings.Split(w.env["LEAKED"], ",") {
		a = append(a, "--leaked-token-env", n)
	}
	return append(a, extra...)
}

// snapshot is the registry state the containment is about, for comparing runs.
func (w *maintainerWorld) snapshot() string {
	var b strings.Builder
	for _, p := range w.reg.Packages() {
		fmt.Fprintf(&b, "%s tags=%v owners=%v", p, w.reg.DistTags(p), w.reg.Owners(p))
		if a, ok := w.reg.Access(p); ok {
			fmt.Fprintf(&b, " access=%+v", a)
		}
		for _, v := range w.reg.Versions(p) {
			if d := w.reg.Deprecation(p, v); d != "" {
				fmt.Fprintf(&b, " %s:deprecated", v)
			}
		}
		var ids []string
		for _, c := range w.reg.Trust(p) {
			ids = append(ids, c.ID)
		}
		fmt.Fprintf(&b, " trust=%v\n", ids)
	}
	for _, tok := range append([]string{w.sc.Token, w.sc.SessionToken}, w.sc.AttackerTokens...) {
		fmt.Fprintf(&b, "token %.8s active=%v\n", tok, w.reg.TokenActive(tok))
	}
	return b.String()
}

// The acceptance on the simulated registry: 300 packages, 40 with versions after T.
func TestContainMaintainerBlastRadius(t *testing.T) {
	t.Parallel()
	w := newMaintainerWorld(t, sim.ScenarioOptions{})
	sc := w.sc
	r := run(t, w.env, append(w.args(), "--output", "json")...)
	if r.code != ExitManual {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	d := r.doc(t)
	if d.Scope == nil || d.Scope.Packages != 300 || d.Scope.Affected != 40 || len(d.Targets) != 40 {
		t.Fatalf("scope %+v, %d targets; want 300 packages, 40 affected", d.Scope, len(d.Targets))
	}
	if !strings.Contains(r.stderr, "can publish 300 package(s)") {
		t.Errorf("the blast radius was not shown before acting:\n%.500s", r.stderr)
	}
	frozen := 0
	for _, p := range sc.Packages {
		bad, affected := sc.Affected[p]
		tags := w.reg.DistTags(p)
		for tag, v := range tags {
			if slices.Contains(bad, v) {
				t.Errorf("%s: %s still points at bad %s", p, tag, v)
			}
		}
		for _, v := range w.reg.Versions(p) {
			dep := w.reg.Deprecation(p, v)
			if slices.Contains(bad, v) != (dep != "") {
				t.Errorf("%s@%s deprecated=%q (bad=%v)", p, v, dep, slices.Contains(bad, v))
			}
		}
		if !affected {
			continue
		}
		frozen++
		if tags["latest"] != sc.LastGood[p] {
			t.Errorf("%s: latest %s, want %s", p, tags["latest"], sc.LastGood[p])
		}
		if a, _ := w.reg.Access(p); !a.PublishRequiresTFA || a.AutomationTokenOverridesTFA {
			t.Errorf("%s: access %+v, want mfa=publish without token bypass", p, a)
		}
		owner := slices.Contains(w.reg.Owners(p), sc.Maintainer)
		if slices.Contains(sc.LastOwner, p) != owner {
			t.Errorf("%s: maintainer still owner = %v (last-owner case %v)", p, owner, slices.Contains(sc.LastOwner, p))
		}
		for _, c := range w.reg.Trust(p) {
			if c.ID == sc.RogueTrust[p] {
				t.Errorf("%s: rogue trusted publisher %s kept", p, c.ID)
			}
		}
		if id, ok := sc.AllowedTrust[p]; ok && !slices.ContainsFunc(w.reg.Trust(p), func(c sim.TrustConfig) bool { return c.ID == id }) {
			t.Errorf("%s: allowed trusted publisher %s removed", p, id)
		}
	}
	if frozen != 40 {
		t.Errorf("%d affected packages, want 40", frozen)
	}
	for i, tok := range sc.AttackerTokens {
		if w.reg.TokenActive(tok) {
			t.Errorf("attacker token %d still active", i)
		}
	}
	if !w.reg.TokenActive(sc.Token) {
		t.Error("npmir revoked the token it runs with")
	}
	if d.Counts.Manual != len(sc.LastOwner)+1 {
		t.Errorf("%d manual ops, want %d last-owner cases + 1 live session", d.Counts.Manual, len(sc.LastOwner))
	}
	if !strings.Contains(r.stdout, "only owner") || !strings.Contains(r.stdout, "still work") {
		t.Error("the report does not explain the last-owner cases and the live session")
	}
	out := outputsOf(t, w.env, r)
	for _, tok := range append([]string{sc.Token, sc.SessionToken}, sc.AttackerTokens...) {
		if strings.Contains(out, tok) {
			t.Fatal("a token value leaked into the output or state")
		}
	}

	// A second run changes nothing.
	w.reg.ResetStats()
	again := run(t, w.env, w.args()...)
	if again.code != ExitManual {
		t.Fatalf("second run exit %d: %s", again.code, again.stderr)
	}
	if ch := w.reg.Stats().Changed; len(ch) != 0 {
		t.Errorf("second run changed %v", ch)
	}
}

// Kill the maintainer-mode run at several points, resume, and compare with an uninterrupted run
// on an identically seeded registry.
func TestContainMaintainerKillResumeConverges(t *testing.T) {
	t.Parallel()
	o := sim.ScenarioOptions{Packages: 60, Affected: 12, LastOwner: 3}
	ref := newMaintainerWorld(t, o)
	if r, _ := runBin(t, ref.env, ref.args()...); r.code != ExitManual {
		t.Fatalf("reference run: exit %d\n%s", r.code, r.stderr)
	}
	want := ref.snapshot()
	for _, fault := range []string{"after-started:1", "mid:7", "after-apply:20", "after-audit:33", "after-done:41", "mid:45"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			w := newMaintainerWorld(t, o)
			w.env["NPMIR_FAULT"] = fault
			r, ps := runBin(t, w.env, w.args()...)
			if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("not killed at %s: exit %d\n%s", fault, r.code, r.stderr)
			}
			delete(w.env, "NPMIR_FAULT")
			res, _ := runBin(t, w.env, w.args()...) // re-running the same command resumes
			if res.code != ExitManual {
				t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
			}
			if got := w.snapshot(); got != want {
				t.Errorf("end state differs from the uninterrupted run\n got:\n%s\nwant:\n%s", got, want)
			}
			f, err := state.Read(filepath.Join(w.env["NPMIR_STATE_DIR"], "mc", "state.json"))
			if err != nil {
				t.Fatal(err)
			}
			changing := 0
			for _, op := range f.Ops {
				if op.Status == state.Done && op.Result.Changed {
					changing++
				}
			}
			auditDoneOnce(t, filepath.Join(w.env["NPMIR_STATE_DIR"], "mc"), countDone(f))
			_ = changing
		})
	}
}

func countDone(f *state.File) int {
	n := 0
	for _, op := range f.Ops {
		if op.Status == state.Done {
			n++
		}
	}
	return n
}

// With 30 % of requests answered 429 + Retry-After: 1, the run completes and every op is done
// once.
func TestContainMaintainerUnderRateLimiting(t *testing.T) {
	t.Parallel()
	w := newMaintainerWorld(t, sim.ScenarioOptions{Packages: 24, Affected: 6, LastOwner: 2, OldTokens: 2})
	w.reg.SetRateLimit(sim.RateLimit{Fraction: 0.3, RetryAfter: 1})
	r := run(t, w.env, append(w.args("--concurrency", "32"), "--output", "json")...)
	if r.code != ExitManual {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	st := w.reg.Stats()
	throttled := 0
	for _, e := range w.reg.Log() {
		if e.Status == 429 {
			throttled++
		}
	}
	if throttled < st.Requests/5 {
		t.Fatalf("only %d of %d requests were refused: the limiter did not bite", throttled, st.Requests)
	}
	for route, n := range st.Landed {
		if n != 1 && !strings.HasPrefix(route, "PUT /") && !strings.HasPrefix(route, "POST /") {
			t.Errorf("%s landed %d times", route, n)
		}
	}
	d := r.doc(t)
	if d.Counts.Failed != 0 || d.Counts.Pending != 0 {
		t.Errorf("counts %+v", d.Counts)
	}
	auditDoneOnce(t, filepath.Join(w.env["NPMIR_STATE_DIR"], "mc"), d.Counts.Done)
}
