package runbook

import (
	"strings"
	"testing"
)

func lookup(uses string) (KindInfo, bool) {
	switch uses {
	case "npm.deprecate":
		return KindInfo{Params: []Param{{Name: "message", Type: "string"}}}, true
	case "npm.rollback-dist-tags":
		return KindInfo{Params: []Param{{Name: "tags", Type: "strings"}}}, true
	case "needs.param":
		return KindInfo{Params: []Param{{Name: "url", Type: "string", Required: true}, {Name: "mode", Type: "string", Enum: []string{"a", "b"}}}}, true
	}
	return KindInfo{}, false
}

func TestDefaultRunbookIsValid(t *testing.T) {
	t.Parallel()
	for _, n := range Names() {
		data, _ := Embedded(n)
		// Only the structure is checked here; steps.TestDefaultRunbookKinds checks kinds.
		rb, ps := Parse(data, "embedded:"+n, func(string) (KindInfo, bool) {
			return KindInfo{Params: []Param{{Name: "message", Type: "string"}, {Name: "tags", Type: "strings"}, {Name: "paths", Type: "strings"}}}, true
		})
		if len(ps) > 0 {
			t.Fatalf("%s: %v", n, ps)
		}
		var stages []string
		for _, s := range rb.Stages {
			stages = append(stages, s.Name)
		}
		if strings.Join(stages, ",") != strings.Join(DefaultStages, ",") {
			t.Errorf("%s stages %v, want %v", n, stages, DefaultStages)
		}
		if !strings.HasPrefix(rb.Digest, "sha256:") {
			t.Errorf("digest %q", rb.Digest)
		}
	}
}

func TestValidateReportsEveryProblemWithLines(t *testing.T) {
	t.Parallel()
	src := `apiVersion: npmir/v1
kind: Runbook
name: broken
stages:
  - name: freeze
    steps:
      - id: tags
        uses: npm.rollback-dist-tags
        with:
          tags: latest
      - id: tags
        uses: npm.deprecate
        with:
          mesage: hi
      - id: mystery
        uses: npm.teleport
      - id: param
        uses: needs.param
        approval: maybe
        colour: blue
        with: { mode: c }
`
	_, ps := Parse([]byte(src), "mine.yaml", lookup)
	want := []string{
		`mine.yaml:10: step "tags": parameter "tags" must be a list of strings`,
		`mine.yaml:11: duplicate step id "tags" (first at line 7)`,
		`mine.yaml:14: step "tags": unknown parameter "mesage" for npm.deprecate (it takes: message)`,
		`mine.yaml:16: step "mystery" uses unknown step kind "npm.teleport"`,
		`mine.yaml:19: approval is "maybe"; use required or none`,
		`mine.yaml:20: unknown step field "colour"`,
		`mine.yaml:17: step "param": needs.param needs parameter "url"`,
		`mine.yaml:21: step "param": parameter "mode" is "c"; use one of a, b`,
	}
	got := ps.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing problem %q in:\n%s", w, got)
		}
	}
}

func TestParseRejectsWrongHeaderAndBadYAML(t *testing.T) {
	t.Parallel()
	_, ps := Parse([]byte("apiVersion: npmir/v2\nkind: Playbook\nstages: []\n"), "x.yaml", lookup)
	for _, w := range []string{"x.yaml:1: apiVersion", "x.yaml:2: kind", "name is missing", "stages is missing"} {
		if !strings.Contains(ps.Error(), w) {
			t.Errorf("missing %q in %v", w, ps)
		}
	}
	_, ps = Parse([]byte("stages:\n  - name: [\n"), "y.yaml", lookup)
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "y.yaml:") || !strings.Contains(ps[0].Msg, "not valid YAML") {
		t.Errorf("bad YAML: %v", ps)
	}
}

// Evidence comes first: a step that removes or hides artifacts must follow a preserving one.
func TestRemovalNeedsEvidencePreservedFirst(t *testing.T) {
	t.Parallel()
	look := func(uses string) (KindInfo, bool) {
		switch uses {
		case "keep":
			return KindInfo{Preserves: true}, true
		case "remove":
			return KindInfo{Removes: true}, true
		}
		return KindInfo{}, false
	}
	head := "apiVersion: npmir/v1\nkind: Runbook\nname: x\nstages:\n  - name: s\n    steps:\n"
	_, ps := Parse([]byte(head+"      - id: a\n        uses: remove\n      - id: b\n        uses: keep\n"), "r.yaml", look)
	if len(ps) != 1 || ps[0].Line != 8 || !strings.Contains(ps[0].Msg, "no evidence-preserving step") {
		t.Errorf("removal first: %v", ps)
	}
	if _, ps := Parse([]byte(head+"      - id: a\n        uses: keep\n      - id: b\n        uses: remove\n"), "r.yaml", look); len(ps) != 0 {
		t.Errorf("preserve then remove: %v", ps)
	}
}
