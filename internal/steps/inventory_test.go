package steps

import (
	"context"
	"encoding/json"
	"github.com/npmir/npmir/internal/testenv/fstree"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/inventory"
	"github.com/npmir/npmir/internal/runbook"
)

// A lockfile pinning debug@4.4.2 (bad) next to ms@2.1.3 (not a target).
const invLockPinned = `{
  "name": "app",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {"name": "app", "dependencies": {"debug": "4.4.2"}},
    "node_modules/debug": {"version": "4.4.2", "dependencies": {"ms": "^2.1.3"}},
    "node_modules/ms": {"version": "2.1.3"}
  }
}`

func invEnv(t *testing.T) *Env {
	t.Helper()
	return &Env{
		Spec:        &incident.Spec{ID: "inc-test"},
		IncidentDir: t.TempDir(),
		Targets: []*Target{
			{Name: "debug", Bad: []string{"4.4.2"}},
			{Name: "chalk", Bad: []string{"5.6.1"}},
			{Name: "left-alone", Bad: nil}, // verify found it clean: not a target
		},
	}
}

func invStep(paths ...string) Step {
	with := map[string]any{}
	if len(paths) > 0 {
		var list []any
		for _, p := range paths {
			list = append(list, p)
		}
		with["paths"] = list
	}
	return Step{Stage: "inventory", Step: runbook.Step{ID: "scan-consumers", Uses: "inventory.scan", With: with}}
}

func TestInventoryKindRegistered(t *testing.T) {
	t.Parallel()
	k, ok := Lookup("inventory.scan")
	if !ok {
		t.Fatal("inventory.scan not registered")
	}
	if _, pending := k.(pending); pending {
		t.Fatal("inventory.scan is still the pending placeholder")
	}
	// A runbook naming paths validates.
	rb := []byte("apiVersion: npmir/v1\nkind: Runbook\nname: t\nstages:\n  - name: inventory\n    steps:\n      - id: scan\n        uses: inventory.scan\n        with: { paths: [src, services] }\n")
	if _, probs := runbook.Parse(rb, "t.yaml", RunbookLookup); len(probs) > 0 {
		t.Fatalf("runbook with paths: %v", probs)
	}
}

func TestInventoryPlanSkipsWithoutPaths(t *testing.T) {
	t.Parallel()
	sp, err := inventoryScan{}.Plan(context.Background(), invEnv(t), invStep())
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.Ops) != 0 || !strings.HasPrefix(sp.Skip, "no paths to scan: add with: paths: [...] to the runbook step") ||
		!strings.Contains(sp.Skip, "npmir inventory --incident inc-test PATH") {
		t.Fatalf("want a skip naming the fix, got %+v", sp)
	}
}

func TestInventoryPlanSkipsWithoutBadVersions(t *testing.T) {
	t.Parallel()
	env := invEnv(t)
	env.Targets = []*Target{{Name: "debug"}}
	sp, err := inventoryScan{}.Plan(context.Background(), env, invStep(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.Ops) != 0 || sp.Skip == "" {
		t.Fatalf("want a skip, got %+v", sp)
	}
}

func TestInventoryPlanOneOpPerPath(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	sp, err := inventoryScan{}.Plan(context.Background(), invEnv(t), invStep(a, b, a+"/.", filepath.Join(a, "missing")))
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.Ops) != 3 {
		t.Fatalf("want 3 ops (the duplicate of %s folded), got %d: %+v", a, len(sp.Ops), sp.Ops)
	}
	op := sp.Ops[0]
	if op.ID != "inventory/"+escapeID(a) || strings.Contains(strings.TrimPrefix(op.ID, "inventory/"), "/") {
		t.Errorf("id %q", op.ID)
	}
	if op.Description != "scan "+a+" for consumers of 2 bad version(s)" {
		t.Errorf("description %q", op.Description)
	}
	var p inventoryParams
	if err := json.Unmarshal(op.Params, &p); err != nil {
		t.Fatal(err)
	}
	if p.Path != a || p.Abs != a || strings.Join(p.Targets, " ") != "debug@4.4.2 chalk@5.6.1" || !strings.HasPrefix(p.Report, "inventory/") {
		t.Errorf("params %+v", p)
	}
	var p2 inventoryParams
	_ = json.Unmarshal(sp.Ops[1].Params, &p2)
	if p2.Report == p.Report {
		t.Errorf("two paths share report %s", p.Report)
	}
	notes := strings.Join(sp.Notes, "\n")
	if !strings.Contains(notes, "same folder") || !strings.Contains(notes, "missing") {
		t.Errorf("notes %q", notes)
	}
}

func planOne(t *testing.T, env *Env, path string) Op {
	t.Helper()
	sp, err := inventoryScan{}.Plan(context.Background(), env, invStep(path))
	if err != nil || len(sp.Ops) != 1 {
		t.Fatalf("plan: %v %+v", err, sp)
	}
	return sp.Ops[0]
}

func TestInventoryApplyAndCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := invEnv(t)
	dir := fstree.Write(t, map[string]string{
		"app/package-lock.json":   invLockPinned,
		"app/package.json":        `{"name": "app", "dependencies": {"debug": "4.4.2"}}`,
		"lib/package.json":        `{"name": "lib", "dependencies": {"chalk": "^5.6.0"}}`,
		"clean/package-lock.json": strings.ReplaceAll(invLockPinned, "4.4.2", "4.4.1"),
	})
	op := planOne(t, env, dir)

	if _, landed, err := (inventoryScan{}).Check(ctx, env, op); err != nil || landed {
		t.Fatalf("check before apply: landed=%v err=%v", landed, err)
	}
	res, err := inventoryScan{}.Apply(ctx, env, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Manual != "" {
		t.Errorf("want unchanged and not manual: %+v", res)
	}
	for _, want := range []string{
		"4 file(s) scanned",
		"1 pin a bad version (" + filepath.Join(dir, "app", "package-lock.json") + ")",
		"2 exposed by range (" + filepath.Join(dir, "app", "package.json") + ", " + filepath.Join(dir, "lib", "package.json") + ")",
		"0 could not be read",
	} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
	// The report is the full document, readable by inventory merge.
	var p inventoryParams
	_ = json.Unmarshal(op.Params, &p)
	f, err := os.Open(filepath.Join(env.IncidentDir, p.Report))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := inventory.ReadJSON(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Findings) != 3 || len(doc.Targets) != 2 {
		t.Errorf("report: %d findings, %d targets", len(doc.Findings), len(doc.Targets))
	}

	// Check finds it: same summary, no rescan.
	cres, landed, err := inventoryScan{}.Check(ctx, env, op)
	if err != nil || !landed || cres.Summary != res.Summary {
		t.Fatalf("check after apply: landed=%v err=%v\n%q\n%q", landed, err, cres.Summary, res.Summary)
	}
	// Idempotent: applying again overwrites the same report with the same result.
	again, err := inventoryScan{}.Apply(ctx, env, op)
	if err != nil || again != res {
		t.Fatalf("second apply: %v %+v", err, again)
	}
	entries, _ := os.ReadDir(filepath.Join(env.IncidentDir, "inventory"))
	if len(entries) != 1 {
		t.Errorf("want one report file, got %d", len(entries))
	}

	// A report for other targets (a re-planned incident) does not count as done.
	other := invEnv(t)
	other.IncidentDir = env.IncidentDir
	other.Targets = other.Targets[:1]
	if _, landed, _ := (inventoryScan{}).Check(ctx, other, planOne(t, other, dir)); landed {
		t.Error("a report for other targets counted as landed")
	}
	// A damaged report does not count either.
	if err := os.WriteFile(filepath.Join(env.IncidentDir, p.Report), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, landed, _ := (inventoryScan{}).Check(ctx, env, op); landed {
		t.Error("an unparsable report counted as landed")
	}
}

func TestInventoryApplyIncomplete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := invEnv(t)
	dir := fstree.Write(t, map[string]string{
		"app/package-lock.json":    invLockPinned,
		"broken/package-lock.json": `{"name": "x", "lockfileVersion": 3, "packages": {"node_modules/debug": {"version": "4.4.2"`,
		"conflict/yarn.lock":       "<<<<<<< HEAD\nchalk@^5.0.0:\n  version \"5.6.1\"\n=======\n>>>>>>> main\n",
	})
	op := planOne(t, env, dir)
	res, err := inventoryScan{}.Apply(ctx, env, op)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Summary, "2 file(s) could not be read: the inventory is incomplete.") {
		t.Errorf("summary does not lead with the unreadable files:\n%s", res.Summary)
	}
	if !strings.Contains(res.Summary, "2 pin a bad version") || !strings.Contains(res.Summary, filepath.Join(dir, "broken", "package-lock.json")) {
		t.Errorf("summary %s", res.Summary)
	}
	if !strings.Contains(res.Manual, "npmir inventory --incident inc-test "+dir) {
		t.Errorf("manual %q", res.Manual)
	}
}

func TestInventoryApplyNothingToScan(t *testing.T) {
	t.Parallel()
	env := invEnv(t)
	dir := fstree.Write(t, map[string]string{"README.md": "hello"})
	res, err := inventoryScan{}.Apply(context.Background(), env, planOne(t, env, dir))
	if err != nil {
		t.Fatal(err)
	}
	if res.Manual == "" || !strings.Contains(res.Summary, "nothing was checked") {
		t.Fatalf("an empty folder must not read as clean: %+v", res)
	}
}

func TestInventoryApplyMissingPath(t *testing.T) {
	t.Parallel()
	env := invEnv(t)
	op := planOne(t, env, filepath.Join(t.TempDir(), "gone"))
	if _, err := (inventoryScan{}).Apply(context.Background(), env, op); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("want an error naming the path, got %v", err)
	}
}
