package forensics

import (
	"bytes"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
)

// Burst detection: this many publishes (this package's versions and the peers given) within the
// window around a suspect's publish time. Worms publish every package they can reach in minutes.
const (
	burstWindow = 10 * time.Minute
	burstMin    = 3
)

// timeMetaKeys are keys of a packument's time map that are not versions.
var timeMetaKeys = map[string]bool{"created": true, "modified": true, "unpublished": true}

// metadataFindings compares version v's registry metadata with the known-good version's and with
// the versions published before it.
func metadataFindings(p *npmreg.Packument, v, base string, suspects map[string]bool, peers []Publish, rules *RuleSet) []Finding {
	var out []Finding
	cur := p.Versions[v]
	if cur == nil {
		return nil
	}
	add := func(id, match, format string, args ...any) {
		out = append(out, rules.finding(id, "metadata", "", match, format, args...))
	}
	// Publisher never seen on an earlier, unsuspected version.
	if cur.NpmUser != nil && cur.NpmUser.Name != "" {
		curT, haveT := p.PublishedAt(v)
		seen := map[string]bool{}
		for ver, m := range p.Versions {
			if ver == v || suspects[ver] || m.NpmUser == nil || m.NpmUser.Name == "" {
				continue
			}
			if t, ok := p.PublishedAt(ver); haveT && ok && !t.Before(curT) {
				continue
			}
			seen[m.NpmUser.Name] = true
		}
		if len(seen) > 0 && !seen[cur.NpmUser.Name] {
			add("metadata.npm-user-new", cur.NpmUser.Name, "published by %q, who published none of the earlier versions (those were by %s)", cur.NpmUser.Name, strings.Join(sortedKeys(seen), ", "))
		}
	}
	if kg := p.Versions[base]; kg != nil {
		if hasProvenance(kg) && !hasProvenance(cur) {
			add("metadata.provenance-dropped", "", "%s had a provenance attestation and %s has none (published outside the usual CI pipeline?)", base, v)
		}
		if hasTrustedPublisher(kg) && !hasTrustedPublisher(cur) {
			add("metadata.trusted-publisher-dropped", "", "%s was published through a trusted publisher (OIDC) and %s was not (a token was used instead)", base, v)
		}
		if kg.NpmVersion != "" && cur.NpmVersion != "" && kg.NpmVersion != cur.NpmVersion {
			add("metadata.npm-version-changed", cur.NpmVersion, "published with npm %s; %s was published with npm %s", cur.NpmVersion, base, kg.NpmVersion)
		}
		if kg.NodeVersion != "" && cur.NodeVersion != "" && kg.NodeVersion != cur.NodeVersion {
			add("metadata.node-version-changed", cur.NodeVersion, "published with Node %s; %s was published with Node %s", cur.NodeVersion, base, kg.NodeVersion)
		}
	}
	if t, ok := p.PublishedAt(v); ok {
		var near []string
		for _, e := range publishes(p, peers) {
			if d := e.Time.Sub(t); d > -burstWindow && d < burstWindow {
				near = append(near, e.Package+"@"+e.Version)
			}
		}
		if len(near) >= burstMin {
			add("metadata.publish-burst", "", "%d publishes within %s of this one: %s", len(near), burstWindow, strings.Join(near, ", "))
		}
	}
	return out
}

// publishes lists this package's publish events from its time map, plus the peers.
func publishes(p *npmreg.Packument, peers []Publish) []Publish {
	var out []Publish
	for k := range p.Time {
		if timeMetaKeys[k] {
			continue
		}
		if t, ok := p.PublishedAt(k); ok {
			out = append(out, Publish{Package: p.Name, Version: k, Time: t})
		}
	}
	for _, e := range peers {
		if e.Package == p.Name {
			continue // its own publishes come from the packument
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// packageFindings are about the package as a whole: versions that were unpublished.
func packageFindings(p *npmreg.Packument, rules *RuleSet) []Finding {
	var out []Finding
	for _, k := range sortedKeys(p.Time) {
		if timeMetaKeys[k] {
			continue
		}
		if _, ok := p.Versions[k]; !ok {
			out = append(out, rules.finding("metadata.unpublished-version", "metadata", "", k,
				"version %s has a publish time (%s) but is gone from versions: it was unpublished, possibly an earlier bad release", k, p.Time[k]))
		}
	}
	return out
}

// hasProvenance reports whether the manifest carries an npm provenance attestation.
func hasProvenance(v *npmreg.Version) bool {
	a := bytes.TrimSpace(v.Dist.Attestations)
	return len(a) > 0 && !bytes.Equal(a, []byte("null")) && bytes.Contains(a, []byte("provenance"))
}

func hasTrustedPublisher(v *npmreg.Version) bool {
	if v.NpmUser == nil {
		return false
	}
	tp := bytes.TrimSpace(v.NpmUser.TrustedPublisher)
	return len(tp) > 0 && !bytes.Equal(tp, []byte("null")) && !bytes.Equal(tp, []byte("{}"))
}

// manifestMismatch compares the registry's manifest with the tarball's package.json: install runs
// the tarball's scripts, while scanners and humans read the registry's.
func manifestMismatch(v *npmreg.Version, tarPkg *pkgJSON, files map[string]*File, rules *RuleSet) []Finding {
	var out []Finding
	for _, name := range lifecycleScripts {
		reg, inReg := v.Scripts[name]
		tar, inTar := tarPkg.scripts[name]
		if inReg == inTar && reg == tar {
			continue
		}
		// npm adds `install: node-gyp rebuild` to the manifest of a package with a binding.gyp.
		if name == "install" && inReg && !inTar && reg == "node-gyp rebuild" && files["binding.gyp"] != nil {
			continue
		}
		out = append(out, rules.finding("metadata.manifest-mismatch", "metadata", "package.json", name,
			"script %q differs between the registry manifest (%q) and the tarball's package.json (%q)", name, reg, tar))
	}
	// npm folds optionalDependencies into the manifest's dependencies on publish, so compare the
	// union of both on each side.
	reg := map[string]string{}
	maps.Copy(reg, v.Dependencies)
	maps.Copy(reg, v.OptionalDependencies)
	tar := map[string]string{}
	maps.Copy(tar, tarPkg.deps["dependencies"])
	maps.Copy(tar, tarPkg.deps["optionalDependencies"])
	for _, name := range unionKeys(reg, tar) {
		if reg[name] != tar[name] {
			out = append(out, rules.finding("metadata.manifest-mismatch", "metadata", "package.json", name,
				"dependency %q differs between the registry manifest (%q) and the tarball's package.json (%q)", name, reg[name], tar[name]))
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
