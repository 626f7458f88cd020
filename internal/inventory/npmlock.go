package inventory

import (
	"path"
	"strconv"
	"strings"
)

// graphReq asks a parser for the dependency graph besides the packages. The
// manifest is the package.json beside the lockfile, for formats whose
// lockfile does not say which dependencies are direct (npm v1, yarn v1).
type graphReq struct {
	g        *graph
	manifest *manifest
}

// npmEntry is one package location in a package-lock, kept only when the
// graph is wanted.
type npmEntry struct {
	loc      string
	pkg      int // index into pkgs, -1 for the root
	deps     []string
	link     string // target location of a "link": true entry
	importer bool
}

// parseNpmLock reads package-lock.json / npm-shrinkwrap.json, lockfile
// versions 1 to 3. Version 2 files carry both sections; "packages" is
// authoritative and "dependencies" (the v1 mirror) is then skipped.
func parseNpmLock(data []byte, req *graphReq) ([]Package, error) {
	s := &jsonScanner{b: data}
	if !s.topObject() {
		return nil, s.err
	}
	var (
		pkgs       []Package
		v1         []Package
		entries    []npmEntry
		v1entries  []npmEntry
		lockVer    int
		haveVer    bool
		havePkgs   bool
		wantGraph  = req != nil
		first      = true
		v1Required map[string]bool
	)
	for s.more(&first, '}') {
		k := s.key()
		switch string(k) {
		case "lockfileVersion":
			lockVer = s.int()
			haveVer = true
		case "packages":
			havePkgs = true
			pkgs, entries = npmPackages(s, wantGraph)
		case "dependencies":
			if havePkgs {
				s.skip()
				continue
			}
			if wantGraph {
				v1Required = map[string]bool{}
			}
			v1, v1entries = npmV1Deps(s, "", nil, nil, wantGraph, v1Required)
		default:
			s.skip()
		}
	}
	s.end()
	if !havePkgs {
		pkgs, entries = v1, v1entries
	}
	if wantGraph && !s.failed() {
		buildNpmGraph(req, pkgs, entries, !havePkgs, v1Required)
	}
	if s.err != nil {
		return pkgs, s.err
	}
	if !haveVer {
		return pkgs, perr(1, "no lockfileVersion: not a lockfile npm wrote (truncated or emptied?)")
	}
	if lockVer < 1 || lockVer > 3 {
		// Still read: a future version most likely keeps "packages".
		return pkgs, perr(1, "lockfileVersion %d is not one npmir knows (1 to 3); results may be incomplete", lockVer)
	}
	return pkgs, nil
}

// npmPackages reads the v2/v3 "packages" object, keyed by install location.
func npmPackages(s *jsonScanner, wantGraph bool) ([]Package, []npmEntry) {
	if s.peek() != '{' {
		s.fail(`"packages" is not an object`)
		return nil, nil
	}
	s.i++
	var pkgs []Package
	var entries []npmEntry
	first := true
	for s.more(&first, '}') {
		s.peek()
		off := s.i
		loc := string(s.key())
		if s.peek() != '{' {
			s.fail("package entry " + loc + " is not an object")
			break
		}
		s.i++
		var name, version, resolved string
		var link bool
		var deps []string
		f := true
		for s.more(&f, '}') {
			k := s.key()
			switch string(k) {
			case "name":
				v, _ := s.strOrSkip()
				name = string(v)
			case "version":
				v, _ := s.strOrSkip()
				version = string(v)
			case "resolved":
				v, _ := s.strOrSkip()
				resolved = string(v)
			case "link":
				link = s.boolean()
			case "dependencies", "optionalDependencies", "peerDependencies":
				if wantGraph {
					s.stringMap(func(k, _ []byte) { deps = append(deps, string(k)) })
				} else {
					s.skip()
				}
			case "devDependencies":
				// Only importers install their devDependencies.
				if wantGraph && !strings.Contains(loc, "node_modules/") {
					s.stringMap(func(k, _ []byte) { deps = append(deps, string(k)) })
				} else {
					s.skip()
				}
			default:
				s.skip()
			}
		}
		if s.failed() {
			break
		}
		importer := !strings.HasPrefix(loc, "node_modules/") && !strings.Contains(loc, "/node_modules/")
		idx := -1
		switch {
		case link:
			// A symlink to a workspace or file: folder; the folder has its
			// own entry, which is where the package is reported.
		case loc == "":
			// The root project itself is not a dependency.
		default:
			installed := npmNameFromLoc(loc)
			if name == "" {
				name = installed
			}
			if name == "" {
				s.i = off
				s.fail("package entry " + strconv.Quote(loc) + " names no package")
				return pkgs, entries
			}
			p := Package{Name: name, off: off}
			p.Version, p.Source = splitVersion(version)
			if p.Version == "" && p.Source == "" {
				p.Source = resolved
			}
			if name != installed && installed != "" && !importer {
				p.Alias = installed
			}
			pkgs = append(pkgs, p)
			idx = len(pkgs) - 1
		}
		if wantGraph {
			e := npmEntry{loc: loc, pkg: idx, deps: deps, importer: importer && !link}
			if link {
				e.link = resolved
			}
			entries = append(entries, e)
		}
	}
	return pkgs, entries
}

// npmNameFromLoc is the installed name of a location: what follows the last
// node_modules/ ("@scope/name" included), or the folder name for a
// workspace or file: dependency folder.
func npmNameFromLoc(loc string) string {
	if i := strings.LastIndex(loc, "node_modules/"); i >= 0 {
		return loc[i+len("node_modules/"):]
	}
	return path.Base(loc)
}

// npmV1Deps reads a v1 "dependencies" object recursively; nesting is the
// node_modules tree, so the location of a nested entry is its parent's
// location plus node_modules/name.
func npmV1Deps(s *jsonScanner, parent string, pkgs []Package, entries []npmEntry, wantGraph bool, required map[string]bool) ([]Package, []npmEntry) {
	if s.peek() != '{' {
		s.fail(`"dependencies" is not an object`)
		return pkgs, entries
	}
	s.i++
	first := true
	for s.more(&first, '}') {
		s.peek()
		off := s.i
		name := string(s.key())
		if s.peek() != '{' {
			s.fail("dependency " + name + " is not an object")
			break
		}
		s.i++
		if name == "" {
			s.fail("dependency with an empty name")
			break
		}
		loc := "node_modules/" + name
		if parent != "" {
			loc = parent + "/node_modules/" + name
		}
		p := Package{Name: name, off: off}
		idx := len(pkgs)
		pkgs = append(pkgs, p)
		var deps []string
		f := true
		for s.more(&f, '}') {
			k := s.key()
			switch string(k) {
			case "version":
				v, _ := s.strOrSkip()
				ver := string(v)
				if rest, ok := strings.CutPrefix(ver, "npm:"); ok {
					if real, rv, ok := splitNameAt(rest); ok {
						pkgs[idx].Alias = name
						pkgs[idx].Name = real
						ver = rv
					}
				}
				pkgs[idx].Version, pkgs[idx].Source = splitVersion(ver)
			case "requires":
				if wantGraph {
					s.stringMap(func(k, _ []byte) {
						deps = append(deps, string(k))
						required[string(k)] = true
					})
				} else {
					s.skip()
				}
			case "dependencies":
				pkgs, entries = npmV1Deps(s, loc, pkgs, entries, wantGraph, required)
			default:
				s.skip()
			}
		}
		if wantGraph {
			entries = append(entries, npmEntry{loc: loc, pkg: idx, deps: deps})
		}
		if s.failed() {
			break
		}
	}
	return pkgs, entries
}

// buildNpmGraph resolves each entry's dependency names the way Node does:
// the nearest node_modules folder up the tree that holds the name.
func buildNpmGraph(req *graphReq, pkgs []Package, entries []npmEntry, v1 bool, required map[string]bool) {
	g := req.g
	byLoc := make(map[string]int, len(entries))
	nodeOf := make([]int, len(entries))
	// Importers first, root first, so that ties in the walk go to the root.
	order := make([]int, 0, len(entries))
	for i, e := range entries {
		if e.importer && e.loc == "" {
			order = append(order, i)
		}
	}
	for i, e := range entries {
		if e.importer && e.loc != "" {
			order = append(order, i)
		}
	}
	for i, e := range entries {
		if !e.importer {
			order = append(order, i)
		}
	}
	for _, i := range order {
		e := entries[i]
		n := gnode{importer: e.importer, nested: strings.Contains(e.loc, "/node_modules/")}
		if e.pkg >= 0 {
			n.pkg = pkgs[e.pkg]
		}
		if e.importer {
			n.label = e.loc
			if n.label == "" {
				n.label = "."
			}
		}
		nodeOf[i] = g.add(n)
		byLoc[e.loc] = i
	}
	resolve := func(from, name string) int {
		dir := from
		for {
			cand := "node_modules/" + name
			if dir != "" {
				cand = dir + "/node_modules/" + name
			}
			if i, ok := byLoc[cand]; ok {
				for hops := 0; entries[i].link != "" && hops < 4; hops++ {
					j, ok := byLoc[entries[i].link]
					if !ok {
						return -1
					}
					i = j
				}
				return nodeOf[i]
			}
			if dir == "" {
				return -1
			}
			dir = npmParent(dir)
		}
	}
	for i, e := range entries {
		if e.link != "" {
			continue
		}
		n := &g.nodes[nodeOf[i]]
		for _, d := range e.deps {
			if t := resolve(e.loc, d); t >= 0 {
				n.deps = append(n.deps, t)
			}
		}
	}
	if !v1 {
		return
	}
	// A v1 lockfile has no root entry: take the direct dependencies from the
	// package.json beside it, or failing that every top-level entry nothing
	// else requires (those can only be there because the project asked).
	root := gnode{importer: true, label: "."}
	if req.manifest != nil {
		for _, d := range req.manifest.depNames() {
			if t := resolve("", d); t >= 0 {
				root.deps = append(root.deps, t)
			}
		}
	} else {
		g.heuristicRoots = true
		for i, e := range entries {
			if !strings.Contains(e.loc[len("node_modules/"):], "/node_modules/") && !required[npmNameFromLoc(e.loc)] {
				root.deps = append(root.deps, nodeOf[i])
			}
		}
	}
	g.add(root)
}

// npmParent is the folder whose node_modules is searched next: the one
// holding the node_modules folder dir sits in, or the parent folder of a
// workspace folder.
func npmParent(dir string) string {
	i := strings.LastIndex(dir, "node_modules/")
	switch {
	case i == 0:
		return ""
	case i > 0 && dir[i-1] == '/':
		return dir[:i-1]
	}
	if j := strings.LastIndexByte(dir, '/'); j >= 0 {
		return dir[:j]
	}
	return ""
}
