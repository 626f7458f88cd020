package incident

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in       string
		name     string
		versions []string
		err      string
	}{
		{"debug@4.4.2", "debug", []string{"4.4.2"}, ""},
		{"@ctrl/tinycolor@4.1.1,4.1.2", "@ctrl/tinycolor", []string{"4.1.1", "4.1.2"}, ""},
		{"@ctrl/tinycolor", "@ctrl/tinycolor", nil, ""},
		{"nx@v21.5.0", "nx", []string{"21.5.0"}, ""},
		{"chalk@5.6.1,5.6.1", "chalk", []string{"5.6.1"}, ""},
		{"debug@", "", nil, "nothing after @"},
		{"Debug@1.0.0", "", nil, "not a valid npm package name"},
		{"@scope@1.0.0", "", nil, "not a valid npm package name"},
		{"debug@^4.0.0", "", nil, "not an exact version"},
		{"debug@latest", "", nil, "not an exact version"},
		{"", "", nil, "empty"},
	}
	for _, tc := range cases {
		got, err := ParseTarget(tc.in)
		if tc.err != "" {
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &ue) {
				t.Errorf("ParseTarget(%q) err = %v, want a usage error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.Name != tc.name || !slices.Equal(got.Versions, tc.versions) {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %s %v", tc.in, got, err, tc.name, tc.versions)
		}
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 9, 9, 12, 0, 0, 0, time.UTC)
	s, err := Build(Options{Specs: []string{"debug@4.4.2", "debug@4.4.3", "chalk@5.6.1"}, KnownGood: []string{"debug@4.4.1"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Targets) != 2 || !slices.Equal(s.Targets[0].Versions, []string{"4.4.2", "4.4.3"}) || s.KnownGood["debug"] != "4.4.1" {
		t.Errorf("spec %+v", s)
	}
	again, _ := Build(Options{Specs: []string{"chalk@5.6.1", "debug@4.4.2", "debug@4.4.3"}, KnownGood: []string{"debug@4.4.1"}, Now: now})
	if again.ID != s.ID || !s.Equal(again) {
		t.Errorf("the same inputs in another order give another incident: %s vs %s", s.ID, again.ID)
	}
	for _, tc := range []struct {
		o   Options
		err string
	}{
		{Options{}, "name at least one package"},
		{Options{Specs: []string{"debug"}}, "--since"},
		{Options{Specs: []string{"a@1.0.0", "b@1.0.0"}, KnownGood: []string{"1.0.0"}}, "name@version"},
		{Options{Specs: []string{"a@1.0.0"}, KnownGood: []string{"c@1.0.0"}}, "not a target"},
		{Options{Specs: []string{"a@1.0.0"}, IncidentID: "../etc"}, "--incident"},
		{Options{Specs: []string{"a"}, Since: "yesterday"}, "--since"},
		{Options{Maintainer: "bob"}, "--since"},
	} {
		if _, err := Build(tc.o); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Build(%+v) err = %v, want %q", tc.o, err, tc.err)
		}
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 9, 9, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2025-09-08T13:00:00Z":      time.Date(2025, 9, 8, 13, 0, 0, 0, time.UTC),
		"2025-09-08T15:00:00+02:00": time.Date(2025, 9, 8, 13, 0, 0, 0, time.UTC),
		"2025-09-08":                time.Date(2025, 9, 8, 0, 0, 0, 0, time.UTC),
		"36h":                       now.Add(-36 * time.Hour),
		"2d":                        now.Add(-48 * time.Hour),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "-3h", "2x"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}
