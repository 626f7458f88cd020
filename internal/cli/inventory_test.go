package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"github.com/npmir/npmir/internal/testenv/fstree"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/inventory"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/state"
)

// The lockfile fixtures sit next to the repository (CI clones it beside shared/); a missing
// tree fails rather than skips, or these tests could silently stop testing anything.
func inventoryFixtures(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "fixtures", "lockfiles")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("lockfile fixtures not found at %s (the repository must sit next to shared/): %v", dir, err)
	}
	return dir
}

func inventoryEnv(t *testing.T) env {
	home := t.TempDir()
	return env{"HOME": home, "NPMIR_STATE_DIR": filepath.Join(home, "state")}
}

// lockV3 is a package-lock v3 installing the given name@version pairs at the top level.
func lockV3(pairs ...string) string {
	var b strings.Builder
	b.WriteString(`{"name": "app", "lockfileVersion": 3, "requires": true, "packages": {"": {"name": "app"}`)
	for _, p := range pairs {
		at := strings.LastIndexByte(p, '@')
		b.WriteString(`, "node_modules/` + p[:at] + `": {"version": "` + p[at+1:] + `"}`)
	}
	b.WriteString("}}\n")
	return b.String()
}

func inventoryDoc(t *testing.T, r result) *inventory.Result {
	t.Helper()
	doc, err := inventory.ReadJSON(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("stdout is not an inventory document: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return doc
}

// filesByTarget maps each matched target to the files (relative to root) reporting it.
func filesByTarget(t *testing.T, doc *inventory.Result, root string) map[string][]string {
	t.Helper()
	seen := map[string]map[string]bool{}
	for _, f := range doc.Findings {
		rel, err := filepath.Rel(root, f.File)
		if err != nil {
			t.Fatal(err)
		}
		if seen[f.Target] == nil {
			seen[f.Target] = map[string]bool{}
		}
		seen[f.Target][filepath.ToSlash(rel)] = true
	}
	out := map[string][]string{}
	for tg, files := range seen {
		for f := range files {
			out[tg] = append(out[tg], f)
		}
		sort.Strings(out[tg])
	}
	return out
}

// For targets drawn from the peer's answer for the five real lockfiles (one pair in a single
// file, one in every file, one in between, a scoped one) the files reported are exactly the
// files whose expected set holds the pair.
func TestInventoryFixturesPackage(t *testing.T) {
	t.Parallel()
	lf := inventoryFixtures(t)
	real := filepath.Join(lf, "real")
	raw, err := os.ReadFile(filepath.Join(lf, "expected", "real.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string]struct{ Packages []string }
	if err := json.Unmarshal(raw, &expected); err != nil {
		t.Fatal(err)
	}
	holders := map[string][]string{}
	for file, e := range expected {
		for _, p := range e.Packages {
			holders[p] = append(holders[p], file)
		}
	}
	pairs := make([]string, 0, len(holders))
	for p := range holders {
		sort.Strings(holders[p])
		pairs = append(pairs, p)
	}
	sort.Strings(pairs)
	pick := map[string]bool{}
	for _, want := range []func(p string) bool{
		func(p string) bool { return len(holders[p]) == 1 && !strings.HasPrefix(p, "@") },
		func(p string) bool { return len(holders[p]) == len(expected) },
		func(p string) bool { return len(holders[p]) == 2 },
		func(p string) bool { return len(holders[p]) == 3 && strings.HasPrefix(p, "@") },
	} {
		found := false
		for _, p := range pairs {
			if want(p) && !pick[p] {
				pick[p], found = true, true
				break
			}
		}
		if !found {
			t.Fatal("the fixtures no longer hold a pair of every kind this test draws")
		}
	}
	args := []string{"inventory", real, "-o", "json", "--package", "left-pad@0.0.0-never"}
	want := map[string][]string{}
	for p := range pick {
		args = append(args, "--package", p)
		want[p] = holders[p]
	}
	r := run(t, inventoryEnv(t), args...)
	if r.code != ExitError || !strings.Contains(r.stderr, "not clean:") {
		t.Fatalf("findings must exit 1 and say so: exit %d\n%s", r.code, r.stderr)
	}
	doc := inventoryDoc(t, r)
	if got := filesByTarget(t, doc, real); !reflect.DeepEqual(got, want) {
		t.Errorf("files per target:\n got  %v\n want %v", got, want)
	}
	if len(doc.Files) != len(expected) || len(doc.Errors) != 0 {
		t.Errorf("%d files scanned (want %d), errors %+v", len(doc.Files), len(expected), doc.Errors)
	}
}

const inventoryManifest = `{"name": "lib", "dependencies": {"chalk": "^5.6.0"}}`

func TestInventoryFormats(t *testing.T) {
	t.Parallel()
	dir := fstree.Write(t, map[string]string{
		"app/package-lock.json":   lockV3("debug@4.4.2", "ms@2.1.3"),
		"lib/package.json":        inventoryManifest,
		"clean/package-lock.json": lockV3("debug@4.4.1"),
	})
	base := []string{"inventory", dir, "--package", "debug@4.4.2", "--package", "chalk@5.6.1"}
	e := inventoryEnv(t)

	r := run(t, e, append(base, "-o", "json")...)
	doc := inventoryDoc(t, r)
	if r.code != ExitError || len(doc.Findings) != 2 || len(doc.Files) != 3 {
		t.Fatalf("exit %d, %d findings, %d files\n%s", r.code, len(doc.Findings), len(doc.Files), r.stderr)
	}
	for _, want := range []string{filepath.Join(dir, "app", "package-lock.json"), filepath.Join(dir, "lib", "package.json"), "admit one by range"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not name %s:\n%s", want, r.stderr)
		}
	}

	r = run(t, e, append(base, "-o", "csv")...)
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "kind" {
		t.Errorf("csv: %v, %d rows\n%s", err, len(rows), r.stdout)
	}

	r = run(t, e, append(base, "-o", "sarif")...)
	var sarif struct {
		Version string
		Runs    []struct {
			Results []struct {
				RuleID    string
				Locations []struct {
					PhysicalLocation struct{ ArtifactLocation struct{ URI string } }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 2 {
		t.Errorf("sarif: %v %+v\n%s", err, sarif, r.stdout)
	}

	r = run(t, e, append(base, "-o", "markdown")...)
	if !strings.HasPrefix(r.stdout, "## npm inventory") || !strings.Contains(r.stdout, "package-lock.json") {
		t.Errorf("markdown:\n%s", r.stdout)
	}

	// Piped, the table is one tab-separated row per finding, for cut and awk.
	r = run(t, e, base...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "locked\t") || !strings.HasPrefix(lines[1], "exposed\t") {
		t.Errorf("table:\n%s", r.stdout)
	}

	// --out writes the document there and nothing to stdout; the exit code is the same.
	out := filepath.Join(t.TempDir(), "inv.sarif")
	r = run(t, e, append(base, "-o", "sarif", "--out", out)...)
	b, err := os.ReadFile(out)
	if r.code != ExitError || r.stdout != "" || err != nil || !json.Valid(b) || !strings.Contains(r.stderr, "wrote the sarif document to "+out) {
		t.Errorf("--out: exit %d, stdout %q, %v\n%s", r.code, r.stdout, err, r.stderr)
	}
}

func TestInventoryCleanExitsZero(t *testing.T) {
	t.Parallel()
	dir := fstree.Write(t, map[string]string{"app/package-lock.json": lockV3("debug@4.4.1")})
	r := run(t, inventoryEnv(t), "inventory", dir, "--package", "debug@4.4.2,4.4.3", "-o", "json")
	doc := inventoryDoc(t, r)
	if r.code != ExitOK || !doc.Clean() || len(doc.Targets) != 2 || !strings.Contains(r.stderr, "✓ clean: 1 file(s) checked") {
		t.Fatalf("exit %d %+v\n%s", r.code, doc, r.stderr)
	}
}

// An unreadable file is never clean: exit 1 naming each file and why, with or without findings
// elsewhere, in every format.
func TestInventoryUnreadableFileFailsTheRun(t *testing.T) {
	t.Parallel()
	lf := inventoryFixtures(t)
	notJSON, err := os.ReadFile(filepath.Join(lf, "peer", "packagelockjson", "not-json.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := fstree.Write(t, map[string]string{
		"good/package-lock.json":   lockV3("debug@4.4.2"),
		"broken/package-lock.json": string(notJSON),
		"cut/package-lock.json":    `{"name": "x", "lockfileVersion": 3, "packages": {"node_modules/debug": {"version": "4.4.2"`,
	})
	broken, cut := filepath.Join(dir, "broken", "package-lock.json"), filepath.Join(dir, "cut", "package-lock.json")
	e := inventoryEnv(t)
	for _, tc := range []struct {
		name   string
		target string
		args   []string
	}{
		{"findings elsewhere, json", "debug@4.4.2", []string{"-o", "json"}},
		{"no finding, table", "chalk@5.6.1", nil},
		{"no finding, sarif", "chalk@5.6.1", []string{"-o", "sarif"}},
		{"no prefilter", "chalk@5.6.1", []string{"--no-prefilter", "-o", "csv"}},
	} {
		r := run(t, e, append([]string{"inventory", dir, "--package", tc.target}, tc.args...)...)
		if r.code != ExitError {
			t.Errorf("%s: exit %d, want %d\n%s", tc.name, r.code, ExitError, r.stderr)
		}
		for _, want := range []string{"inventory incomplete: 2 file(s) could not be read", "\n  " + broken + ":", "\n  " + cut + ":"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, want, r.stderr)
			}
		}
		if !strings.Contains(r.stdout, broken) || !strings.Contains(r.stdout, cut) {
			t.Errorf("%s: the document does not list the unreadable files:\n%s", tc.name, r.stdout)
		}
		if strings.Contains(r.stderr, "✓") {
			t.Errorf("%s: an incomplete inventory printed a clean mark:\n%s", tc.name, r.stderr)
		}
	}
}

// Shards cover every file exactly once: merging the documents of 1/3, 2/3 and 3/3 gives the
// unsharded result; a merge without one of them exits 1 naming it.
func TestInventoryShardMergeEqualsFullScan(t *testing.T) {
	t.Parallel()
	lf := inventoryFixtures(t)
	e := inventoryEnv(t)
	targets := []string{"--package", "ms@2.1.3", "--package", "wrappy@1.0.2", "--package", "supports-color@5.5.0"}
	full := run(t, e, append([]string{"inventory", lf, "-o", "json"}, targets...)...)
	want := inventoryDoc(t, full)
	if len(want.Files) < 8 || len(want.Findings) == 0 {
		t.Fatalf("the fixture tree is too small to shard: %d files, %d findings", len(want.Files), len(want.Findings))
	}
	out := t.TempDir()
	var docs []string
	for _, sh := range []string{"1/3", "2/3", "3/3"} {
		p := filepath.Join(out, "inv-"+sh[:1]+".json")
		r := run(t, e, append([]string{"inventory", lf, "--shard", sh, "-o", "json", "--out", p}, targets...)...)
		if r.code == ExitUsage || r.stdout != "" {
			t.Fatalf("shard %s: exit %d, stdout %q\n%s", sh, r.code, r.stdout, r.stderr)
		}
		docs = append(docs, p)
	}
	merged := run(t, e, append([]string{"inventory", "merge", "-o", "json"}, docs...)...)
	got := inventoryDoc(t, merged)
	if merged.code != full.code {
		t.Errorf("merge exits %d, the full scan %d\n%s", merged.code, full.code, merged.stderr)
	}
	if len(got.Shards) != 3 || len(got.MissingShards()) != 0 {
		t.Errorf("shards %v", got.Shards)
	}
	if !reflect.DeepEqual(got.Files, want.Files) || !reflect.DeepEqual(got.Findings, want.Findings) ||
		!reflect.DeepEqual(got.Errors, want.Errors) || !reflect.DeepEqual(got.Targets, want.Targets) {
		t.Errorf("merged differs from the full scan: %d/%d files, %d/%d findings, %d/%d errors",
			len(got.Files), len(want.Files), len(got.Findings), len(want.Findings), len(got.Errors), len(want.Errors))
	}

	partial := run(t, e, "inventory", "merge", docs[0], docs[2])
	if partial.code != ExitError || !strings.Contains(partial.stderr, "shard(s) 2/3 missing") {
		t.Errorf("a merge missing 2/3: exit %d\n%s", partial.code, partial.stderr)
	}
	if r := run(t, e, "inventory", "merge", docs[0], docs[0]); r.code != ExitUsage || !strings.Contains(r.stderr, "appears twice") {
		t.Errorf("a shard twice: exit %d\n%s", r.code, r.stderr)
	}
	notDoc := filepath.Join(out, "other.json")
	_ = os.WriteFile(notDoc, []byte(`{"kind": "npmir.incident"}`), 0o644)
	if r := run(t, e, "inventory", "merge", docs[0], notDoc); r.code != ExitUsage || !strings.Contains(r.stderr, notDoc) {
		t.Errorf("not an inventory document: exit %d\n%s", r.code, r.stderr)
	}
}

// An advisory's open range (introduced 0, no fix) is refused until the responder decides:
// narrow with --package, or accept every version with --include-over-broad.
func TestInventoryAdvisoryOverBroad(t *testing.T) {
	t.Parallel()
	mal := filepath.Join("..", "..", "testdata", "inventory-cli", "MAL-2025-47141.json")
	dir := fstree.Write(t, map[string]string{
		"bad/package-lock.json":    lockV3("@ctrl/tinycolor@4.1.1"),
		"older/package-lock.json":  lockV3("@ctrl/tinycolor@4.0.0"),
		"ranged/package-lock.json": lockV3("@crowdstrike/commitlint@8.1.2"),
		"fixed/package-lock.json":  lockV3("@crowdstrike/commitlint@8.1.3"),
	})
	e := inventoryEnv(t)

	r := run(t, e, "inventory", dir, "--advisory", mal, "-o", "json")
	if r.code != ExitUsage || r.stdout != "" {
		t.Fatalf("over-broad range accepted: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"exact versions: @ctrl/tinycolor@4.1.1, @ctrl/tinycolor@4.1.2",
		"range:          @crowdstrike/commitlint@[>=8.1.1 <8.1.3]",
		"over-broad:     @ctrl/tinycolor@[*]",
		"ignored:        affected[2]: ecosystem \"PyPI\"",
		"marks every version of @ctrl/tinycolor as affected",
		"--package @ctrl/tinycolor@4.1.1 --package @ctrl/tinycolor@4.1.2",
		"--include-over-broad",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}

	// Narrowed as the message says: the listed versions and the bounded range match.
	r = run(t, e, "inventory", dir, "--advisory", mal, "--package", "@ctrl/tinycolor@4.1.1", "--package", "@ctrl/tinycolor@4.1.2", "-o", "json")
	got := filesByTarget(t, inventoryDoc(t, r), dir)
	want := map[string][]string{
		"@ctrl/tinycolor@4.1.1":                    {"bad/package-lock.json"},
		"@crowdstrike/commitlint@[>=8.1.1 <8.1.3]": {"ranged/package-lock.json"},
	}
	if r.code != ExitError || !reflect.DeepEqual(got, want) {
		t.Errorf("narrowed: exit %d, got %v, want %v\n%s", r.code, got, want, r.stderr)
	}

	// Accepted: every version of the package matches.
	r = run(t, e, "inventory", dir, "--advisory", mal, "--include-over-broad", "-o", "json")
	got = filesByTarget(t, inventoryDoc(t, r), dir)
	if r.code != ExitError || len(got["@ctrl/tinycolor@4.1.1"]) != 1 || !reflect.DeepEqual(got["@ctrl/tinycolor@[*]"], []string{"older/package-lock.json"}) {
		t.Errorf("include-over-broad: exit %d, got %v\n%s", r.code, got, r.stderr)
	}

	// A typosquat record lists no version: the message cannot suggest one.
	squat := filepath.Join("..", "..", "testdata", "inventory-cli", "MAL-typosquat.json")
	r = run(t, e, "inventory", dir, "--advisory", squat)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--package tinycolour@VERSION") {
		t.Errorf("typosquat: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, e, "inventory", dir, "--advisory", squat, "--include-over-broad"); r.code != ExitOK {
		t.Errorf("typosquat accepted, nothing uses it: exit %d\n%s", r.code, r.stderr)
	}
}

// --incident takes the bad versions the incident's state file records (after verify narrowed
// them), not the spec's.
func TestInventoryIncidentTargets(t *testing.T) {
	t.Parallel()
	e := inventoryEnv(t)
	writeState := func(id string, targets []state.Target) {
		t.Helper()
		st, err := state.Open(filepath.Join(state.Dir(e["NPMIR_STATE_DIR"], id), "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		spec := &incident.Spec{ID: id, Targets: []incident.Target{{Name: "debug", Versions: []string{"4.4.1", "4.4.2"}}}}
		if err := st.Init(&state.File{Incident: spec, Targets: targets}); err != nil {
			t.Fatal(err)
		}
	}
	writeState("inc-debug", []state.Target{{Package: "debug", Bad: []string{"4.4.2"}}, {Package: "chalk"}})
	writeState("inc-cleared", []state.Target{{Package: "debug"}})
	dir := fstree.Write(t, map[string]string{
		"a/package-lock.json": lockV3("debug@4.4.2"),
		"b/package-lock.json": lockV3("debug@4.4.1"),
	})

	r := run(t, e, "inventory", "--incident", "inc-debug", dir, "-o", "json")
	doc := inventoryDoc(t, r)
	got := filesByTarget(t, doc, dir)
	if r.code != ExitError || !reflect.DeepEqual(got, map[string][]string{"debug@4.4.2": {"a/package-lock.json"}}) || len(doc.Targets) != 1 {
		t.Errorf("exit %d, targets %v, got %v\n%s", r.code, doc.Targets, got, r.stderr)
	}
	// --state names the file directly; --package adds to the incident's versions.
	statePath := filepath.Join(e["NPMIR_STATE_DIR"], "inc-debug", "state.json")
	r = run(t, e, "inventory", "--state", statePath, "--package", "debug@4.4.1", dir, "-o", "json")
	if got := filesByTarget(t, inventoryDoc(t, r), dir); len(got) != 2 {
		t.Errorf("--state with --package: %v\n%s", got, r.stderr)
	}
	if r := run(t, e, "inventory", "--incident", "inc-nope", dir); r.code != ExitUsage || !strings.Contains(r.stderr, "no state file for incident inc-nope") {
		t.Errorf("unknown incident: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, e, "inventory", "--incident", "inc-cleared", dir); r.code != ExitUsage || !strings.Contains(r.stderr, "records no bad version") {
		t.Errorf("incident without bad versions: exit %d\n%s", r.code, r.stderr)
	}
}

func TestInventoryBadUsage(t *testing.T) {
	t.Parallel()
	dir := fstree.Write(t, map[string]string{"package-lock.json": lockV3("debug@4.4.2")})
	empty := t.TempDir()
	badAdvisory := filepath.Join(t.TempDir(), "adv.json")
	_ = os.WriteFile(badAdvisory, []byte(`{"id": "GHSA-x", "affected": [{"package": {"ecosystem": "npm", "name": "debug"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "four"}]}]}]}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inventory", dir}, "name the bad versions"},
		{[]string{"inventory", dir, "--package", "debug@^4.4.0"}, "not an exact semver version"},
		{[]string{"inventory", dir, "--package", "debug"}, "want name@version"},
		{[]string{"inventory", dir, "--package", "debug@4.4.2,"}, "empty version"},
		{[]string{"inventory", dir, "--package", "debug@4.4.2", "--shard", "0/3"}, "--shard"},
		{[]string{"inventory", dir, "--package", "debug@4.4.2", "--shard", "2"}, "--shard"},
		{[]string{"inventory", dir, "--package", "debug@4.4.2", "-o", "xml"}, "--output"},
		{[]string{"inventory", dir, "--package", "debug@4.4.2", "--concurrency", "-1"}, "--concurrency"},
		{[]string{"inventory", filepath.Join(dir, "nope"), "--package", "debug@4.4.2"}, "cannot scan"},
		{[]string{"inventory", empty, "--package", "debug@4.4.2"}, "nothing to scan"},
		{[]string{"inventory", dir, "--advisory", badAdvisory}, "--advisory"},
		{[]string{"inventory", dir, "--advisory", filepath.Join(dir, "missing.json")}, "--advisory"},
		{[]string{"inventory", "merge"}, "name the documents"},
		{[]string{"inventory", "merge", "-o", "xml", "x.json"}, "--output"},
	} {
		r := run(t, inventoryEnv(t), tc.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s", tc.args[1:], r.code, ExitUsage, tc.want, r.stderr)
		}
	}
	// A shard may own no file in a small tree: that is not bad usage, the merge needs its document.
	r := run(t, inventoryEnv(t), "inventory", empty, "--package", "debug@4.4.2", "--shard", "1/2", "-o", "json")
	if r.code != ExitOK || len(inventoryDoc(t, r).Shards) != 1 || !strings.Contains(r.stderr, "✓ shard 1/2 clean") {
		t.Errorf("empty shard: exit %d\n%s", r.code, r.stderr)
	}
}

// On a terminal a progress bar runs on stderr and is cleared; the table is aligned.
func TestInventoryTerminal(t *testing.T) {
	t.Parallel()
	dir := fstree.Write(t, map[string]string{
		"a/package-lock.json": lockV3("debug@4.4.2"),
		"b/package-lock.json": lockV3("debug@4.4.1"),
		"c/package-lock.json": lockV3("ms@2.1.3"),
	})
	r := runTTY(t, inventoryEnv(t), "", "inventory", dir, "--package", "debug@4.4.2")
	if !strings.Contains(r.stderr, "Scanning "+dir+" for 1 bad version(s)") || !strings.Contains(r.stderr, "scanning") {
		t.Errorf("no progress bar on the terminal:\n%q", r.stderr)
	}
	if !strings.Contains(r.stdout, "KIND") || !strings.Contains(r.stdout, "1 finding(s) in 1 file(s)") {
		t.Errorf("table:\n%s", r.stdout)
	}
	if r.code != ExitError {
		t.Errorf("exit %d", r.code)
	}
}

// The inventory stage of a real contain: the runbook names a folder, the op scans it after the
// freeze, records a summary that leads with the unreadable file, and writes the full document
// under the incident folder.
func TestContainStageScansConsumers(t *testing.T) {
	t.Parallel()
	name := "inv-stage-pkg"
	seed(t, name, false)
	e := newEnv(t)
	dir := fstree.Write(t, map[string]string{
		"app/package-lock.json":    lockV3(name + "@1.1.1"),
		"safe/package-lock.json":   lockV3(name + "@1.1.0"),
		"broken/package-lock.json": `{"lockfileVersion": 3, "packages": {`,
	})
	rb, err := runbook.Embedded("npm-maintainer-compromise")
	if err != nil {
		t.Fatal(err)
	}
	custom := strings.Replace(string(rb), "uses: inventory.scan\n", "uses: inventory.scan\n        with: { paths: ['"+dir+"'] }\n", 1)
	rbPath := filepath.Join(e["HOME"], "rb.yaml")
	if err := os.WriteFile(rbPath, []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, e, "contain", name+"@1.1.1", "--yes", "--runbook", rbPath, "--registry", verd.URL, "--output", "json")
	if r.code != ExitManual { // the unreadable lockfile needs a person
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	d := r.doc(t)
	op := findOpIn(t, d, "inventory/"+strings.ReplaceAll(dir, "/", "%2f"))
	if op.Status != state.Manual || op.Result == nil {
		t.Fatalf("an incomplete inventory must ask for a person: %+v", op)
	}
	for _, want := range []string{"1 file(s) could not be read: the inventory is incomplete", "3 file(s) scanned; 1 pin a bad version (" + filepath.Join(dir, "app", "package-lock.json") + ")", filepath.Join(dir, "broken", "package-lock.json")} {
		if !strings.Contains(op.Result.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, op.Result.Summary)
		}
	}
	reports, _ := filepath.Glob(filepath.Join(filepath.Dir(d.StateFile), "inventory", "*.json"))
	if len(reports) != 1 {
		t.Fatalf("want one report, got %v", reports)
	}
	// The stage's document is the command's: `inventory merge` reads it.
	if m := run(t, e, "inventory", "merge", reports[0], "-o", "json"); len(inventoryDoc(t, m).Findings) != 1 || m.code != ExitError {
		t.Errorf("merge of the stage's report: exit %d\n%s", m.code, m.stderr)
	}
}

// Ctrl-C: exit 5 and no document, since a partial one would read as complete.
func TestInventoryInterruptedWritesNothing(t *testing.T) {
	t.Parallel()
	dir := fstree.Write(t, map[string]string{"app/package-lock.json": lockV3("debug@4.4.2")})
	out := filepath.Join(t.TempDir(), "inv.json")
	var stdout, stderr bytes.Buffer
	f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr}, Getenv: func(string) string { return "" }, Now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code := Run(ctx, []string{"inventory", dir, "--package", "debug@4.4.2", "-o", "json", "--out", out}, f)
	if code != ExitResumable || stdout.Len() != 0 || fileExists(out) || !strings.Contains(stderr.String(), "nothing was written") {
		t.Fatalf("exit %d, stdout %q, out written %v\n%s", code, stdout.String(), fileExists(out), stderr.String())
	}
}
