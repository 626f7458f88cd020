// Package npmreg is npmir's client for the npm registry HTTP API (registry.npmjs.org and
// compatibles such as Verdaccio): packument reads, dist-tags, deprecation and the owner/access/token
// routes. It knows nothing of incidents or runbooks; the steps package composes it.
package npmreg

import (
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Packument is the registry's document for one package: every version's manifest, the dist-tags
// and the publish times. Only the fields npmir reads are typed; writes never round-trip this
// struct (they edit the raw document) so unknown fields survive.
type Packument struct {
	ID          string              `json:"_id,omitempty"`
	Rev         string              `json:"_rev,omitempty"`
	Name        string              `json:"name"`
	DistTags    map[string]string   `json:"dist-tags"`
	Versions    map[string]*Version `json:"versions"`
	Time        map[string]string   `json:"time,omitempty"`
	Maintainers []Person            `json:"maintainers,omitempty"`
}

// Person is a maintainer or publisher entry.
type Person struct {
	Name             string          `json:"name"`
	Email            string          `json:"email,omitempty"`
	TrustedPublisher json.RawMessage `json:"trustedPublisher,omitempty"`
}

// Version is one version's manifest as the registry serves it inside a packument.
type Version struct {
	Name                 string            `json:"name"`
	Version              string            `json:"version"`
	Deprecated           string            `json:"deprecated,omitempty"`
	Main                 string            `json:"main,omitempty"`
	Bin                  json.RawMessage   `json:"bin,omitempty"`
	Scripts              map[string]string `json:"scripts,omitempty"`
	Dependencies         map[string]string `json:"dependencies,omitempty"`
	OptionalDependencies map[string]string `json:"optionalDependencies,omitempty"`
	PeerDependencies     map[string]string `json:"peerDependencies,omitempty"`
	DevDependencies      map[string]string `json:"devDependencies,omitempty"`
	NpmUser              *Person           `json:"_npmUser,omitempty"`
	NpmVersion           string            `json:"_npmVersion,omitempty"`
	NodeVersion          string            `json:"_nodeVersion,omitempty"`
	Maintainers          []Person          `json:"maintainers,omitempty"`
	Dist                 Dist              `json:"dist"`
}

// Dist locates and authenticates a version's tarball.
type Dist struct {
	Tarball      string          `json:"tarball"`
	Shasum       string          `json:"shasum,omitempty"`
	Integrity    string          `json:"integrity,omitempty"`
	Signatures   json.RawMessage `json:"signatures,omitempty"`
	Attestations json.RawMessage `json:"attestations,omitempty"`
}

// PublishedAt returns when version v was published, from the packument's time map.
func (p *Packument) PublishedAt(v string) (time.Time, bool) {
	s, ok := p.Time[v]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// SortedVersions returns the packument's versions in ascending semver order; strings that are not
// semver sort last, lexically, so nothing is silently dropped.
func (p *Packument) SortedVersions() []string {
	out := make([]string, 0, len(p.Versions))
	for v := range p.Versions {
		out = append(out, v)
	}
	SortVersions(out)
	return out
}

// SortVersions sorts version strings ascending by semver precedence.
func SortVersions(vs []string) {
	sort.SliceStable(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
}

func versionLess(a, b string) bool {
	va, ea := semver.StrictNewVersion(a)
	vb, eb := semver.StrictNewVersion(b)
	switch {
	case ea == nil && eb == nil:
		return va.LessThan(vb)
	case ea == nil:
		return true
	case eb == nil:
		return false
	}
	return a < b
}

// VersionLess reports whether version a sorts before b (semver precedence, non-semver last).
func VersionLess(a, b string) bool { return versionLess(a, b) }

// PathEscape encodes a package name for a registry path: a scoped name keeps its leading @ and
// encodes the slash (`@scope%2fname`), as the npm client does.
func PathEscape(name string) string {
	if strings.HasPrefix(name, "@") {
		if i := strings.IndexByte(name, '/'); i > 0 {
			return "@" + url.PathEscape(name[1:i]) + "%2f" + url.PathEscape(name[i+1:])
		}
	}
	return url.PathEscape(name)
}

// LastKnownGood returns the version a compromised package falls back to: the highest version not
// in bad that was published before the earliest bad one (a tie on the publish time, as scripted
// publishes produce, falls back to version order). Stable releases are preferred over
// prereleases, and undeprecated over deprecated ones (a deprecation is often an earlier
// incident), relaxing in that order. When the bad versions have no publish time, the highest
// version below the lowest bad one is used. ok is false when there is none.
func (p *Packument) LastKnownGood(bad []string) (string, bool) {
	if p == nil || len(p.Versions) == 0 || len(bad) == 0 {
		return "", false
	}
	lowestBad := slices.MinFunc(bad, func(a, b string) int {
		if versionLess(a, b) {
			return -1
		}
		if versionLess(b, a) {
			return 1
		}
		return 0
	})
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
	var candidates []string
	for _, v := range p.SortedVersions() {
		if slices.Contains(bad, v) || p.Versions[v] == nil {
			continue
		}
		if haveCutoff {
			t, ok := p.PublishedAt(v)
			if !ok || t.After(cutoff) || (t.Equal(cutoff) && !versionLess(v, lowestBad)) {
				continue
			}
		} else if !versionLess(v, lowestBad) {
			continue
		}
		candidates = append(candidates, v)
	}
	slices.Reverse(candidates) // highest first
	prefs := []func(string) bool{
		func(v string) bool { return !isPrerelease(v) && p.Versions[v].Deprecated == "" },
		func(v string) bool { return !isPrerelease(v) },
		func(string) bool { return true },
	}
	for _, ok := range prefs {
		for _, v := range candidates {
			if ok(v) {
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
