package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/state"
	"github.com/npmir/npmir/internal/testenv/npmpkg"
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

// With --since, verify decides: a malicious version is frozen; a release published after T that
// is only suspicious (here: part of a publish burst) is left alone under a runbook that says
// `suspicious: exclude` and becomes the known-good; the report gives the verdicts with rules.
func TestContainSinceFreezesOnlyWhatVerifyConvicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name := "since-verify-pkg"
	pub := func(v string, man map[string]any, files map[string][]byte) {
		t.Helper()
		if err := verd.Publish(ctx, npmpkg.Package{Name: name, Version: v, Manifest: man, Files: files}, "latest"); err != nil {
			t.Fatal(err)
		}
	}
	index := map[string][]byte{"index.js": []byte("module.exports = () => 'hi'\n")}
	pub("1.0.0", map[string]any{"main": "index.js"}, index)
	// T is just after 1.0.0's publish time as the registry recorded it (an authenticated publish
	// takes tens of milliseconds on Verdaccio, so the next one lands after T).
	c, _ := npmreg.New(npmreg.Options{Registry: verd.URL})
	p, err := c.Packument(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	t0, _ := p.PublishedAt("1.0.0")
	since := t0.Add(time.Millisecond).Format(time.RFC3339Nano)
	pub("1.0.1", map[string]any{"main": "index.js"}, map[string][]byte{"index.js": index["index.js"], "README.md": []byte("# fixed a typo\n")})
	pub("1.0.2", map[string]any{"main": "index.js", "scripts": map[string]any{"preinstall": "node setup_bun.js"}},
		map[string][]byte{"index.js": index["index.js"], "setup_bun.js": []byte("// npmir fixture: inert stand-in, does nothing\n")})
	e := newEnv(t)
	rb, _ := runbook.Embedded("npm-maintainer-compromise")
	custom := strings.Replace(string(rb), "uses: npm.verify\n", "uses: npm.verify\n        with: { suspicious: exclude }\n", 1)
	rbPath := filepath.Join(e["HOME"], "rb.yaml")
	if err := os.WriteFile(rbPath, []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, e, "contain", name, "--since", since, "--yes", "--runbook", rbPath, "--registry", verd.URL, "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	d := r.doc(t)
	if len(d.Targets) != 1 || strings.Join(d.Targets[0].Bad, ",") != "1.0.2" || d.Targets[0].KnownGood != "1.0.1" {
		t.Fatalf("targets %+v, want only 1.0.2 bad, known-good 1.0.1", d.Targets)
	}
	verdicts := map[string]string{}
	for _, v := range d.Targets[0].Verdicts {
		verdicts[v.Version] = v.Verdict
	}
	if verdicts["1.0.1"] != "suspicious" || verdicts["1.0.2"] != "malicious" {
		t.Errorf("verdicts %v", verdicts)
	}
	v := npmView(t, name, "1.0.1", "1.0.2")
	if v.DistTags["latest"] != "1.0.1" || v.Deprecated["1.0.1"] != "" || v.Deprecated["1.0.2"] == "" {
		t.Errorf("registry after contain: %+v", v)
	}
}
