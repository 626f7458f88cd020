package inventory

import (
	"bytes"
	"strings"
)

// yarnEntry is one lockfile entry while it is being read.
type yarnEntry struct {
	descriptors []string
	off         int
	line        int
	version     string
	resolution  string // berry only
	deps        [][2]string
}

// parseYarnLock reads yarn.lock, both the v1 format (`version "1.2.3"`) and
// berry's YAML subset (`version: 1.2.3`, `resolution: "name@npm:1.2.3"`),
// line by line. Berry's resolution gives the real name of aliased and
// patch: entries; v1 aliases are resolved from the npm: descriptor.
func parseYarnLock(data []byte, req *graphReq) ([]Package, error) {
	var (
		pkgs     []Package
		entries  []yarnEntry
		cur      *yarnEntry
		berry    bool
		metadata bool
		sub      string // current indented section of the entry ("dependencies", ...)
		firstErr *ParseError
		lineNo   int
	)
	wantGraph := req != nil
	finish := func() {
		if cur == nil {
			return
		}
		if p, ok := yarnPackage(cur, berry); ok {
			pkgs = append(pkgs, p)
		}
		if wantGraph {
			entries = append(entries, *cur)
		}
		cur = nil
	}
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		var line []byte
		next := len(data)
		if end >= 0 {
			line = data[off : off+end]
			next = off + end + 1
		} else {
			line = data[off:]
		}
		lineNo++
		lineOff := off
		off = next
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		if indent == 0 {
			finish()
			metadata = false
			sub = ""
			if line[len(line)-1] != ':' {
				if firstErr == nil {
					firstErr = perr(lineNo, "expected an entry such as `name@range:`, found %q", clip(line))
				}
				continue
			}
			key := string(line[:len(line)-1])
			if key == "__metadata" {
				metadata, berry = true, true
				continue
			}
			cur = &yarnEntry{descriptors: splitDescriptors(key), off: lineOff, line: lineNo}
			continue
		}
		if metadata {
			continue
		}
		if cur == nil {
			if firstErr == nil {
				firstErr = perr(lineNo, "indented line outside any entry")
			}
			continue
		}
		if bytes.HasPrefix(bytes.TrimLeft(line, " "), []byte("#")) {
			continue
		}
		k, v := yarnField(line[indent:])
		if indent <= 2 {
			sub = ""
			switch k {
			case "version":
				cur.version = v
			case "resolution":
				cur.resolution = v
			case "dependencies", "optionalDependencies":
				if v == "" {
					sub = k
				}
			}
			continue
		}
		if wantGraph && sub != "" && k != "" {
			cur.deps = append(cur.deps, [2]string{k, v})
		}
	}
	finish()
	if wantGraph {
		buildYarnGraph(req, entries, berry)
	}
	if firstErr != nil {
		return pkgs, firstErr
	}
	return pkgs, nil
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// yarnField splits an entry line into key and value, for both `key "value"`
// (v1) and `key: value` (berry); quotes are removed.
func yarnField(s []byte) (key, value string) {
	var k []byte
	if len(s) > 0 && s[0] == '"' {
		j := bytes.IndexByte(s[1:], '"')
		if j < 0 {
			return string(s), ""
		}
		k = s[1 : 1+j]
		s = s[2+j:]
	} else {
		j := bytes.IndexAny(s, ": ")
		if j < 0 {
			return string(s), ""
		}
		k = s[:j]
		s = s[j:]
	}
	if len(s) > 0 && s[0] == ':' {
		s = s[1:]
	}
	s = bytes.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return string(k), string(s)
}

// splitDescriptors splits an entry key such as
// `"a@^1.0.0", a@~1.1.0` or berry's `"a@npm:^1.0.0, a@npm:~1.1.0"`.
func splitDescriptors(key string) []string {
	key = strings.ReplaceAll(key, `"`, "")
	parts := strings.Split(key, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// yarnPackage turns an entry into a package. The root workspace of a berry
// project is the project itself, not a dependency, and is left out.
func yarnPackage(e *yarnEntry, berry bool) (Package, bool) {
	if len(e.descriptors) == 0 {
		return Package{}, false
	}
	local, rng, _ := splitNameAt(e.descriptors[0])
	name := local
	if e.resolution != "" {
		rn, rrest, ok := splitNameAt(e.resolution)
		if ok {
			name = rn
			if strings.HasPrefix(rrest, "workspace:") && strings.TrimPrefix(rrest, "workspace:") == "." {
				return Package{}, false
			}
		}
	} else {
		// v1: "alias@npm:real@^1.0.0" names the real package; an entry may mix
		// aliased and plain descriptors of the same package.
		name = ""
		for _, d := range e.descriptors {
			dn, dr, _ := splitNameAt(d)
			if real, ok := npmAliasTarget(dr); ok {
				if name == "" {
					name = real
				}
				continue
			}
			name = dn
			break
		}
		if name == "" {
			name = local
		}
	}
	p := Package{Name: name, Line: e.line}
	if name != local {
		p.Alias = local
	}
	p.Version, p.Source = splitVersion(e.version)
	if e.version == "" {
		p.Source = rng
	}
	if p.Version == "" && p.Source == "" {
		p.Source = e.resolution
	}
	return p, true
}

// npmAliasTarget returns the real name of an "npm:real@range" specifier.
func npmAliasTarget(spec string) (string, bool) {
	rest, ok := strings.CutPrefix(spec, "npm:")
	if !ok {
		return "", false
	}
	real, _, ok := splitNameAt(rest)
	if !ok || real == "" {
		return "", false
	}
	return real, true
}

// yarnNorm makes descriptors written in keys and in dependency lists
// comparable: berry escapes ':' inside patch: descriptors in one place and
// not the other, and appends ::locator= to some keys.
func yarnNorm(d string) string {
	if i := strings.Index(d, "::"); i >= 0 {
		d = d[:i]
	}
	return strings.ReplaceAll(d, "%3A", ":")
}

func buildYarnGraph(req *graphReq, entries []yarnEntry, berry bool) {
	g := req.g
	byDesc := map[string]int{}
	byName := map[string][]int{}
	nodeOf := make([]int, len(entries))
	referenced := make([]bool, len(entries))
	// Workspaces (berry) are importers; the root one goes first.
	order := make([]int, 0, len(entries))
	isWS := func(e yarnEntry) (string, bool) {
		_, rest, ok := splitNameAt(e.resolution)
		if ok && strings.HasPrefix(rest, "workspace:") {
			return strings.TrimPrefix(rest, "workspace:"), true
		}
		return "", false
	}
	for pass := 0; pass < 3; pass++ {
		for i, e := range entries {
			ws, ok := isWS(e)
			if (pass == 0 && ok && ws == ".") || (pass == 1 && ok && ws != ".") || (pass == 2 && !ok) {
				order = append(order, i)
			}
		}
	}
	for _, i := range order {
		e := &entries[i]
		p, _ := yarnPackage(e, berry)
		n := gnode{pkg: p}
		if ws, ok := isWS(*e); ok {
			n.importer, n.label = true, ws
			if p.Name == "" {
				n.pkg.Name, _, _ = splitNameAt(e.resolution)
			}
		}
		nodeOf[i] = g.add(n)
		for _, d := range e.descriptors {
			byDesc[d] = i
			byDesc[yarnNorm(d)] = i
		}
		byName[p.Name] = append(byName[p.Name], i)
	}
	resolve := func(name, rng string) int {
		d := name + "@" + rng
		if i, ok := byDesc[d]; ok {
			return i
		}
		if i, ok := byDesc[yarnNorm(d)]; ok {
			return i
		}
		if berry && !strings.Contains(rng, ":") {
			if i, ok := byDesc[name+"@npm:"+rng]; ok {
				return i
			}
		}
		if c := byName[name]; len(c) == 1 {
			return c[0]
		}
		return -1
	}
	for i, e := range entries {
		n := &g.nodes[nodeOf[i]]
		for _, d := range e.deps {
			if t := resolve(d[0], d[1]); t >= 0 {
				n.deps = append(n.deps, nodeOf[t])
				referenced[t] = true
			}
		}
	}
	if berry {
		return
	}
	// yarn v1 does not record the project's own dependencies.
	root := gnode{importer: true, label: "."}
	if req.manifest != nil {
		for _, d := range req.manifest.depSpecs() {
			if t := resolve(d[0], d[1]); t >= 0 {
				root.deps = append(root.deps, nodeOf[t])
			}
		}
	} else {
		g.heuristicRoots = true
		for i := range entries {
			if !referenced[i] {
				root.deps = append(root.deps, nodeOf[i])
			}
		}
	}
	g.add(root)
}
