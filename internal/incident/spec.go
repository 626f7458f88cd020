// Package incident holds the Spec of one containment: which packages and versions are bad, since
// when, the known-good overrides and the incident id. Bad input stops here, before any request.
package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Target is one package under suspicion: explicit bad versions, or (when Versions is empty) every
// version published at or after the spec's Since.
type Target struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions,omitempty"`
}

// String renders the target the way it was given.
func (t Target) String() string {
	if len(t.Versions) == 0 {
		return t.Name
	}
	return t.Name + "@" + strings.Join(t.Versions, ",")
}

// Spec is the whole input of one incident. It is stored in the state file, so it holds no secret.
type Spec struct {
	ID         string            `json:"id"`
	Targets    []Target          `json:"targets"`
	Since      *time.Time        `json:"since,omitempty"`
	KnownGood  map[string]string `json:"known_good,omitempty"`
	Maintainer string            `json:"maintainer,omitempty"`
	// TokensCreatedAfter limits token revocation to tokens created after it (default: all).
	TokensCreatedAfter *time.Time `json:"tokens_created_after,omitempty"`
	// LeakedTokenEnv names the variables holding token values known to have leaked: npmir
	// proves each is refused after revocation. The names are stored, never the values.
	LeakedTokenEnv []string `json:"leaked_token_env,omitempty"`
	// Rules is a forensics rules file merged over the embedded rules (--rules).
	Rules string `json:"rules,omitempty"`
}

// UsageError is bad input from the responder: exit code 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// npm's rules for new package names: lower case, URL-safe, at most 214 characters, an optional
// @scope/ prefix, not starting with . or _.
var nameRE = regexp.MustCompile(`^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$`)

// ValidName reports whether s is a valid npm package name (scoped or not).
func ValidName(s string) bool { return len(s) <= 214 && nameRE.MatchString(s) }

// ParseTarget parses `name`, `name@version`, `@scope/name@version` and `name@v1,v2`.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, usagef("empty package spec")
	}
	name, versions := s, ""
	if at := strings.LastIndexByte(s, '@'); at > 0 {
		name, versions = s[:at], s[at+1:]
		if versions == "" {
			return Target{}, usagef("package spec %q: nothing after @ (write name@version, or name with --since)", s)
		}
	}
	if !ValidName(name) {
		return Target{}, usagef("package spec %q: %q is not a valid npm package name", s, name)
	}
	t := Target{Name: name}
	if versions != "" {
		for _, v := range strings.Split(versions, ",") {
			v = strings.TrimPrefix(strings.TrimSpace(v), "v")
			if _, err := semver.StrictNewVersion(v); err != nil {
				return Target{}, usagef("package spec %q: %q is not an exact version (ranges are not accepted: name the bad versions, or use --since)", s, v)
			}
			if !slices.Contains(t.Versions, v) {
				t.Versions = append(t.Versions, v)
			}
		}
	}
	return t, nil
}

// Options are the raw CLI inputs Build turns into a Spec.
type Options struct {
	Specs      []string
	Since      string
	KnownGood  []string // "V" (single target) or "name@V"
	IncidentID string
	Maintainer string
	// TokensCreatedAfter is a time as --since takes it; "since" means the --since value.
	TokensCreatedAfter string
	LeakedTokenEnv     []string
	Rules              string
	Now                time.Time
}

// Build validates the inputs and returns the Spec.
func Build(o Options) (*Spec, error) {
	spec := &Spec{Maintainer: o.Maintainer, LeakedTokenEnv: o.LeakedTokenEnv, Rules: o.Rules}
	if o.Maintainer != "" && !ValidName(o.Maintainer) && !ValidName(o.Maintainer+"/x") {
		return nil, usagef("--maintainer %q is not a valid npm user or @org name", o.Maintainer)
	}
	if len(o.Specs) == 0 && o.Maintainer == "" {
		return nil, usagef("name at least one package (name@version, or name with --since), or --maintainer USER with --since")
	}
	seen := map[string]int{}
	for _, s := range o.Specs {
		t, err := ParseTarget(s)
		if err != nil {
			return nil, err
		}
		if i, ok := seen[t.Name]; ok { // name@1 name@2 → one target with both
			for _, v := range t.Versions {
				if !slices.Contains(spec.Targets[i].Versions, v) {
					spec.Targets[i].Versions = append(spec.Targets[i].Versions, v)
				}
			}
			continue
		}
		seen[t.Name] = len(spec.Targets)
		spec.Targets = append(spec.Targets, t)
	}
	if o.Since != "" {
		t, err := ParseTime(o.Since, o.Now)
		if err != nil {
			return nil, err
		}
		spec.Since = &t
	}
	for _, t := range spec.Targets {
		if len(t.Versions) == 0 && spec.Since == nil {
			return nil, usagef("package %q has no version: write %s@<bad-version>, or add --since T to take every version published since T", t.Name, t.Name)
		}
	}
	if o.Maintainer != "" && spec.Since == nil {
		return nil, usagef("--maintainer needs --since T (the time the identity is believed compromised)")
	}
	switch {
	case o.TokensCreatedAfter == "since" && spec.Since != nil:
		spec.TokensCreatedAfter = spec.Since
	case o.TokensCreatedAfter == "since":
		return nil, usagef("--tokens-created-after since needs --since")
	case o.TokensCreatedAfter != "":
		t, err := ParseTime(o.TokensCreatedAfter, o.Now)
		if err != nil {
			return nil, usagef("--tokens-created-after: %v", strings.TrimPrefix(err.Error(), "--since "))
		}
		spec.TokensCreatedAfter = &t
	}
	for _, name := range o.LeakedTokenEnv {
		if name == "" || strings.ContainsAny(name, "= ") {
			return nil, usagef("--leaked-token-env %q: name an environment variable (its value is the token)", name)
		}
	}
	for _, kg := range o.KnownGood {
		name, v := "", kg
		if at := strings.LastIndexByte(kg, '@'); at > 0 {
			name, v = kg[:at], kg[at+1:]
		} else if len(spec.Targets) == 1 {
			name = spec.Targets[0].Name
		} else {
			return nil, usagef("--known-good %q: with several packages write name@version", kg)
		}
		if _, ok := seen[name]; !ok {
			return nil, usagef("--known-good %q names %s, which is not a target", kg, name)
		}
		if _, err := semver.StrictNewVersion(v); err != nil {
			return nil, usagef("--known-good %q: %q is not an exact version", kg, v)
		}
		if spec.KnownGood == nil {
			spec.KnownGood = map[string]string{}
		}
		spec.KnownGood[name] = v
	}
	spec.ID = o.IncidentID
	if spec.ID == "" {
		spec.ID = spec.DefaultID()
	} else if !idRE.MatchString(spec.ID) {
		return nil, usagef("--incident %q: use letters, digits, '.', '_' and '-' (it names a folder)", spec.ID)
	}
	return spec, nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// DefaultID derives a stable incident id from the targets, so re-running the same command finds
// the same incident (and its state) instead of starting a second one.
func (s *Spec) DefaultID() string {
	var parts []string
	for _, t := range s.Targets {
		parts = append(parts, t.String())
	}
	slices.Sort(parts)
	key := strings.Join(parts, " ") + "|" + s.Maintainer
	if s.Since != nil {
		key += "|" + s.Since.UTC().Format(time.RFC3339)
	}
	sum := sha256.Sum256([]byte(key))
	first := s.Maintainer
	if len(s.Targets) > 0 {
		names := make([]string, len(s.Targets))
		for i, t := range s.Targets {
			names[i] = t.Name
		}
		first = slices.Min(names)
	}
	slug := strings.NewReplacer("@", "", "/", "-").Replace(first)
	if len(slug) > 40 {
		slug = slug[:40]
	}
	return "inc-" + slug + "-" + hex.EncodeToString(sum[:])[:8]
}

// Equal reports whether two specs describe the same incident input.
func (s *Spec) Equal(o *Spec) bool {
	return s.DefaultIDKey() == o.DefaultIDKey()
}

// DefaultIDKey is the canonical text of the inputs (used for comparison).
func (s *Spec) DefaultIDKey() string {
	var parts []string
	for _, t := range s.Targets {
		vs := slices.Clone(t.Versions)
		slices.Sort(vs)
		parts = append(parts, t.Name+"@"+strings.Join(vs, ","))
	}
	slices.Sort(parts)
	var kg []string
	for k, v := range s.KnownGood {
		kg = append(kg, k+"="+v)
	}
	slices.Sort(kg)
	since := ""
	if s.Since != nil {
		since = s.Since.UTC().Format(time.RFC3339)
	}
	return strings.Join(parts, " ") + "|" + since + "|" + strings.Join(kg, ",") + "|" + s.Maintainer
}

// IsAbsoluteTime reports whether s names a fixed instant (RFC 3339 or a date), not a duration ago.
func IsAbsoluteTime(s string) bool {
	if _, err := time.Parse(time.RFC3339, s); err == nil {
		return true
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

// ParseTime accepts RFC 3339, a date (midnight UTC), or a duration ago ("36h", "2d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	if now.IsZero() {
		now = time.Now()
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == d {
			return now.Add(-time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, usagef("--since %q: use RFC 3339 (2025-09-08T13:00:00Z), a date (2025-09-08) or a duration ago (36h, 2d)", s)
}
