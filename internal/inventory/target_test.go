package inventory

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Target
		wantErr string
	}{
		{in: "debug@4.4.2", want: Target{"debug", "4.4.2"}},
		{in: "@ctrl/tinycolor@4.1.1", want: Target{"@ctrl/tinycolor", "4.1.1"}},
		{in: " chalk@v5.6.1 ", want: Target{"chalk", "5.6.1"}},
		{in: "nx@21.5.0-beta.1", want: Target{"nx", "21.5.0-beta.1"}},
		{in: "debug", wantErr: "want name@version"},
		{in: "@ctrl/tinycolor", wantErr: "want name@version"},
		{in: "debug@^4.4.0", wantErr: "not an exact semver"},
		{in: "debug@4.x", wantErr: "not an exact semver"},
		{in: "@ctrl@4.1.1", wantErr: "scoped names"},
		{in: "../etc@1.0.0", wantErr: "not a valid npm package name"},
		{in: "@4.1.1", wantErr: "want name@version"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTarget(%q) error = %v, want it to say %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestTargetsMatch(t *testing.T) {
	t.Parallel()
	ts, err := ParseTargets([]string{"debug@4.4.2", "@ctrl/tinycolor@4.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.AddRange(RangeTarget{Name: "nx", Events: []Event{{Introduced: "20.9.0"}, {Fixed: "20.13.0"}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, version string
		want          bool
	}{
		{"debug", "4.4.2", true},
		{"debug", "v4.4.2", true},
		{"debug", "4.4.2+build.7", true}, // npm drops build metadata
		{"debug", "4.4.1", false},
		{"debug", "", false},
		{"Debug", "4.4.2", false},
		{"@ctrl/tinycolor", "4.1.1", true},
		{"tinycolor", "4.1.1", false},
		{"nx", "20.9.0", true},
		{"nx", "20.12.0", true},
		{"nx", "20.13.0", false},
		{"nx", "20.8.9", false},
		{"nx", "github:nrwl/nx", false},
	}
	for _, tt := range tests {
		if _, got := ts.Match(tt.name, tt.version); got != tt.want {
			t.Errorf("Match(%s, %s) = %v, want %v", tt.name, tt.version, got, tt.want)
		}
	}
	if got := ts.Names(); strings.Join(got, ",") != "@ctrl/tinycolor,debug,nx" {
		t.Errorf("Names() = %v", got)
	}
	if err := ts.AddRange(RangeTarget{Name: "x", Events: []Event{{Introduced: "one"}}}); err == nil {
		t.Error("AddRange accepted a non-semver event")
	}
}

func TestRangeContains(t *testing.T) {
	t.Parallel()
	tests := []struct {
		events []Event
		in     []string
		out    []string
	}{
		{[]Event{{Introduced: "0"}}, []string{"0.0.1", "4.1.1", "99.0.0"}, nil},
		{[]Event{{Introduced: "1.2.0"}, {Fixed: "1.3.0"}}, []string{"1.2.0", "1.2.9"}, []string{"1.1.9", "1.3.0", "2.0.0"}},
		{[]Event{{Introduced: "1.0.0"}, {LastAffected: "1.0.5"}}, []string{"1.0.0", "1.0.5"}, []string{"1.0.6", "0.9.0"}},
		// Two windows in one range, events out of order in the record.
		{[]Event{{Fixed: "2.0.1"}, {Introduced: "1.0.0"}, {Fixed: "1.0.2"}, {Introduced: "2.0.0"}}, []string{"1.0.1", "2.0.0"}, []string{"1.0.2", "1.5.0", "2.0.1"}},
	}
	for i, tt := range tests {
		r := RangeTarget{Name: "p", Events: tt.events}
		for _, v := range tt.in {
			if !r.Contains(v) {
				t.Errorf("case %d: %s should be inside %s", i, v, r)
			}
		}
		for _, v := range tt.out {
			if r.Contains(v) {
				t.Errorf("case %d: %s should be outside %s", i, v, r)
			}
		}
	}
}

func TestLoadAdvisory(t *testing.T) {
	t.Parallel()
	a, err := LoadAdvisory(filepath.Join("testdata", "advisory", "MAL-2025-47141.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "MAL-2025-47141" {
		t.Errorf("ID = %q", a.ID)
	}
	if got := len(a.Exact); got != 2 || a.Exact[0] != (Target{"@ctrl/tinycolor", "4.1.1"}) || a.Exact[1] != (Target{"@ctrl/tinycolor", "4.1.2"}) {
		t.Errorf("Exact = %v", a.Exact)
	}
	if len(a.Ranges) != 2 {
		t.Fatalf("Ranges = %v", a.Ranges)
	}
	ob := a.OverBroad()
	if len(ob) != 1 || ob[0].Name != "@ctrl/tinycolor" {
		t.Errorf("OverBroad = %v, want the open @ctrl/tinycolor range", ob)
	}
	if len(a.Ignored) != 2 {
		t.Errorf("Ignored = %v, want the GIT range and the PyPI package", a.Ignored)
	}

	narrow, err := a.Targets(false)
	if err != nil {
		t.Fatal(err)
	}
	broad, err := a.Targets(true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, version string
		narrow, broad bool
	}{
		{"@ctrl/tinycolor", "4.1.1", true, true},
		{"@ctrl/tinycolor", "4.1.2", true, true},
		{"@ctrl/tinycolor", "4.1.0", false, true},
		{"@crowdstrike/commitlint", "8.1.2", true, true},
		{"@crowdstrike/commitlint", "8.1.3", false, false},
		{"not-npm", "1.0.0", false, false},
	}
	for _, tt := range tests {
		if _, got := narrow.Match(tt.name, tt.version); got != tt.narrow {
			t.Errorf("without over-broad ranges, %s@%s matched = %v", tt.name, tt.version, got)
		}
		if _, got := broad.Match(tt.name, tt.version); got != tt.broad {
			t.Errorf("with over-broad ranges, %s@%s matched = %v", tt.name, tt.version, got)
		}
	}

	for _, bad := range []string{`{}`, `not json`, `{"id":"X-1","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"x.y"}]}]}]}`, `{"id":"X-2","affected":[]}`} {
		if _, err := ParseAdvisory([]byte(bad)); err == nil {
			t.Errorf("ParseAdvisory(%s) accepted it", bad)
		}
	}
}
