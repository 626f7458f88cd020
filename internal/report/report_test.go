package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() *state.File {
	since := time.Date(2025, 9, 8, 13, 0, 0, 0, time.UTC)
	return &state.File{
		SchemaVersion: 1,
		Incident:      &incident.Spec{ID: "inc-golden", Targets: []incident.Target{{Name: "@ctrl/tinycolor"}}, Since: &since, Maintainer: "maint"},
		Runbook:       state.RunbookRef{Name: "npm-maintainer-compromise", Source: "embedded:npm-maintainer-compromise", Digest: "sha256:abc"},
		Registry:      "https://registry.npmjs.org/",
		Targets: []state.Target{{Package: "@ctrl/tinycolor", Bad: []string{"4.1.1", "4.1.2"}, KnownGood: "4.1.0", KnownGoodFrom: "derived",
			Verdicts: []state.Verdict{{Version: "4.1.1", Verdict: "malicious", Rules: []string{"shai-hulud.bundle-js"}}, {Version: "4.1.2", Verdict: "suspicious", Rules: []string{"diff.lifecycle-script-added"}}}}},
		Scope:  &state.Scope{Maintainer: "maint", Source: "user", Packages: 3, Affected: 1},
		Stages: []state.Stage{{Name: "freeze", Description: "Stop new installs."}, {Name: "revoke"}},
		Steps: []state.Step{
			{Stage: "freeze", ID: "rollback-dist-tags", Uses: "npm.rollback-dist-tags", Status: "planned", Approval: true, Approved: true},
			{Stage: "freeze", ID: "deprecate", Uses: "npm.deprecate", Status: "planned", Notes: []string{"message names the incident"}},
			{Stage: "revoke", ID: "rotate-ci-secrets", Uses: "github.rotate-secrets", Status: "skipped", Reason: "not available yet"},
		},
		Ops: []*state.Op{
			{ID: "npm/dist-tag/@ctrl%2ftinycolor/latest", Stage: "freeze", Step: "rollback-dist-tags", Description: "move latest of @ctrl/tinycolor from 4.1.2 to 4.1.0", Status: state.Done, Attempts: 1, Result: &state.Result{Changed: true, Summary: "moved latest of @ctrl/tinycolor from 4.1.2 to 4.1.0"}},
			{ID: "npm/deprecate/@ctrl%2ftinycolor/4.1.1", Stage: "freeze", Step: "deprecate", Description: "deprecate @ctrl/tinycolor@4.1.1", Status: state.Failed, Attempts: 2, Error: "registry said 503 | busy"},
			{ID: "npm/deprecate/@ctrl%2ftinycolor/4.1.2", Stage: "freeze", Step: "deprecate", Description: "deprecate @ctrl/tinycolor@4.1.2", Status: state.Pending},
		},
	}
}

// The renderers are compared with golden files (go test ./internal/report -update rewrites them).
func TestRenderersGolden(t *testing.T) {
	doc := Build(sample(), "apply")
	doc.Status, doc.ExitCode, doc.StateFile, doc.AuditLog, doc.Next = "failed", 1, ".npmir/inc-golden/state.json", ".npmir/inc-golden/audit.jsonl", "npmir resume --incident inc-golden"
	if doc.Counts != (Counts{Ops: 3, Done: 1, Changed: 1, Pending: 1, Failed: 1, Skipped: 1}) {
		t.Errorf("counts %+v", doc.Counts)
	}
	cases := map[string]func(*bytes.Buffer) error{
		"text-tty.golden":  func(b *bytes.Buffer) error { return WriteText(b, doc, TextOptions{TTY: true}) },
		"text-pipe.golden": func(b *bytes.Buffer) error { return WriteText(b, doc, TextOptions{}) },
		"markdown.golden":  func(b *bytes.Buffer) error { return WriteMarkdown(b, doc, time.Date(2025, 9, 9, 0, 0, 0, 0, time.UTC)) },
		"json.golden":      func(b *bytes.Buffer) error { return WriteJSON(b, doc) },
		"html.golden":      func(b *bytes.Buffer) error { return WriteHTML(b, doc, time.Date(2025, 9, 9, 0, 0, 0, 0, time.UTC)) },
	}
	for name, render := range cases {
		var b bytes.Buffer
		if err := render(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/report -update)", err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs from the golden file:\n%s", name, b.String())
		}
	}
	// Text from a registry or a package never becomes markup.
	evil := Build(sample(), "apply")
	evil.Stages[0].Steps[0].Ops[0].Result.Summary = "<script>alert(1)</script>"
	var page bytes.Buffer
	if err := WriteHTML(&page, evil, time.Now()); err != nil || bytes.Contains(page.Bytes(), []byte("<script>")) {
		t.Errorf("HTML does not escape: %v", err)
	}
	var back Document
	var b bytes.Buffer
	_ = WriteJSON(&b, doc)
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.SchemaVersion != SchemaVersion || back.Kind != "npmir.incident" {
		t.Errorf("JSON does not round-trip: %v", err)
	}
}
