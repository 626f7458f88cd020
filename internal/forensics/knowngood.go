package forensics

import (
	"slices"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/npmir/npmir/internal/npmreg"
)

// LastKnownGood returns the version a compromised package should be rolled back to: the highest
// version not in bad that was published before the earliest bad one. Stable releases are preferred
// over prereleases, and undeprecated over deprecated ones (a deprecation is often an earlier
// incident), falling back in that order. When the bad versions have no publish time, the highest
// version sorting below the lowest bad one is used instead. ok is false when there is none.
func LastKnownGood(p *npmreg.Packument, bad []string) (string, bool) {
	if p == nil || len(p.Versions) == 0 {
		return "", false
	}
	isBad := map[string]bool{}
	for _, v := range bad {
		isBad[v] = true
	}
	var cutoff time.Time
	haveCutoff := true
	for _, v := range bad {
		t, ok := p.PublishedAt(v)
		if !ok {
			haveCutoff = false
			break
		}
		if cutoff.IsZero() || t.Before(cutoff) {
			cutoff = t
		}
	}
	if len(bad) == 0 {
		haveCutoff = false
	}
	lowestBad := ""
	for _, v := range bad {
		if lowestBad == "" || npmreg.VersionLess(v, lowestBad) {
			lowestBad = v
		}
	}
	var candidates []string
	for _, v := range p.SortedVersions() {
		if isBad[v] {
			continue
		}
		if haveCutoff {
			t, ok := p.PublishedAt(v)
			if !ok || !t.Before(cutoff) {
				continue
			}
		} else if lowestBad != "" && !npmreg.VersionLess(v, lowestBad) {
			continue
		}
		candidates = append(candidates, v)
	}
	// Highest first; first pass wants stable and undeprecated, then relaxes.
	slices.Reverse(candidates)
	prefs := []func(string) bool{
		func(v string) bool { return !isPrerelease(v) && p.Versions[v].Deprecated == "" },
		func(v string) bool { return !isPrerelease(v) },
		func(v string) bool { return true },
	}
	for _, ok := range prefs {
		for _, v := range candidates {
			if p.Versions[v] != nil && ok(v) {
				return v, true
			}
		}
	}
	return "", false
}

func isPrerelease(v string) bool {
	sv, err := semver.StrictNewVersion(v)
	return err != nil || sv.Prerelease() != ""
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
