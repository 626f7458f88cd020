package forensics

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func renderFixture(t *testing.T) *Report {
	t.Helper()
	reg := newFakeRegistry()
	good := goodPackage("debug", "4.4.1")
	reg.add(good, day0)
	bad := chalkDebugLike(good, "4.4.2")
	// Attacker-controlled text with terminal escapes and Markdown/HTML.
	bad.Files["x\x1b[2J<script>|`*.js"] = []byte("runmask")
	reg.add(bad, day0.Add(time.Hour))
	reg.add(typoFix(good, "4.4.3"), day0.Add(48*time.Hour))
	rep, err := Verify(context.Background(), reg, Request{Package: "debug", Versions: []string{"4.4.2", "4.4.3"}, Now: func() time.Time { return day0 }})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestWriteJSONIsVersioned(t *testing.T) {
	t.Parallel()
	rep := renderFixture(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SchemaVersion int `json:"schema_version"`
		Reports       []struct {
			Package  string `json:"package"`
			Versions []struct {
				Version  string `json:"version"`
				Verdict  string `json:"verdict"`
				Findings []struct {
					RuleID   string `json:"rule_id"`
					Severity string `json:"severity"`
				} `json:"findings"`
			} `json:"versions"`
		} `json:"reports"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SchemaVersion != 1 || len(doc.Reports) != 1 || doc.Reports[0].Package != "debug" || len(doc.Reports[0].Versions) != 2 {
		t.Fatalf("%s", buf.String())
	}
	v := doc.Reports[0].Versions
	if v[0].Verdict != "malicious" || v[1].Verdict != "clean" || v[0].Findings[0].Severity != "high" {
		t.Errorf("verdicts %+v", v)
	}
	buf.Reset()
	_ = WriteJSON(&buf)
	if strings.TrimSpace(buf.String()) != "{\n  \"schema_version\": 1,\n  \"reports\": []\n}" {
		t.Errorf("empty document %q", buf.String())
	}
}

func TestWriteTextAndMarkdownNeutraliseHostileText(t *testing.T) {
	t.Parallel()
	rep := renderFixture(t)
	var plain, colored, md bytes.Buffer
	if err := WriteText(&plain, rep, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&colored, rep, true); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"debug@4.4.2  MALICIOUS", "debug@4.4.3  clean", "chalk-debug.drainer-functions", "known-good: 4.4.1"} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, plain.String())
		}
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Errorf("plain text holds an escape sequence:\n%q", plain.String())
	}
	if !strings.Contains(colored.String(), ansiRed) || strings.Contains(colored.String(), "\x1b[2J") {
		t.Errorf("colored text: want our colours and none of the package's escapes:\n%q", colored.String())
	}
	m := md.String()
	for _, want := range []string{"## debug", "| 4.4.2 | **malicious** |", "### debug@4.4.2: malicious", "```diff", "+const names = ['checkethereumw'"} {
		if !strings.Contains(m, want) {
			t.Errorf("markdown lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "<script>") || strings.Contains(m, "\x1b") {
		t.Errorf("markdown carries raw HTML or escapes:\n%s", m)
	}
}
