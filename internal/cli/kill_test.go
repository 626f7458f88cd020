package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/npmir/npmir/internal/engine"
	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/state"
)

// normalState is the part of a state file that must not depend on whether the run was killed:
// which ops exist, their status and what they did. Times and attempt counts legitimately differ.
func normalState(t *testing.T, path, pkg string) string {
	t.Helper()
	f, err := state.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, st := range f.Steps {
		fmt.Fprintf(&b, "step %s/%s %s approved=%v\n", st.Stage, st.ID, st.Status, st.Approved)
	}
	for _, op := range f.Ops {
		res, _ := json.Marshal(op.Result)
		fmt.Fprintf(&b, "op %s %s %s err=%q\n", op.ID, op.Status, res, op.Error)
	}
	// Evidence hashes differ between packages (their contents name them): mask them.
	return hexRun.ReplaceAllString(strings.ReplaceAll(b.String(), pkg, "PKG"), "H")
}

var hexRun = regexp.MustCompile(`[0-9a-f]{16,64}`)

// normalRegistry reads the end state over HTTP (the npm client is used by the main acceptance
// test; here sixteen cases would spend most of their time starting it).
func normalRegistry(t *testing.T, pkg string) string {
	t.Helper()
	c, err := npmreg.New(npmreg.Options{Registry: verd.URL})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Packument(context.Background(), pkg, true)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tags %v\n", p.DistTags)
	for _, v := range p.SortedVersions() {
		fmt.Fprintf(&b, "%s deprecated=%q\n", v, p.Versions[v].Deprecated)
	}
	return strings.ReplaceAll(b.String(), pkg, "PKG")
}

// auditDoneOnce checks the chain and that every op is recorded done exactly once.
func auditDoneOnce(t *testing.T, dir string, ops int) {
	t.Helper()
	recs, err := state.VerifyAudit(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]int{}
	for _, r := range recs {
		if r.Event == "done" {
			done[r.Op]++
		}
	}
	if len(done) != ops {
		t.Errorf("audit records %d ops done, want %d: %v", len(done), ops, done)
	}
	for op, n := range done {
		if n != 1 {
			t.Errorf("audit records op %s done %d times", op, n)
		}
	}
}

// Kill npmir with SIGKILL at every op boundary and in the middle of every op, resume, and
// compare with an uninterrupted run: same registry end state, same state file, each mutation
// in the audit log once.
func TestKillAtEveryPointThenResumeConverges(t *testing.T) {
	t.Parallel()
	const ops = 5 // evidence (packument, tarball), latest, next, deprecate
	ref := "kill-ref"
	seed(t, ref, false)
	refEnv := newEnv(t)
	if r, _ := runBin(t, refEnv, "contain", ref+"@1.1.1", "--incident", "kill", "--yes", "--registry", verd.URL); r.code != 0 {
		t.Fatalf("reference run exit %d: %s", r.code, r.stderr)
	}
	refDir := filepath.Join(refEnv["NPMIR_STATE_DIR"], "kill")
	wantState := normalState(t, filepath.Join(refDir, "state.json"), ref)
	wantRegistry := normalRegistry(t, ref)
	auditDoneOnce(t, refDir, ops)

	for _, point := range engine.FaultPoints {
		for n := 1; n <= ops; n++ {
			if point == "mid" && n > ops {
				continue
			}
			t.Run(fmt.Sprintf("%s-%d", point, n), func(t *testing.T) {
				t.Parallel()
				pkg := fmt.Sprintf("kill-%s-%d", point, n)
				seed(t, pkg, false)
				e := newEnv(t)
				e["NPMIR_FAULT"] = fmt.Sprintf("%s:%d", point, n)
				r, ps := runBin(t, e, "contain", pkg+"@1.1.1", "--incident", "kill", "--yes", "--registry", verd.URL)
				ws, ok := ps.Sys().(syscall.WaitStatus)
				if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("want the run killed by SIGKILL at %s:%d; exit %d\n%s", point, n, r.code, r.stderr)
				}
				delete(e, "NPMIR_FAULT")
				dir := filepath.Join(e["NPMIR_STATE_DIR"], "kill")
				res, _ := runBin(t, e, "resume", "--incident", "kill", "--yes")
				if res.code != 0 {
					t.Fatalf("resume exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
				}
				if got := normalState(t, filepath.Join(dir, "state.json"), pkg); got != wantState {
					t.Errorf("state after kill+resume differs\n got: %s\nwant: %s", got, wantState)
				}
				if got := normalRegistry(t, pkg); got != wantRegistry {
					t.Errorf("registry after kill+resume differs\n got: %s\nwant: %s", got, wantRegistry)
				}
				auditDoneOnce(t, dir, ops)
			})
		}
	}
}
