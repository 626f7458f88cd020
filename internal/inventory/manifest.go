package inventory

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// manifest is the part of package.json inventory reads.
type manifest struct {
	Name                 string            `json:"name"`
	Version              string            `json:"version"`
	Dependencies         map[string]string `json:"dependencies"`
	DevDependencies      map[string]string `json:"devDependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
}

func parseManifest(data []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonErr(data, err)
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil, perr(1, "the file holds JSON null, not an object")
	}
	return &m, nil
}

// depGroups lists the dependency groups in the order npm installs them.
func (m *manifest) depGroups() []struct {
	group string
	deps  map[string]string
} {
	return []struct {
		group string
		deps  map[string]string
	}{
		{"dependencies", m.Dependencies},
		{"devDependencies", m.DevDependencies},
		{"optionalDependencies", m.OptionalDependencies},
		{"peerDependencies", m.PeerDependencies},
	}
}

// depSpecs returns every declared name and range, sorted by name within
// each group.
func (m *manifest) depSpecs() [][2]string {
	var out [][2]string
	for _, g := range m.depGroups() {
		names := make([]string, 0, len(g.deps))
		for n := range g.deps {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, [2]string{n, g.deps[n]})
		}
	}
	return out
}

func (m *manifest) depNames() []string {
	var out []string
	for _, d := range m.depSpecs() {
		out = append(out, d[0])
	}
	return out
}

// declared lists the direct dependencies as packages without a version: a
// manifest pins nothing, it only admits ranges.
func (m *manifest) declared() []Package {
	var out []Package
	for _, d := range m.depSpecs() {
		name, spec := resolveAliasSpec(d[0], d[1])
		p := Package{Name: name, Spec: spec}
		if name != d[0] {
			p.Alias = d[0]
		}
		out = append(out, p)
	}
	return out
}

// resolveAliasSpec turns `alias: "npm:real@^1.0.0"` into real, ^1.0.0.
func resolveAliasSpec(name, spec string) (string, string) {
	if rest, ok := strings.CutPrefix(spec, "npm:"); ok {
		if real, rng, ok := splitNameAt(rest); ok && real != "" {
			return real, rng
		}
	}
	return name, spec
}

// exposure is one declared dependency whose range admits a bad version.
type exposure struct {
	group   string
	name    string
	alias   string
	spec    string
	version string // the bad version admitted
	target  string
	note    string
}

// exposures checks every declared dependency of a target package against
// the target's bad versions: installing afresh (no lockfile, a lockfile
// update, a renovate bump) could pull the bad version even when the current
// lockfile pins a good one.
//
// Ranges are read by Masterminds/semver, which follows npm for ^, ~, x, ||,
// hyphen ranges and prereleases. The dist-tag "latest" (and "*" or an empty
// range) admits every version: during an incident the bad version usually is
// latest. Other tags, git, file, link, workspace and URL specs do not select
// a registry version by range and are not reported. For affected ranges (from
// advisories) only the range's own boundary versions are tried, so a
// dependency range that admits only versions strictly inside an affected
// range is missed; exact versions are checked exactly.
func (m *manifest) exposures(t *Targets) []exposure {
	var out []exposure
	for _, g := range m.depGroups() {
		for local, rawSpec := range g.deps {
			name, spec := resolveAliasSpec(local, rawSpec)
			e, ok := t.byName[name]
			if !ok {
				continue
			}
			base := exposure{group: g.group, name: name, spec: rawSpec}
			if name != local {
				base.alias = local
			}
			spec = strings.TrimSpace(spec)
			every := spec == "" || spec == "*" || spec == "latest" || spec == "x"
			var c *semver.Constraints
			if !every {
				if !looksLikeRange(spec) {
					continue
				}
				var err error
				c, err = semver.NewConstraint(npmRangeToMasterminds(spec))
				if err != nil {
					continue
				}
			}
			admits := func(v string) bool {
				if every {
					return true
				}
				sv, err := semver.NewVersion(v)
				return err == nil && c.Check(sv)
			}
			for v := range e.versions {
				if admits(v) {
					x := base
					x.version, x.target = v, name+"@"+v
					if spec == "latest" {
						x.note = "dist-tag latest resolves to whatever is latest at install time"
					}
					out = append(out, x)
				}
			}
			for _, r := range e.ranges {
				var probe []string
				for _, ev := range r.Events {
					for _, v := range []string{ev.Introduced, ev.LastAffected} {
						if v != "" && v != "0" {
							probe = append(probe, v)
						}
					}
				}
				hit := ""
				if every || r.OverBroad() {
					hit = "*"
				}
				for _, v := range probe {
					if hit == "" && admits(v) && r.Contains(v) {
						hit = v
					}
				}
				if hit != "" {
					x := base
					x.version, x.target = hit, r.String()
					if hit == "*" {
						x.version = ""
					}
					out = append(out, x)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.name != b.name {
			return a.name < b.name
		}
		if a.version != b.version {
			return a.version < b.version
		}
		if a.group != b.group {
			return a.group < b.group
		}
		return a.alias < b.alias
	})
	return out
}

// looksLikeRange rejects specs that are not semver ranges: git and file
// sources, URLs, workspace: and other protocols, GitHub shorthands and dist
// tags other than latest.
func looksLikeRange(spec string) bool {
	if strings.ContainsAny(spec, ":/#") {
		return false
	}
	for _, c := range spec {
		if c >= 'a' && c <= 'z' && c != 'x' && c != 'X' {
			// Letters appear only in prerelease tags, after a digit and '-'.
			return strings.ContainsAny(spec, "0123456789") && strings.Contains(spec, "-")
		}
	}
	return true
}

// npmRangeToMasterminds bridges the two spellings that differ: npm joins
// comparators with spaces ("  >=1.0.0 <2.0.0") where Masterminds wants
// commas, except around hyphen ranges and after operators.
func npmRangeToMasterminds(spec string) string {
	var alts []string
	for _, alt := range strings.Split(spec, "||") {
		f := strings.Fields(alt)
		var parts []string
		for i := 0; i < len(f); i++ {
			tok := f[i]
			if i+2 < len(f) && f[i+1] == "-" {
				parts = append(parts, tok+" - "+f[i+2])
				i += 2
				continue
			}
			if (tok == ">=" || tok == "<=" || tok == ">" || tok == "<" || tok == "=" || tok == "^" || tok == "~") && i+1 < len(f) {
				tok += f[i+1]
				i++
			}
			parts = append(parts, tok)
		}
		alts = append(alts, strings.Join(parts, ", "))
	}
	return strings.Join(alts, " || ")
}
