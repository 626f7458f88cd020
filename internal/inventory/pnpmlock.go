package inventory

import (
	"bytes"
	"strconv"
	"strings"
)

// pnpmEntry is one key of packages: or snapshots: while it is being read.
type pnpmEntry struct {
	key     string
	off     int
	line    int
	name    string // name: field (git, file: and tarball entries)
	version string // version: field
	deps    [][2]string
}

// pnpmImporter is the root project or one workspace.
type pnpmImporter struct {
	label string
	deps  [][2]string // name, version reference
	// pending is the dependency whose specifier/version lines follow (v6+).
	pending string
}

type pnpmDoc struct {
	lockVer   float64
	haveVer   bool
	packages  []pnpmEntry
	snapshots []pnpmEntry
	importers []*pnpmImporter
}

// parsePnpmLock reads pnpm-lock.yaml 5.x (`/name/1.0.0_peer`), 6.x
// (`/name@1.0.0(peer@2.0.0)`) and 9.x (`name@1.0.0` under packages:, peer
// variants under snapshots:), with a line scanner for the YAML subset pnpm
// writes: block mappings indented by two spaces, quoted keys, flow maps on
// one line, and `---` between documents (pnpm 9 puts its own
// packageManagerDependencies in a document of their own).
func parsePnpmLock(data []byte, req *graphReq) ([]Package, error) {
	var (
		docs     []*pnpmDoc
		doc      = &pnpmDoc{}
		section  string
		entry    *pnpmEntry
		sub      string
		imp      *pnpmImporter
		group    string
		firstErr *ParseError
		lineNo   int
	)
	docs = append(docs, doc)
	setErr := func(line int, format string, args ...any) {
		if firstErr == nil {
			firstErr = perr(line, format, args...)
		}
	}
	closeEntry := func() {
		if entry == nil {
			return
		}
		switch section {
		case "packages":
			doc.packages = append(doc.packages, *entry)
		case "snapshots":
			doc.snapshots = append(doc.snapshots, *entry)
		}
		entry = nil
	}
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		line := data[off:]
		next := len(data)
		if end >= 0 {
			line = data[off : off+end]
			next = off + end + 1
		}
		lineOff := off
		off = next
		lineNo++
		line = bytes.TrimRight(line, "\r \t")
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		content := line[indent:]
		if len(content) == 0 || content[0] == '#' {
			continue
		}
		if indent == 0 && (bytes.Equal(content, []byte("---")) || bytes.Equal(content, []byte("..."))) {
			closeEntry()
			if doc.haveVer || len(doc.packages) > 0 || len(doc.importers) > 0 {
				doc = &pnpmDoc{}
				docs = append(docs, doc)
			}
			section, sub, imp, group = "", "", nil, ""
			continue
		}
		if content[0] == '-' && (len(content) == 1 || content[1] == ' ') {
			// Block sequence items (transitivePeerDependencies, cpu, os):
			// nothing inventory needs.
			continue
		}
		key, val, ok := yamlKV(content)
		if !ok {
			setErr(lineNo, "expected `key: value`, found %q", clip(content))
			continue
		}
		switch indent {
		case 0:
			closeEntry()
			section, sub, imp, group = key, "", nil, ""
			switch key {
			case "lockfileVersion":
				v, err := strconv.ParseFloat(val, 64)
				if err != nil {
					setErr(lineNo, "lockfileVersion %q is not a number", val)
				}
				doc.lockVer, doc.haveVer = v, true
			case "dependencies", "devDependencies", "optionalDependencies":
				// pnpm 5/6 single-project layout: the root importer's groups.
				if len(doc.importers) == 0 || doc.importers[0].label != "." {
					doc.importers = append([]*pnpmImporter{{label: "."}}, doc.importers...)
				}
				imp = doc.importers[0]
				group = key
			}
		case 2:
			switch section {
			case "packages", "snapshots":
				closeEntry()
				entry = &pnpmEntry{key: key, off: lineOff, line: lineNo}
				sub = ""
			case "importers":
				imp = &pnpmImporter{label: key}
				doc.importers = append(doc.importers, imp)
			case "dependencies", "devDependencies", "optionalDependencies":
				if val != "" {
					imp.deps = append(imp.deps, [2]string{key, val}) // v5: name: version
				} else {
					imp.pending = key // v6: specifier/version follow
				}
			}
		case 4:
			switch section {
			case "packages", "snapshots":
				if entry == nil {
					setErr(lineNo, "field outside any package entry")
					continue
				}
				sub = ""
				switch key {
				case "name":
					entry.name = val
				case "version":
					entry.version = val
				case "dependencies", "optionalDependencies":
					if val == "" {
						sub = key
					}
				}
			case "importers":
				group = key
				if imp != nil {
					imp.pending = ""
				}
			case "dependencies", "devDependencies", "optionalDependencies":
				if key == "version" && imp != nil && imp.pending != "" {
					imp.deps = append(imp.deps, [2]string{imp.pending, val})
				}
			}
		case 6:
			switch section {
			case "packages", "snapshots":
				if entry != nil && sub != "" && req != nil {
					entry.deps = append(entry.deps, [2]string{key, val})
				}
			case "importers":
				if imp == nil || !pnpmDepGroup(group) {
					continue
				}
				if val != "" {
					imp.deps = append(imp.deps, [2]string{key, val})
				} else {
					imp.pending = key
				}
			}
		case 8:
			if section == "importers" && imp != nil && imp.pending != "" && key == "version" && pnpmDepGroup(group) {
				imp.deps = append(imp.deps, [2]string{imp.pending, val})
			}
		}
	}
	closeEntry()

	var pkgs []Package
	for _, d := range docs {
		if !d.haveVer {
			if len(docs) == 1 || len(d.packages) > 0 {
				setErr(0, "no lockfileVersion: not a lockfile pnpm wrote (truncated or emptied?)")
			}
			continue
		}
		src := d.packages
		if len(src) == 0 {
			src = d.snapshots
		}
		for i := range src {
			p, ok, bad := pnpmPackage(&src[i], d.lockVer, d.packages)
			if bad {
				setErr(src[i].line, "invalid dependency path %q", src[i].key)
			}
			if ok {
				pkgs = append(pkgs, p)
			}
		}
		if req != nil {
			buildPnpmGraph(req.g, d)
		}
	}
	if firstErr != nil {
		return pkgs, firstErr
	}
	return pkgs, nil
}

func pnpmDepGroup(g string) bool {
	return g == "dependencies" || g == "devDependencies" || g == "optionalDependencies"
}

// yamlKV splits `key: value`, `'quoted key': value` and `key:`; the value
// loses its quotes. Keys may hold colons (`name@https://host/x.tgz:`): the
// key ends at the first ": " or at a colon that ends the line.
func yamlKV(s []byte) (key, val string, ok bool) {
	var k []byte
	switch {
	case len(s) > 0 && (s[0] == '\'' || s[0] == '"'):
		q := s[0]
		j := 1
		for ; j < len(s); j++ {
			if s[j] == q {
				if q == '\'' && j+1 < len(s) && s[j+1] == '\'' {
					j++
					continue
				}
				break
			}
		}
		if j >= len(s) {
			return "", "", false
		}
		k = s[1:j]
		if q == '\'' {
			k = bytes.ReplaceAll(k, []byte("''"), []byte("'"))
		}
		s = s[j+1:]
		if len(s) == 0 || s[0] != ':' {
			return "", "", false
		}
		s = s[1:]
	default:
		j := bytes.Index(s, []byte(": "))
		if j < 0 {
			if len(s) == 0 || s[len(s)-1] != ':' {
				return "", "", false
			}
			j = len(s) - 1
		}
		k = s[:j]
		s = s[j+1:]
	}
	v := bytes.TrimSpace(s)
	if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	return string(k), string(v), true
}

// pnpmPackage names one packages:/snapshots: entry. bad reports a key that
// cannot be a dependency path at all (no '/' and no '@').
func pnpmPackage(e *pnpmEntry, lockVer float64, packages []pnpmEntry) (p Package, ok, bad bool) {
	p.Line = e.line
	key := e.key
	if e.name != "" {
		p.Name = e.name
		p.Version, p.Source = splitVersion(e.version)
		if p.Version == "" && p.Source == "" {
			p.Source = key
		}
		return p, true, false
	}
	name, version, ok := pnpmSplitKey(key, lockVer)
	if !ok {
		return p, false, !strings.ContainsAny(key, "/@")
	}
	p.Name = name
	p.Version, p.Source = splitVersion(version)
	if p.Version == "" && e.version != "" {
		// pnpm 9 keys git and tarball packages by URL and states the
		// version in a field.
		p.Version, _ = splitVersion(e.version)
	}
	return p, true, false
}

// pnpmSplitKey derives name and version from a dependency path.
func pnpmSplitKey(key string, lockVer float64) (name, version string, ok bool) {
	k := strings.TrimPrefix(key, "/")
	if lockVer >= 6 || (lockVer == 0 && strings.Contains(strings.TrimPrefix(k, "@"), "@")) {
		n, rest, found := splitNameAt(k)
		if !found || n == "" || rest == "" {
			return "", "", false
		}
		if i := strings.IndexByte(rest, '('); i >= 0 {
			rest = rest[:i]
		}
		return n, rest, true
	}
	// pnpm 5: [host]/name/version[_peers] or [host]/@scope/name/version. The
	// version is the last segment, or the one where a peer suffix starts.
	segs := strings.Split(k, "/")
	for i := 1; i < len(segs); i++ {
		v, _, peers := strings.Cut(segs[i], "_")
		if !isExactVersion(v) || (i != len(segs)-1 && !peers) {
			continue
		}
		name = segs[i-1]
		if i >= 2 && strings.HasPrefix(segs[i-2], "@") {
			name = segs[i-2] + "/" + name
		}
		if name == "" || strings.HasPrefix(name, "@") && !strings.Contains(name, "/") {
			return "", "", false
		}
		return name, v, true
	}
	return "", "", false
}

// buildPnpmGraph links importers to packages. Nodes are the snapshots of
// pnpm 9 (one per peer variant) or the packages of older versions.
func buildPnpmGraph(g *graph, d *pnpmDoc) {
	nodesSrc := d.snapshots
	if len(nodesSrc) == 0 {
		nodesSrc = d.packages
	}
	byKey := make(map[string]int, len(nodesSrc))
	// Importers first, root first.
	imps := append([]*pnpmImporter(nil), d.importers...)
	for i, im := range imps {
		if im.label == "." && i > 0 {
			imps[0], imps[i] = imps[i], imps[0]
		}
	}
	impNode := make([]int, len(imps))
	for i, im := range imps {
		impNode[i] = g.add(gnode{importer: true, label: im.label})
	}
	pkgFields := map[string]*pnpmEntry{}
	for i := range d.packages {
		pkgFields[d.packages[i].key] = &d.packages[i]
	}
	nodeOf := make([]int, len(nodesSrc))
	for i := range nodesSrc {
		e := nodesSrc[i]
		// A pnpm 9 snapshot has its name/version fields on the packages:
		// entry of the same key without the peer suffix.
		if base := pnpmStripPeers(e.key); e.name == "" && e.version == "" {
			if pe, ok := pkgFields[base]; ok {
				e.name, e.version = pe.name, pe.version
			}
		}
		p, _, _ := pnpmPackage(&e, d.lockVer, d.packages)
		nodeOf[i] = g.add(gnode{pkg: p})
		byKey[e.key] = nodeOf[i]
	}
	resolve := func(name, ref string) int {
		if strings.HasPrefix(ref, "link:") {
			return -1
		}
		cands := []string{name + "@" + ref, "/" + name + "@" + ref, "/" + name + "/" + ref, ref, "/" + ref}
		for _, c := range cands {
			if n, ok := byKey[c]; ok {
				return n
			}
		}
		return -1
	}
	for i, im := range imps {
		for _, dep := range im.deps {
			if t := resolve(dep[0], dep[1]); t >= 0 {
				g.nodes[impNode[i]].deps = append(g.nodes[impNode[i]].deps, t)
			}
		}
	}
	for i, e := range nodesSrc {
		for _, dep := range e.deps {
			if t := resolve(dep[0], dep[1]); t >= 0 {
				g.nodes[nodeOf[i]].deps = append(g.nodes[nodeOf[i]].deps, t)
			}
		}
	}
}

func pnpmStripPeers(key string) string {
	if i := strings.IndexByte(key, '('); i > 0 {
		return key[:i]
	}
	return key
}
