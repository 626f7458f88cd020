package inventory

// graph is a lockfile's dependency graph, built only for files where a
// target matched (building it costs a second, slower parse with edges).
// Importers (the root project and its workspaces) are the sources; every
// other node is an installed package.
type graph struct {
	nodes []gnode
	// heuristicRoots is set when the format does not say which packages are
	// direct and the builder guessed (entries nothing else requires): those
	// are certainly direct, but a package further down may be direct too.
	heuristicRoots bool
}

type gnode struct {
	pkg      Package
	importer bool
	label    string // workspace label for importers ("." is the root)
	// nested marks a package installed inside another's node_modules: it is
	// there for that package only, so it is never a direct dependency.
	nested bool
	deps   []int
}

func (g *graph) add(n gnode) int {
	g.nodes = append(g.nodes, n)
	return len(g.nodes) - 1
}

// reach is what a breadth-first walk from the importers learns about one node.
type reach struct {
	dist   int // edges from the nearest importer; -1 when unreachable
	parent int // previous node on a shortest path; -1 at an importer
	from   int // the importer that path starts at
}

// walk runs one breadth-first search from all importers at once, so that
// every package gets a shortest path from some top-level dependency. Ties go
// to the importer listed first, which every builder makes the root.
func (g *graph) walk() []reach {
	r := make([]reach, len(g.nodes))
	for i := range r {
		r[i] = reach{dist: -1, parent: -1, from: -1}
	}
	var queue []int
	for i, n := range g.nodes {
		if n.importer {
			r[i] = reach{dist: 0, parent: -1, from: i}
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, d := range g.nodes[cur].deps {
			if d < 0 || d >= len(g.nodes) || r[d].dist >= 0 {
				continue
			}
			r[d] = reach{dist: r[cur].dist + 1, parent: cur, from: r[cur].from}
			queue = append(queue, d)
		}
	}
	return r
}

// placement is where one package sits in the graph, for a finding.
type placement struct {
	relation  Relation
	workspace string
	path      []string
}

// place finds, for every name@version the match function accepts, the
// shortest placement over all nodes holding it.
func (g *graph) place(match func(p Package) bool) map[string]placement {
	if g == nil || len(g.nodes) == 0 {
		return nil
	}
	hasImporter := false
	for _, n := range g.nodes {
		if n.importer {
			hasImporter = true
			break
		}
	}
	if !hasImporter {
		return nil
	}
	r := g.walk()
	best := map[string]int{}
	out := map[string]placement{}
	for i, n := range g.nodes {
		if n.importer || !match(n.pkg) {
			continue
		}
		key := n.pkg.Name + "@" + n.pkg.Version
		if r[i].dist < 0 {
			if _, ok := best[key]; !ok {
				best[key] = 1 << 30
				out[key] = placement{relation: Unknown}
			}
			continue
		}
		if b, ok := best[key]; ok && b <= r[i].dist {
			continue
		}
		best[key] = r[i].dist
		var path []string
		for at := i; at >= 0 && !g.nodes[at].importer; at = r[at].parent {
			p := g.nodes[at].pkg
			path = append(path, p.Name+"@"+pkgVersionLabel(p))
		}
		for a, b := 0, len(path)-1; a < b; a, b = a+1, b-1 {
			path[a], path[b] = path[b], path[a]
		}
		rel := Transitive
		switch {
		case r[i].dist == 1:
			rel = Direct
		case g.heuristicRoots && !n.nested:
			rel = Unknown
		}
		out[key] = placement{relation: rel, workspace: g.nodes[r[i].from].label, path: path}
	}
	return out
}

func pkgVersionLabel(p Package) string {
	if p.Version != "" {
		return p.Version
	}
	return p.Source
}
