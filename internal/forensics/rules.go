package forensics

import (
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed rules/iocs.yaml
var builtinRules []byte

// RulesSchemaVersion is the rules file format this build reads.
const RulesSchemaVersion = 1

// Rule kinds.
const (
	KindFilename   = "filename"
	KindWorkflow   = "workflow"
	KindSHA256     = "sha256"
	KindString     = "string"
	KindScript     = "script"
	KindDependency = "dependency"
)

// lifecycleScripts are the scripts npm runs on install (prepare runs for git installs).
var lifecycleScripts = []string{"preinstall", "install", "postinstall", "prepare"}

// Rule is one indicator of compromise. The file format is documented in rules/iocs.yaml.
type Rule struct {
	ID          string   `yaml:"id" json:"id"`
	Kind        string   `yaml:"kind" json:"kind"`
	Severity    Severity `yaml:"severity" json:"severity"`
	Values      []string `yaml:"values" json:"values"`
	Files       []string `yaml:"files,omitempty" json:"files,omitempty"`
	Scripts     []string `yaml:"scripts,omitempty" json:"scripts,omitempty"`
	Scope       string   `yaml:"scope,omitempty" json:"scope,omitempty"`
	NoCase      bool     `yaml:"nocase,omitempty" json:"nocase,omitempty"`
	Incident    string   `yaml:"incident,omitempty" json:"incident,omitempty"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Source      string   `yaml:"source" json:"source"`

	res []*regexp.Regexp // compiled Values of a script rule
}

// Check sets the severity and source of one of npmir's built-in checks.
type Check struct {
	Severity Severity `yaml:"severity" json:"severity"`
	Source   string   `yaml:"source" json:"source"`
}

// RuleSet is the rules Verify applies. Build it with DefaultRules, ParseRules or LoadRules; it is
// read-only afterwards and safe to share between goroutines.
type RuleSet struct {
	SchemaVersion int              `yaml:"schema_version" json:"schema_version"`
	Version       string           `yaml:"rules_version" json:"rules_version"`
	Rules         []*Rule          `yaml:"-" json:"rules"`
	Checks        map[string]Check `yaml:"checks" json:"checks"`

	literals  []literal // every string-rule value, for the streaming scanner
	maxLit    int
	scanIndex *scanIndex
}

// literal is one searched string and the rule it belongs to.
type literal struct {
	rule   *Rule
	value  string
	needle []byte // lowercased when rule.NoCase
}

var (
	defaultOnce  sync.Once
	defaultRules *RuleSet
	defaultErr   error
)

// DefaultRules returns the embedded rule set. It panics if the embedded file is broken, which a
// unit test rules out.
func DefaultRules() *RuleSet {
	defaultOnce.Do(func() { defaultRules, defaultErr = ParseRules(builtinRules, "rules/iocs.yaml (embedded)") })
	if defaultErr != nil {
		panic(defaultErr)
	}
	return defaultRules
}

// LoadRules reads a rules file (YAML or JSON, the format of rules/iocs.yaml) and merges it over the
// embedded rules: new ids are added, an existing id is replaced, checks override severities.
func LoadRules(file string) (*RuleSet, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	extra, err := ParseRules(data, file)
	if err != nil {
		return nil, err
	}
	return DefaultRules().Merge(extra), nil
}

// Merge returns a new set holding s with extra's rules and checks laid over it. The version reads
// "<s>+<extra>" so a report shows that local rules took part.
func (s *RuleSet) Merge(extra *RuleSet) *RuleSet {
	out := &RuleSet{SchemaVersion: RulesSchemaVersion, Version: s.Version, Checks: map[string]Check{}}
	if extra.Version != "" {
		out.Version += "+" + extra.Version
	} else {
		out.Version += "+local"
	}
	for k, v := range s.Checks {
		out.Checks[k] = v
	}
	for k, v := range extra.Checks {
		out.Checks[k] = v
	}
	idx := map[string]int{}
	for _, r := range s.Rules {
		idx[r.ID] = len(out.Rules)
		out.Rules = append(out.Rules, r)
	}
	for _, r := range extra.Rules {
		if i, ok := idx[r.ID]; ok {
			out.Rules[i] = r
			continue
		}
		idx[r.ID] = len(out.Rules)
		out.Rules = append(out.Rules, r)
	}
	out.index()
	return out
}

// ParseRules parses and validates a rules document; name is used in error messages, which carry
// the line of the offending rule.
func ParseRules(data []byte, name string) (*RuleSet, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty rules file", name)
	}
	root := doc.Content[0]
	var head struct {
		SchemaVersion int              `yaml:"schema_version"`
		Version       string           `yaml:"rules_version"`
		Checks        map[string]Check `yaml:"checks"`
		Rules         []yaml.Node      `yaml:"rules"`
	}
	if err := root.Decode(&head); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if head.SchemaVersion != RulesSchemaVersion {
		return nil, fmt.Errorf("%s: schema_version %d is not supported (this npmir reads %d)", name, head.SchemaVersion, RulesSchemaVersion)
	}
	s := &RuleSet{SchemaVersion: head.SchemaVersion, Version: head.Version, Checks: head.Checks}
	if s.Checks == nil {
		s.Checks = map[string]Check{}
	}
	for id, c := range s.Checks {
		if c.Severity.rank() == 0 && c.Severity != SeverityInfo {
			return nil, fmt.Errorf("%s: check %q: severity %q is not one of info, low, medium, high", name, id, c.Severity)
		}
	}
	seen := map[string]int{}
	for i := range head.Rules {
		n := &head.Rules[i]
		var r Rule
		if err := n.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n.Line, err)
		}
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: rule %q: %w", name, n.Line, r.ID, err)
		}
		if prev, dup := seen[r.ID]; dup {
			return nil, fmt.Errorf("%s:%d: rule %q: duplicate id (first at line %d)", name, n.Line, r.ID, prev)
		}
		seen[r.ID] = n.Line
		s.Rules = append(s.Rules, &r)
	}
	s.index()
	return s, nil
}

func (r *Rule) validate() error {
	if r.ID == "" {
		return fmt.Errorf("id is required")
	}
	if r.Source == "" {
		return fmt.Errorf("source is required: say where the indicator comes from")
	}
	if r.Severity.rank() == 0 && r.Severity != SeverityInfo {
		return fmt.Errorf("severity %q is not one of info, low, medium, high", r.Severity)
	}
	if len(r.Values) == 0 {
		return fmt.Errorf("values is empty")
	}
	switch r.Scope {
	case "", "all", "changed":
	default:
		return fmt.Errorf("scope %q is not all or changed", r.Scope)
	}
	for _, g := range r.Files {
		if _, err := path.Match(strings.TrimPrefix(g, "/"), ""); err != nil {
			return fmt.Errorf("files glob %q: %w", g, err)
		}
	}
	switch r.Kind {
	case KindFilename, KindWorkflow:
		for _, v := range r.Values {
			if _, err := path.Match(strings.TrimPrefix(v, "/"), ""); err != nil {
				return fmt.Errorf("glob %q: %w", v, err)
			}
		}
	case KindSHA256:
		for i, v := range r.Values {
			v = strings.ToLower(strings.TrimSpace(v))
			if b, err := hex.DecodeString(v); err != nil || len(b) != 32 {
				return fmt.Errorf("%q is not a hex SHA-256", v)
			}
			r.Values[i] = v
		}
	case KindString:
		for _, v := range r.Values {
			// Shorter strings match everywhere and tell nothing; the scanner also keys on two bytes.
			if len(v) < 3 {
				return fmt.Errorf("string value %q is shorter than 3 bytes", v)
			}
		}
	case KindScript:
		if len(r.Scripts) == 0 {
			r.Scripts = slices.Clone(lifecycleScripts)
		}
		r.res = nil
		for _, v := range r.Values {
			re, err := regexp.Compile(v)
			if err != nil {
				return fmt.Errorf("script pattern %q: %w", v, err)
			}
			r.res = append(r.res, re)
		}
	case KindDependency:
	default:
		return fmt.Errorf("kind %q is not one of filename, workflow, sha256, string, script, dependency", r.Kind)
	}
	return nil
}

func (s *RuleSet) index() {
	s.literals, s.maxLit = nil, 0
	for _, r := range s.Rules {
		if r.Kind != KindString {
			continue
		}
		for _, v := range r.Values {
			n := []byte(v)
			if r.NoCase {
				n = []byte(strings.ToLower(v))
			}
			s.literals = append(s.literals, literal{rule: r, value: v, needle: n})
			s.maxLit = max(s.maxLit, len(n))
		}
	}
	s.scanIndex = buildScanIndex(s.literals)
}

// check returns the configured severity and source of a built-in check; an id missing from the
// rules file counts as medium so a forgotten entry cannot silence a check.
func (s *RuleSet) check(id string) Check {
	if c, ok := s.Checks[id]; ok {
		return c
	}
	return Check{Severity: SeverityMedium, Source: "npmir"}
}

// finding builds a Finding for a built-in check.
func (s *RuleSet) finding(id, category, path, match, format string, args ...any) Finding {
	c := s.check(id)
	return Finding{RuleID: id, Severity: c.Severity, Category: category, Path: path, Match: match, Message: fmt.Sprintf(format, args...), Source: c.Source}
}

// ruleFinding builds a Finding for an IOC rule hit.
func ruleFinding(r *Rule, p, match string) Finding {
	msg := r.Description
	if r.Incident != "" {
		msg = r.Incident + ": " + msg
	}
	return Finding{RuleID: r.ID, Severity: r.Severity, Category: "ioc", Path: p, Match: match, Message: msg, Source: r.Source}
}

// matchPath reports whether glob matches the package-relative path p: a leading "/" anchors at the
// package root, a glob without "/" matches the base name, any other glob matches at any depth.
func matchPath(glob, p string) bool {
	if strings.HasPrefix(glob, "/") {
		ok, _ := path.Match(glob[1:], p)
		return ok
	}
	if !strings.Contains(glob, "/") {
		ok, _ := path.Match(glob, path.Base(p))
		return ok
	}
	for rest := p; ; {
		if ok, _ := path.Match(glob, rest); ok {
			return true
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return false
		}
		rest = rest[i+1:]
	}
}

// appliesToFile reports whether a rule's files restriction admits p.
func (r *Rule) appliesToFile(p string) bool {
	if len(r.Files) == 0 {
		return true
	}
	for _, g := range r.Files {
		if matchPath(g, p) {
			return true
		}
	}
	return false
}
