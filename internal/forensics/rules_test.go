package forensics

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestEmbeddedRulesAreValid(t *testing.T) {
	t.Parallel()
	s := DefaultRules()
	if s.Version == "" || s.SchemaVersion != RulesSchemaVersion || len(s.Rules) < 20 {
		t.Fatalf("version %q schema %d rules %d", s.Version, s.SchemaVersion, len(s.Rules))
	}
	kinds := map[string]bool{}
	for _, r := range s.Rules {
		kinds[r.Kind] = true
		if r.Source == "" || r.Severity == "" {
			t.Errorf("rule %s lacks source or severity", r.ID)
		}
	}
	for _, k := range []string{KindFilename, KindWorkflow, KindSHA256, KindString, KindScript, KindDependency} {
		if !kinds[k] {
			t.Errorf("no built-in rule of kind %s", k)
		}
	}
}

// Every check id the code raises must have its severity in the rules file: a check missing there
// would silently fall back to medium.
func TestEveryCheckIDIsInTheRulesFile(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`"((?:integrity|archive|diff|content|metadata)\.[a-z-]+)"`)
	files, _ := filepath.Glob("*.go")
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			seen++
			if _, ok := DefaultRules().Checks[m[1]]; !ok {
				t.Errorf("%s raises %s, which rules/iocs.yaml does not list under checks", f, m[1])
			}
		}
	}
	if seen < 20 {
		t.Fatalf("found only %d check ids in the code: the pattern is stale", seen)
	}
}

func TestIOCsOfTheReferenceAreCovered(t *testing.T) {
	t.Parallel()
	// A few indicators from iocs.md, each of which must be in some rule's values.
	want := []string{
		"de0e25a3e6c1e1e5998b306b7141b3dc4c0088da9d7bb47c1c00c91e6e4f85d6",
		"62ee164b9b306250c1172583f138c9614139264f889fa99614903c12755468d0",
		"16f6c756bc8ce5ef5d9aa1ded0f811ec0c9cee3d8f85cc151b8ca1df7b8a4337",
		"webhook.site/bb8ca5f6-4175-45d2-b042-fc9ebb8170b7",
		"checkethereumw", "SHA1HULUD", "s1ngularity-repository", "flatmap-stream", "copayapi.host",
		".github/workflows/shai-hulud-workflow.yml", ".github/workflows/discussion.yaml", "truffleSecrets.json",
	}
	all := map[string]bool{}
	for _, r := range DefaultRules().Rules {
		for _, v := range r.Values {
			all[v] = true
		}
	}
	for _, w := range want {
		if !all[w] {
			t.Errorf("indicator %q is in no rule", w)
		}
	}
}

func TestParseRulesErrorsNameTheLine(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ doc, want string }{
		"short string":  {"schema_version: 1\nrules:\n  - {id: a, kind: string, severity: low, values: [ab], source: s}\n", "shorter than 3 bytes"},
		"bad kind":      {"schema_version: 1\nrules:\n  - id: a\n    kind: regex\n    severity: high\n    values: [x]\n    source: s\n", "x.yaml:3: rule \"a\": kind \"regex\""},
		"no source":     {"schema_version: 1\nrules:\n  - id: a\n    kind: string\n    severity: high\n    values: [x]\n", "x.yaml:3: rule \"a\": source is required"},
		"bad hash":      {"schema_version: 1\nrules:\n  - id: a\n    kind: sha256\n    severity: high\n    values: [abc]\n    source: s\n", "not a hex SHA-256"},
		"bad regexp":    {"schema_version: 1\nrules:\n  - id: a\n    kind: script\n    severity: high\n    values: ['(']\n    source: s\n", "script pattern"},
		"bad severity":  {"schema_version: 1\nrules:\n  - id: a\n    kind: string\n    severity: critical\n    values: [x]\n    source: s\n", "severity \"critical\""},
		"duplicate":     {"schema_version: 1\nrules:\n  - {id: a, kind: string, severity: low, values: [xyz], source: s}\n  - {id: a, kind: string, severity: low, values: [yzw], source: s}\n", "x.yaml:4: rule \"a\": duplicate id (first at line 3)"},
		"future schema": {"schema_version: 2\nrules: []\n", "schema_version 2 is not supported"},
		"not yaml":      {"rules: [", "x.yaml"},
	}
	for name, tc := range cases {
		_, err := ParseRules([]byte(tc.doc), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
}

func TestLoadRulesMergesAndOverrides(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "local.json")
	// JSON works too; an existing id is replaced, checks retune severities.
	doc := `{"schema_version": 1, "rules_version": "acme-3",
	  "rules": [
	    {"id": "chalk-debug.drainer-functions", "kind": "string", "severity": "medium", "values": ["checkethereumw"], "source": "local"},
	    {"id": "acme.c2", "kind": "string", "severity": "high", "values": ["evil.example"], "source": "acme IR"}],
	  "checks": {"metadata.publish-burst": {"severity": "high", "source": "acme policy"}}}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != DefaultRules().Version+"+acme-3" || len(s.Rules) != len(DefaultRules().Rules)+1 {
		t.Fatalf("version %q, %d rules", s.Version, len(s.Rules))
	}
	for _, r := range s.Rules {
		if r.ID == "chalk-debug.drainer-functions" && (r.Severity != SeverityMedium || r.Source != "local") {
			t.Errorf("override not applied: %+v", r)
		}
	}
	if s.check("metadata.publish-burst").Severity != SeverityHigh {
		t.Error("check severity not overridden")
	}
	if DefaultRules().check("metadata.publish-burst").Severity != SeverityMedium {
		t.Error("merging changed the embedded set")
	}
	if _, err := LoadRules(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestMatchPath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		glob, path string
		want       bool
	}{
		{"bundle.js", "bundle.js", true},
		{"bundle.js", "dist/bundle.js", true},
		{"/bundle.js", "dist/bundle.js", false},
		{"/bundle.js", "bundle.js", true},
		{".github/workflows/discussion.yaml", ".github/workflows/discussion.yaml", true},
		{".github/workflows/discussion.yaml", "templates/.github/workflows/discussion.yaml", true},
		{".github/workflows/formatter_*.yml", ".github/workflows/formatter_123.yml", true},
		{".github/workflows/formatter_*.yml", ".github/workflows/formatter.yml", false},
		{".github/workflows/*", ".github/workflows/ci.yml", true},
		{".github/workflows/*", "docs/ci.yml", false},
	}
	for _, tc := range cases {
		if got := matchPath(tc.glob, tc.path); got != tc.want {
			t.Errorf("matchPath(%q, %q) = %v", tc.glob, tc.path, got)
		}
	}
}

func TestDiffPackageJSON(t *testing.T) {
	t.Parallel()
	old := []byte(`{"name":"x","version":"1.0.0","main":"index.js","scripts":{"test":"jest","postinstall":"node a.js"},"dependencies":{"ms":"^2.1.2","left":"1"},"devDependencies":{"jest":"29"}}`)
	cur := []byte(`{"version":"1.0.1","name":"x","main":"lib/index.js","bin":"cli.js","scripts":{"test":"jest","postinstall":"node b.js","preinstall":"node setup_bun.js","lint":"x"},"dependencies":{"ms":"^2.1.3","flatmap-stream":"0.1.1"},"devDependencies":{"jest":"29"},"keywords":["a"]}`)
	d, err := DiffPackageJSON(old, cur)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, s := range d.Scripts {
		got = append(got, s.Name+":"+s.Change)
	}
	for _, c := range d.Dependencies {
		got = append(got, c.Section+"/"+c.Name+":"+c.Change)
	}
	want := "lint:added,postinstall:changed,preinstall:added,dependencies/flatmap-stream:added,dependencies/left:removed,dependencies/ms:changed"
	if strings.Join(got, ",") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, ","), want)
	}
	if d.Main == nil || d.Main.Old != "index.js" || d.Main.New != "lib/index.js" || d.Bin == nil || d.Bin.New != "cli.js" {
		t.Errorf("main %+v bin %+v", d.Main, d.Bin)
	}
	if strings.Join(d.Other, ",") != "keywords" {
		t.Errorf("other %v", d.Other)
	}
	if _, err := DiffPackageJSON(old, []byte("[1,2]")); err == nil || !strings.Contains(err.Error(), "new package.json") {
		t.Errorf("array: %v", err)
	}
}
