package inventory

import (
	"strings"
)

type bunEntry struct {
	key  string
	pkg  int
	deps []string
}

type bunWorkspace struct {
	path string
	name string
	deps []string
}

// parseBunLock reads bun's text lockfile (bun.lock): JSON with trailing
// commas. "packages" maps an install path ("chalk/supports-color") to a
// tuple whose first element is "name@version" under the real name, then,
// depending on the source, the registry URL, an info object with the
// package's dependencies, and the integrity.
func parseBunLock(data []byte, req *graphReq) ([]Package, error) {
	s := &jsonScanner{b: data, lenient: true}
	if !s.topObject() {
		return nil, s.err
	}
	var (
		pkgs     []Package
		entries  []bunEntry
		wss      []bunWorkspace
		haveVer  bool
		first    = true
		firstBad *ParseError
	)
	wantGraph := req != nil
	for s.more(&first, '}') {
		switch string(s.key()) {
		case "lockfileVersion":
			s.int()
			haveVer = true
		case "workspaces":
			if wantGraph {
				wss = bunWorkspaces(s)
			} else {
				s.skip()
			}
		case "packages":
			if s.peek() != '{' {
				s.fail(`"packages" is not an object`)
				break
			}
			s.i++
			f := true
			for s.more(&f, '}') {
				s.peek()
				off := s.i
				key := string(s.key())
				p, deps, bad := bunTuple(s, wantGraph)
				if s.failed() {
					break
				}
				if bad != "" {
					if firstBad == nil {
						firstBad = perr(lineAt(data, off), "package %q: %s", key, bad)
					}
					continue
				}
				p.off = off
				installed := bunLastName(key)
				if installed != p.Name && installed != "" {
					p.Alias = installed
				}
				pkgs = append(pkgs, p)
				if wantGraph {
					entries = append(entries, bunEntry{key: key, pkg: len(pkgs) - 1, deps: deps})
				}
			}
		default:
			s.skip()
		}
	}
	s.end()
	if s.err != nil {
		return pkgs, s.err
	}
	if !haveVer {
		return pkgs, perr(1, "no lockfileVersion: not a lockfile bun wrote (truncated or emptied?)")
	}
	if wantGraph {
		buildBunGraph(req.g, pkgs, entries, wss)
	}
	if firstBad != nil {
		return pkgs, firstBad
	}
	return pkgs, nil
}

// bunTuple reads one package tuple. bad explains a tuple that does not start
// with the "name@version" string; the scanner stays usable after it.
func bunTuple(s *jsonScanner, wantGraph bool) (p Package, deps []string, bad string) {
	if !s.enter('[') {
		return p, nil, "not a tuple"
	}
	first := true
	idx := 0
	for s.more(&first, ']') {
		switch {
		case idx == 0:
			v, ok := s.strOrSkip()
			if !ok {
				bad = "first element of package tuple is not a string"
				break
			}
			name, rest, found := splitNameAt(string(v))
			if !found || name == "" {
				bad = "first element of package tuple is not name@version"
				break
			}
			p.Name = name
			p.Version, p.Source = splitVersion(rest)
		case wantGraph && s.peek() == '{' && deps == nil:
			s.i++
			f := true
			deps = []string{}
			for s.more(&f, '}') {
				switch string(s.key()) {
				case "dependencies", "optionalDependencies", "peerDependencies":
					s.stringMap(func(k, _ []byte) { deps = append(deps, string(k)) })
				default:
					s.skip()
				}
			}
		default:
			s.skip()
		}
		idx++
	}
	if idx == 0 && bad == "" {
		bad = "empty package tuple"
	}
	return p, deps, bad
}

func bunWorkspaces(s *jsonScanner) []bunWorkspace {
	var out []bunWorkspace
	if !s.enter('{') {
		return nil
	}
	first := true
	for s.more(&first, '}') {
		w := bunWorkspace{path: string(s.key())}
		if !s.enter('{') {
			continue
		}
		f := true
		for s.more(&f, '}') {
			switch string(s.key()) {
			case "name":
				v, _ := s.strOrSkip()
				w.name = string(v)
			case "dependencies", "devDependencies", "optionalDependencies", "peerDependencies":
				s.stringMap(func(k, _ []byte) { w.deps = append(w.deps, string(k)) })
			default:
				s.skip()
			}
		}
		out = append(out, w)
	}
	return out
}

// bunNames splits an install path into package names, keeping scopes whole:
// "@a/b/c" is ["@a/b", "c"].
func bunNames(key string) []string {
	segs := strings.Split(key, "/")
	var out []string
	for i := 0; i < len(segs); i++ {
		if strings.HasPrefix(segs[i], "@") && i+1 < len(segs) {
			out = append(out, segs[i]+"/"+segs[i+1])
			i++
			continue
		}
		out = append(out, segs[i])
	}
	return out
}

func bunLastName(key string) string {
	n := bunNames(key)
	if len(n) == 0 {
		return ""
	}
	return n[len(n)-1]
}

// buildBunGraph resolves dependencies like Node over bun's install paths: a
// package at "a/b" finds dependency "c" at "a/b/c", then "a/c", then "c".
func buildBunGraph(g *graph, pkgs []Package, entries []bunEntry, wss []bunWorkspace) {
	byKey := make(map[string]int, len(entries))
	// Root workspace first.
	for i, w := range wss {
		if w.path == "" && i > 0 {
			wss[0], wss[i] = wss[i], wss[0]
		}
	}
	wsNode := make([]int, len(wss))
	for i, w := range wss {
		label := w.path
		if label == "" {
			label = "."
		}
		wsNode[i] = g.add(gnode{importer: true, label: label})
	}
	nodeOf := make([]int, len(entries))
	for i, e := range entries {
		nodeOf[i] = g.add(gnode{pkg: pkgs[e.pkg]})
		byKey[e.key] = nodeOf[i]
	}
	resolve := func(prefix []string, name string) int {
		for n := len(prefix); n >= 0; n-- {
			k := name
			if n > 0 {
				k = strings.Join(prefix[:n], "/") + "/" + name
			}
			if t, ok := byKey[k]; ok {
				return t
			}
		}
		return -1
	}
	for i, w := range wss {
		var prefix []string
		if w.path != "" && w.name != "" {
			prefix = []string{w.name}
		}
		for _, d := range w.deps {
			if t := resolve(prefix, d); t >= 0 {
				g.nodes[wsNode[i]].deps = append(g.nodes[wsNode[i]].deps, t)
			}
		}
	}
	for i, e := range entries {
		prefix := bunNames(e.key)
		for _, d := range e.deps {
			if t := resolve(prefix, d); t >= 0 && t != nodeOf[i] {
				g.nodes[nodeOf[i]].deps = append(g.nodes[nodeOf[i]].deps, t)
			}
		}
	}
}
