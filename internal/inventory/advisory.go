package inventory

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Advisory is what an OSV record (GHSA-, MAL-, ...) says about npm packages,
// split the way a responder needs to see it before matching: the exact
// versions it lists, and the ranges, with the over-broad ones flagged.
type Advisory struct {
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	Summary string   `json:"summary,omitempty"`
	// Exact holds every version listed in affected[].versions.
	Exact []Target `json:"exact"`
	// Ranges holds every SEMVER or ECOSYSTEM range; GIT ranges do not apply
	// to registry versions and are left out (see Ignored).
	Ranges []RangeTarget `json:"ranges"`
	// Ignored says what the record holds that inventory does not use
	// (other ecosystems, GIT ranges), so the CLI can show it.
	Ignored []string `json:"ignored,omitempty"`
}

// OverBroad returns the ranges that affect every version of a package
// (introduced "0" with no end). MAL-2025-47141 carries one next to its two
// exact versions of @ctrl/tinycolor.
func (a *Advisory) OverBroad() []RangeTarget {
	var out []RangeTarget
	for _, r := range a.Ranges {
		if r.OverBroad() {
			out = append(out, r)
		}
	}
	return out
}

// Targets turns the advisory into a target set: every exact version and every
// bounded range, plus the over-broad ranges only when includeOverBroad is set
// (the responder has looked and wants them).
func (a *Advisory) Targets(includeOverBroad bool) (*Targets, error) {
	s := NewTargets(a.Exact...)
	for _, r := range a.Ranges {
		if r.OverBroad() && !includeOverBroad {
			continue
		}
		if err := s.AddRange(r); err != nil {
			return nil, fmt.Errorf("advisory %s: %w", a.ID, err)
		}
	}
	return s, nil
}

type osvRecord struct {
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases"`
	Summary  string   `json:"summary"`
	Affected []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
			Purl      string `json:"purl"`
		} `json:"package"`
		Versions []string `json:"versions"`
		Ranges   []struct {
			Type   string  `json:"type"`
			Events []Event `json:"events"`
		} `json:"ranges"`
	} `json:"affected"`
}

// LoadAdvisory reads one OSV JSON record (schema 1.x) from path.
func LoadAdvisory(path string) (*Advisory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("advisory: %w", err)
	}
	a, err := ParseAdvisory(data)
	if err != nil {
		return nil, fmt.Errorf("advisory %s: %w", path, err)
	}
	return a, nil
}

// ParseAdvisory parses one OSV JSON record.
func ParseAdvisory(data []byte) (*Advisory, error) {
	var rec osvRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("not an OSV record: %w", err)
	}
	if rec.ID == "" {
		return nil, fmt.Errorf("not an OSV record: no id")
	}
	a := &Advisory{ID: rec.ID, Aliases: rec.Aliases, Summary: rec.Summary}
	seen := map[Target]bool{}
	for i, af := range rec.Affected {
		eco := af.Package.Ecosystem
		if !strings.EqualFold(eco, "npm") {
			a.Ignored = append(a.Ignored, fmt.Sprintf("affected[%d]: ecosystem %q", i, eco))
			continue
		}
		name := af.Package.Name
		if err := validName(name); err != nil {
			return nil, fmt.Errorf("affected[%d]: %w", i, err)
		}
		for _, v := range af.Versions {
			t := Target{Name: name, Version: normVersion(v)}
			if !seen[t] {
				seen[t] = true
				a.Exact = append(a.Exact, t)
			}
		}
		for j, r := range af.Ranges {
			switch strings.ToUpper(r.Type) {
			case "SEMVER", "ECOSYSTEM":
			default:
				a.Ignored = append(a.Ignored, fmt.Sprintf("affected[%d].ranges[%d]: type %s", i, j, r.Type))
				continue
			}
			rt := RangeTarget{Name: name, Events: r.Events, Source: rec.ID}
			if err := rt.prepare(); err != nil {
				return nil, fmt.Errorf("affected[%d].ranges[%d]: %w", i, j, err)
			}
			rt.parsed = nil
			a.Ranges = append(a.Ranges, rt)
		}
	}
	if len(a.Exact) == 0 && len(a.Ranges) == 0 {
		return nil, fmt.Errorf("record %s names no npm version or range", rec.ID)
	}
	return a, nil
}
