package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/npmir/npmir/internal/state"
)

// The foundation's acceptance: after contain --yes, the real npm client sees the tags back on the
// known-good version, the bad version deprecated with the incident id, and a fresh install
// resolves to the known-good version. Unscoped and scoped.
func TestContainFreezesAgainstVerdaccio(t *testing.T) {
	for _, name := range []string{"demo-pkg", "@acme/demo-widget"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			seed(t, name, true) // published with the real npm client
			e := newEnv(t)
			r := run(t, e, "contain", name+"@1.1.1", "--yes", "--registry", verd.URL, "--output", "json")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			d := r.doc(t)
			if d.Status != "done" || d.Counts.Done != 5 || d.Counts.Changed != 5 {
				t.Fatalf("status %s counts %+v", d.Status, d.Counts)
			}
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
			proj := t.TempDir()
			if err := os.WriteFile(filepath.Join(proj, "package.json"), []byte(`{"name":"consumer","version":"1.0.0","private":true}`), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := verd.Npm(context.Background(), proj, "install", name, "--ignore-scripts"); err != nil {
				t.Fatal(err, out)
			}
			var installed struct{ Version string }
			b, err := os.ReadFile(filepath.Join(proj, "node_modules", filepath.FromSlash(name), "package.json"))
			if err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal(b, &installed)
			if installed.Version != "1.1.0" {
				t.Errorf("npm install %s installed %s, want 1.1.0", name, installed.Version)
			}
			if strings.Contains(outputsOf(t, e, r), verd.Token) {
				t.Error("the NPM_TOKEN value appears in an output or a state file")
			}
		})
	}
}

// Dry run performs zero mutating requests (counted at the server's door) and lists exactly the
// ops the real run then performs. A re-run of the finished incident changes nothing.
func TestDryRunZeroWritesSameOpsAndRerunIsNoop(t *testing.T) {
	t.Parallel()
	name := "dry-run-pkg"
	seed(t, name, false)
	proxy := newCounter(t, verd.URL)
	e := newEnv(t)
	plan := run(t, e, "plan", name+"@1.1.1", "--registry", proxy.URL, "--output", "json")
	if plan.code != 0 {
		t.Fatalf("plan exit %d: %s", plan.code, plan.stderr)
	}
	dry := run(t, e, "contain", name+"@1.1.1", "--dry-run", "--registry", proxy.URL, "--output", "json")
	if n := proxy.writes.Load(); n != 0 {
		t.Fatalf("dry run sent %d mutating requests: %v", n, proxy.log)
	}
	if _, err := os.Stat(e["NPMIR_STATE_DIR"]); !os.IsNotExist(err) {
		t.Errorf("dry run wrote state: %v", err)
	}
	real := run(t, e, "contain", name+"@1.1.1", "--yes", "--registry", proxy.URL, "--output", "json")
	if real.code != 0 {
		t.Fatalf("contain exit %d: %s", real.code, real.stderr)
	}
	planIDs, dryIDs, realIDs := opIDs(plan.doc(t)), opIDs(dry.doc(t)), opIDs(real.doc(t))
	if !slices.Equal(planIDs, realIDs) || !slices.Equal(dryIDs, realIDs) || len(realIDs) != 5 {
		t.Fatalf("ops differ:\nplan %v\ndry  %v\nreal %v", planIDs, dryIDs, realIDs)
	}
	if w := proxy.writes.Load(); w != 3 {
		t.Errorf("the real run sent %d writes, want 3 (two tag moves, one deprecate): %v", w, proxy.log)
	}
	before := proxy.writes.Load()
	again := run(t, e, "contain", name+"@1.1.1", "--yes", "--registry", proxy.URL, "--output", "json")
	if again.code != 0 {
		t.Fatalf("re-run exit %d: %s", again.code, again.stderr)
	}
	if w := proxy.writes.Load() - before; w != 0 {
		t.Errorf("re-run sent %d writes", w)
	}
	d := again.doc(t)
	if d.Counts.Done != 5 || d.Counts.Pending != 0 || d.Status != "done" {
		t.Errorf("re-run counts %+v status %s", d.Counts, d.Status)
	}
	recs, err := state.VerifyAudit(filepath.Join(e["NPMIR_STATE_DIR"], d.Incident, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	done := 0
	for _, r := range recs {
		if r.Event == "done" {
			done++
		}
	}
	if done != 5 {
		t.Errorf("audit has %d done records after a run and a re-run, want 5", done)
	}
}
