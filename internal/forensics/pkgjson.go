package forensics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Change kinds.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

// PackageJSONDiff is what changed in package.json between two versions.
type PackageJSONDiff struct {
	Scripts      []ScriptChange     `json:"scripts,omitempty"`
	Dependencies []DependencyChange `json:"dependencies,omitempty"`
	Main         *ValueChange       `json:"main,omitempty"`
	Bin          *ValueChange       `json:"bin,omitempty"`
	// Other lists the remaining top-level keys whose value changed (version excluded).
	Other []string `json:"other,omitempty"`
}

// ScriptChange is one script added, removed or changed. Lifecycle scripts run on install.
type ScriptChange struct {
	Name      string `json:"name"`
	Change    string `json:"change"`
	Old       string `json:"old,omitempty"`
	New       string `json:"new,omitempty"`
	Lifecycle bool   `json:"lifecycle"`
}

// DependencyChange is one dependency added, removed or changed in one section.
type DependencyChange struct {
	Section string `json:"section"`
	Name    string `json:"name"`
	Change  string `json:"change"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
}

// ValueChange is a field's old and new value, as JSON text (strings unquoted).
type ValueChange struct {
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// Empty reports whether nothing changed.
func (d *PackageJSONDiff) Empty() bool {
	return d == nil || (len(d.Scripts) == 0 && len(d.Dependencies) == 0 && d.Main == nil && d.Bin == nil && len(d.Other) == 0)
}

// depSections are the dependency maps npm reads; devDependencies are not installed for consumers
// but a change there is still worth seeing.
var depSections = []string{"dependencies", "optionalDependencies", "peerDependencies", "devDependencies", "bundleDependencies"}

// pkgJSON is a leniently parsed package.json: a field of an unexpected type is kept as its JSON
// text rather than failing the whole file, because an attacker controls it.
type pkgJSON struct {
	top     map[string]json.RawMessage
	scripts map[string]string
	deps    map[string]map[string]string
}

func parsePkgJSON(data []byte) (*pkgJSON, error) {
	p := &pkgJSON{top: map[string]json.RawMessage{}, scripts: map[string]string{}, deps: map[string]map[string]string{}}
	if data == nil {
		return p, nil
	}
	if err := json.Unmarshal(data, &p.top); err != nil {
		return nil, fmt.Errorf("package.json is not a JSON object: %w", err)
	}
	p.scripts = stringMap(p.top["scripts"])
	for _, s := range depSections {
		p.deps[s] = stringMap(p.top[s])
	}
	// bundleDependencies may be an array of names.
	if raw := p.top["bundleDependencies"]; len(raw) > 0 && raw[0] == '[' {
		var names []json.RawMessage
		if json.Unmarshal(raw, &names) == nil {
			m := map[string]string{}
			for _, n := range names {
				m[jsonText(n)] = "bundled"
			}
			p.deps["bundleDependencies"] = m
		}
	}
	return p, nil
}

// stringMap reads a JSON object of strings; non-string values become their JSON text and a
// non-object becomes a single entry under "" so the change stays visible.
func stringMap(raw json.RawMessage) map[string]string {
	out := map[string]string{}
	if len(raw) == 0 || string(raw) == "null" {
		return out
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		out[""] = string(raw)
		return out
	}
	for k, v := range m {
		out[k] = jsonText(v)
	}
	return out
}

// jsonText returns a JSON string's value, or any other JSON value's compact text.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}

// DiffPackageJSON compares two package.json documents. A nil side counts as an empty package (so
// with no known-good version everything is "added"); a side that is not a JSON object is an error.
func DiffPackageJSON(oldJSON, newJSON []byte) (*PackageJSONDiff, error) {
	o, err := parsePkgJSON(oldJSON)
	if err != nil {
		return nil, fmt.Errorf("old %w", err)
	}
	n, err := parsePkgJSON(newJSON)
	if err != nil {
		return nil, fmt.Errorf("new %w", err)
	}
	return diffPkg(o, n), nil
}

func diffPkg(o, n *pkgJSON) *PackageJSONDiff {
	d := &PackageJSONDiff{}
	for _, name := range unionKeys(o.scripts, n.scripts) {
		ov, oin := o.scripts[name]
		nv, nin := n.scripts[name]
		if c := change(oin, nin, ov, nv); c != "" {
			d.Scripts = append(d.Scripts, ScriptChange{Name: name, Change: c, Old: ov, New: nv, Lifecycle: slices.Contains(lifecycleScripts, name)})
		}
	}
	for _, sec := range depSections {
		om, nm := o.deps[sec], n.deps[sec]
		for _, name := range unionKeys(om, nm) {
			ov, oin := om[name]
			nv, nin := nm[name]
			if c := change(oin, nin, ov, nv); c != "" {
				d.Dependencies = append(d.Dependencies, DependencyChange{Section: sec, Name: name, Change: c, Old: ov, New: nv})
			}
		}
	}
	d.Main = valueChange(o.top["main"], n.top["main"])
	d.Bin = valueChange(o.top["bin"], n.top["bin"])
	skip := map[string]bool{"version": true, "scripts": true, "main": true, "bin": true}
	for _, s := range depSections {
		skip[s] = true
	}
	for _, k := range unionKeys(o.top, n.top) {
		if skip[k] {
			continue
		}
		if !jsonEqual(o.top[k], n.top[k]) {
			d.Other = append(d.Other, k)
		}
	}
	return d
}

func change(oin, nin bool, ov, nv string) string {
	switch {
	case !oin && nin:
		return Added
	case oin && !nin:
		return Removed
	case ov != nv:
		return Changed
	}
	return ""
}

func valueChange(o, n json.RawMessage) *ValueChange {
	if jsonEqual(o, n) {
		return nil
	}
	vc := &ValueChange{}
	if len(o) > 0 {
		vc.Old = jsonText(o)
	}
	if len(n) > 0 {
		vc.New = jsonText(n)
	}
	return vc
}

// jsonEqual compares two JSON values semantically (key order and spacing ignored).
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var av, bv any
	if json.Unmarshal(a, &av) != nil || json.Unmarshal(b, &bv) != nil {
		return bytes.Equal(a, b)
	}
	ab, _ := json.Marshal(av)
	bb, _ := json.Marshal(bv)
	return bytes.Equal(ab, bb)
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return slices.Sorted(maps.Keys(keys))
}
