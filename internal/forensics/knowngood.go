package forensics

import (
	"slices"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/npmir/npmir/internal/npmreg"
)

// LastKnownGood is npmreg's rule (one rule for the whole tool: the version verify compares with
// is the version the freeze falls back to).
func LastKnownGood(p *npmreg.Packument, bad []string) (string, bool) {
	if p == nil {
		return "", false
	}
	return p.LastKnownGood(bad)
}

// isPatchRelease reports whether cur is a patch bump over base (same major.minor, higher patch):
// a new dependency there is the event-stream pattern.
func isPatchRelease(base, cur string) bool {
	b, err1 := semver.StrictNewVersion(base)
	c, err2 := semver.StrictNewVersion(cur)
	if err1 != nil || err2 != nil {
		return false
	}
	return b.Major() == c.Major() && b.Minor() == c.Minor() && c.GreaterThan(b)
}

// suspectVersions resolves a request's suspect set: the explicit versions, else every version
// published at or after since.
func suspectVersions(p *npmreg.Packument, versions []string, since time.Time) []string {
	if len(versions) > 0 {
		out := slices.Clone(versions)
		npmreg.SortVersions(out)
		return slices.Compact(out)
	}
	var out []string
	for _, v := range p.SortedVersions() {
		if t, ok := p.PublishedAt(v); ok && !t.Before(since) {
			out = append(out, v)
		}
	}
	return out
}
