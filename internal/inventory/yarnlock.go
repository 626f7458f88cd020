package inventory

import (
	"bytes"
	"strings"
)

// yarnEntry is one lockfile entry while it is being read. It holds
// sub-slices of the file: most entries never become strings beyond the
// package's name and version.
type yarnEntry struct {
	key        []byte // the descriptors, quotes included, without the trailing ':'
	line       int
	version    []byte
	resolution []byte // berry only
	deps       [][2]string
}

// parseYarnLock reads yarn.lock, both the v1 format (`version "1.2.3"`) and
// berry's YAML subset (`version: 1.2.3`, `resolution: "name@npm:1.2.3"`),
// line by line. Berry's resolution gives the real name of aliased and
// patch: entries; v1 aliases are resolved from the npm: descriptor.
func parseYarnLock(data []byte, req *graphReq) ([]Package, error) {
	var (
		pkgs     []Package
		entries  []yarnEntry
		cur      yarnEntry
		inEntry  bool
		berry    bool
		metadata bool
		sub      bool // inside the entry's dependencies/optionalDependencies block
		firstErr *ParseError
		lineNo   int
	)
	wantGraph := req != nil
	finish := func() {
		if !inEntry {
			return
		}
		if p, ok := yarnPackage(&cur); ok {
			pkgs = append(pkgs, p)
		}
		if wantGraph {
			entries = append(entries, cur)
		}
		inEntry = false
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
		off = next
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		if indent == len(line) {
			continue
		}
		if indent == 0 {
			finish()
			metadata = false
			sub = false
			if line[len(line)-1] != ':' {
				if firstErr == nil {
					firstErr = perr(lineNo, "expected an entry such as `name@range:`, found %q", clip(line))
				}
				continue
			}
			key := line[:len(line)-1]
			if string(key) == "__metadata" {
				metadata, berry = true, true
				continue
			}
			cur = yarnEntry{key: key, line: lineNo}
			inEntry = true
			continue
		}
		if metadata {
			continue
		}
		if !inEntry {
			if firstErr == nil {
				firstErr = perr(lineNo, "indented line outside any entry")
			}
			continue
		}
		if line[indent] == '#' {
			continue
		}
		k, v := yarnField(line[indent:])
		if indent <= 2 {
			sub = false
			switch string(k) {
			case "version":
				cur.version = v
			case "resolution":
				cur.resolution = v
			case "dependencies", "optionalDependencies":
				sub = len(v) == 0
			}
			continue
		}
		if wantGraph && sub && len(k) > 0 {
			cur.deps = append(cur.deps, [2]string{string(k), string(v)})
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
func yarnField(s []byte) (key, value []byte) {
	if len(s) > 0 && s[0] == '"' {
		j := bytes.IndexByte(s[1:], '"')
		if j < 0 {
			return s, nil
		}
		key = s[1 : 1+j]
		s = s[2+j:]
	} else {
		j := bytes.IndexAny(s, ": ")
		if j < 0 {
			return s, nil
		}
		key = s[:j]
		s = s[j:]
	}
	if len(s) > 0 && s[0] == ':' {
		s = s[1:]
	}
	s = bytes.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return key, s
}

// nextDescriptor returns the first descriptor of an entry key such as
// `"a@^1.0.0", a@~1.1.0` or berry's `"a@npm:^1.0.0, a@npm:~1.1.0"`, and the
// rest of the key. Descriptors never hold commas or quotes.
func nextDescriptor(b []byte) (d, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '"' || b[i] == ',') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ',' {
		j++
	}
	return bytes.TrimRight(b[i:j], ` "`), b[j:]
}

func splitDescriptors(key []byte) []string {
	var out []string
	for d, rest := nextDescriptor(key); len(d) > 0; d, rest = nextDescriptor(rest) {
		out = append(out, string(d))
	}
	return out
}

// splitNameAtBytes is splitNameAt on bytes.
func splitNameAtBytes(s []byte) (name, rest []byte, ok bool) {
	from := 0
	if len(s) > 0 && s[0] == '@' {
		from = 1
	}
	i := bytes.IndexByte(s[from:], '@')
	if i < 0 {
		return s, nil, false
	}
	return s[:from+i], s[from+i+1:], true
}

// yarnPackage turns an entry into a package. The root workspace of a berry
// project is the project itself, not a dependency, and is left out.
func yarnPackage(e *yarnEntry) (Package, bool) {
	first, rest := nextDescriptor(e.key)
	if len(first) == 0 {
		return Package{}, false
	}
	local, rng, _ := splitNameAtBytes(first)
	var name string
	if len(e.resolution) > 0 {
		if rn, rrest, ok := splitNameAtBytes(e.resolution); ok {
			if string(rrest) == "workspace:." {
				return Package{}, false
			}
			name = string(rn)
		}
	} else {
		// v1: "alias@npm:real@^1.0.0" names the real package; an entry may
		// mix aliased and plain descriptors of the same package.
		for d := first; len(d) > 0; d, rest = nextDescriptor(rest) {
			dn, dr, _ := splitNameAtBytes(d)
			if real, ok := npmAliasTarget(dr); ok {
				if name == "" {
					name = real
				}
				continue
			}
			name = string(dn)
			break
		}
	}
	if name == "" {
		name = string(local)
	}
	p := Package{Name: name, Line: e.line}
	if string(local) != name {
		p.Alias = string(local)
	}
	p.Version, p.Source = splitVersion(string(e.version))
	if len(e.version) == 0 {
		p.Source = string(rng)
	}
	if p.Version == "" && p.Source == "" {
		p.Source = string(e.resolution)
	}
	return p, true
}

// npmAliasTarget returns the real name of an "npm:real@range" specifier.
func npmAliasTarget(spec []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(spec, []byte("npm:"))
	if !ok {
		return "", false
	}
	real, _, ok := splitNameAtBytes(rest)
	if !ok || len(real) == 0 {
		return "", false
	}
	return string(real), true
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
		_, rest, ok := splitNameAt(string(e.resolution))
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
		p, _ := yarnPackage(e)
		n := gnode{pkg: p}
		if ws, ok := isWS(*e); ok {
			n.importer, n.label = true, ws
			if p.Name == "" {
				n.pkg.Name, _, _ = splitNameAt(string(e.resolution))
			}
		}
		nodeOf[i] = g.add(n)
		for _, d := range splitDescriptors(e.key) {
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
