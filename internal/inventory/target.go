package inventory

import (
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Target is one exact bad version of one package.
type Target struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// String renders the target the way npm spells it: name@version.
func (t Target) String() string { return t.Name + "@" + t.Version }

// Event is one OSV range event. Exactly one of the fields is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
}

// RangeTarget is an affected range of one package, as an OSV advisory states
// it (SEMVER or ECOSYSTEM events). It matches every version inside the range.
type RangeTarget struct {
	Name   string  `json:"name"`
	Events []Event `json:"events"`
	// Source names the advisory the range came from, for reports.
	Source string `json:"source,omitempty"`

	parsed []parsedEvent
}

type parsedEvent struct {
	v    *semver.Version // nil means "0": before every version
	kind byte            // 'i' introduced, 'f' fixed, 'l' last_affected
}

// String renders the range compactly: name@[>=1.0.0 <1.2.0] or name@[*] for an
// open range.
func (r RangeTarget) String() string {
	var parts []string
	for _, e := range r.Events {
		switch {
		case e.Introduced != "":
			if e.Introduced == "0" {
				parts = append(parts, "*")
			} else {
				parts = append(parts, ">="+e.Introduced)
			}
		case e.Fixed != "":
			parts = append(parts, "<"+e.Fixed)
		case e.LastAffected != "":
			parts = append(parts, "<="+e.LastAffected)
		}
	}
	return r.Name + "@[" + strings.Join(parts, " ") + "]"
}

// OverBroad reports whether the range affects every version from the first
// one on with no end (introduced "0" and no fix or last_affected): MAL- records
// carry such ranges next to the exact versions, and matching them would flag
// every user of the package.
func (r RangeTarget) OverBroad() bool {
	open := false
	for _, e := range r.Events {
		if e.Introduced == "0" {
			open = true
		}
		if e.Fixed != "" || e.LastAffected != "" {
			return false
		}
	}
	return open
}

func (r *RangeTarget) prepare() error {
	r.parsed = r.parsed[:0]
	for _, e := range r.Events {
		var raw string
		var kind byte
		switch {
		case e.Introduced != "":
			raw, kind = e.Introduced, 'i'
		case e.Fixed != "":
			raw, kind = e.Fixed, 'f'
		case e.LastAffected != "":
			raw, kind = e.LastAffected, 'l'
		default:
			return fmt.Errorf("range of %s: empty event", r.Name)
		}
		pe := parsedEvent{kind: kind}
		if raw != "0" {
			v, err := semver.NewVersion(raw)
			if err != nil {
				return fmt.Errorf("range of %s: version %q: %w", r.Name, raw, err)
			}
			pe.v = v
		}
		r.parsed = append(r.parsed, pe)
	}
	// OSV evaluates events in version order; "0" sorts first.
	sort.SliceStable(r.parsed, func(i, j int) bool {
		a, b := r.parsed[i].v, r.parsed[j].v
		if a == nil || b == nil {
			return a == nil && b != nil
		}
		return a.LessThan(b)
	})
	return nil
}

// Contains reports whether version lies inside the range, following the OSV
// evaluation: walk the events in version order, introduced switches the range
// on, fixed switches it off at that version, last_affected switches it off
// after that version. A version that is not semver never matches a range.
func (r *RangeTarget) Contains(version string) bool {
	if r.parsed == nil && len(r.Events) > 0 {
		if r.prepare() != nil {
			return false
		}
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return false
	}
	affected := false
	for _, e := range r.parsed {
		switch e.kind {
		case 'i':
			if e.v == nil || !v.LessThan(e.v) {
				affected = true
			}
		case 'f':
			if e.v != nil && !v.LessThan(e.v) {
				affected = false
			}
		case 'l':
			if e.v != nil && v.GreaterThan(e.v) {
				affected = false
			}
		}
	}
	return affected
}

// Targets is the set of bad versions a scan looks for, indexed by package
// name so that matching a lockfile entry is one map lookup.
type Targets struct {
	byName map[string]*nameTargets
}

type nameTargets struct {
	versions map[string]bool
	ranges   []*RangeTarget
}

// NewTargets builds a set from exact targets.
func NewTargets(ts ...Target) *Targets {
	s := &Targets{byName: map[string]*nameTargets{}}
	for _, t := range ts {
		s.Add(t)
	}
	return s
}

func (s *Targets) entry(name string) *nameTargets {
	if s.byName == nil {
		s.byName = map[string]*nameTargets{}
	}
	e := s.byName[name]
	if e == nil {
		e = &nameTargets{versions: map[string]bool{}}
		s.byName[name] = e
	}
	return e
}

// Add adds one exact bad version.
func (s *Targets) Add(t Target) {
	s.entry(t.Name).versions[normVersion(t.Version)] = true
}

// AddRange adds an affected range. It fails when an event's version is not
// semver, so that a typo in an advisory is not silently a range that matches
// nothing.
func (s *Targets) AddRange(r RangeTarget) error {
	if r.Name == "" {
		return fmt.Errorf("range without a package name")
	}
	rc := r
	rc.Events = append([]Event(nil), r.Events...)
	if err := rc.prepare(); err != nil {
		return err
	}
	e := s.entry(r.Name)
	e.ranges = append(e.ranges, &rc)
	return nil
}

// Len is the number of exact versions plus the number of ranges.
func (s *Targets) Len() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, e := range s.byName {
		n += len(e.versions) + len(e.ranges)
	}
	return n
}

// Names returns the package names in the set, sorted.
func (s *Targets) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Exact returns the exact targets, sorted.
func (s *Targets) Exact() []Target {
	var out []Target
	for _, n := range s.Names() {
		for v := range s.byName[n].versions {
			out = append(out, Target{Name: n, Version: v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Ranges returns the range targets, sorted by name.
func (s *Targets) Ranges() []RangeTarget {
	var out []RangeTarget
	for _, n := range s.Names() {
		for _, r := range s.byName[n].ranges {
			out = append(out, RangeTarget{Name: r.Name, Events: r.Events, Source: r.Source})
		}
	}
	return out
}

// HasName reports whether any target concerns the package name.
func (s *Targets) HasName(name string) bool {
	if s == nil {
		return false
	}
	_, ok := s.byName[name]
	return ok
}

// Match reports whether name@version is a bad version, and which target says
// so (name@version for an exact target, the range's String otherwise).
func (s *Targets) Match(name, version string) (string, bool) {
	if s == nil || version == "" {
		return "", false
	}
	e, ok := s.byName[name]
	if !ok {
		return "", false
	}
	nv := normVersion(version)
	if e.versions[nv] {
		return name + "@" + nv, true
	}
	for _, r := range e.ranges {
		if r.Contains(nv) {
			return r.String(), true
		}
	}
	return "", false
}

// normVersion drops what npm itself drops from a version: a leading "v" or
// "=", surrounding spaces and build metadata (npm never publishes two
// versions that differ only there).
func normVersion(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimLeft(v, "v=")
	if i := strings.IndexByte(v, '+'); i > 0 {
		v = v[:i]
	}
	return v
}

// ParseTarget parses "name@version", scoped names included
// ("@ctrl/tinycolor@4.1.1"). The version must be exact: a range here is almost
// always a mistake that would flag every user of the package.
func ParseTarget(spec string) (Target, error) {
	spec = strings.TrimSpace(spec)
	at := strings.LastIndexByte(spec, '@')
	if at <= 0 {
		return Target{}, fmt.Errorf("target %q: want name@version, e.g. @ctrl/tinycolor@4.1.1", spec)
	}
	name, version := spec[:at], spec[at+1:]
	if err := validName(name); err != nil {
		return Target{}, fmt.Errorf("target %q: %w", spec, err)
	}
	if _, err := semver.StrictNewVersion(normVersion(version)); err != nil {
		return Target{}, fmt.Errorf("target %q: version %q is not an exact semver version (ranges belong in an advisory file)", spec, version)
	}
	return Target{Name: name, Version: normVersion(version)}, nil
}

// ParseTargets parses several name@version specs into a set.
func ParseTargets(specs []string) (*Targets, error) {
	s := NewTargets()
	for _, sp := range specs {
		t, err := ParseTarget(sp)
		if err != nil {
			return nil, err
		}
		s.Add(t)
	}
	return s, nil
}

// validName applies the npm rules that matter for matching: lower-case-free
// checks are left to the registry, but the shape (optional @scope/, no spaces,
// no path tricks) is enforced so that a typo fails loudly.
func validName(name string) error {
	if name == "" || len(name) > 214 {
		return fmt.Errorf("package name %q: empty or longer than 214 characters", name)
	}
	rest := name
	if name[0] == '@' {
		slash := strings.IndexByte(name, '/')
		if slash < 2 || slash == len(name)-1 {
			return fmt.Errorf("package name %q: scoped names look like @scope/name", name)
		}
		rest = name[slash+1:]
	}
	if strings.ContainsAny(rest, "/ @~'!()*\\") || rest[0] == '.' || rest[0] == '_' {
		return fmt.Errorf("package name %q: not a valid npm package name", name)
	}
	return nil
}
