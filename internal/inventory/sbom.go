package inventory

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// SBOMs go through the same in-place JSON scanner as the lockfiles: an
// organisation-wide sweep meets one per repository, and encoding/json spends
// most of its time on fields (licences, hashes, properties) nobody reads here.

type cdxRef struct {
	ref string
	pkg int // index into pkgs, -1 for a component that is not an npm package
}

// parseCycloneDX lists every npm package URL in a CycloneDX JSON BOM, nested
// components included. The BOM's own subject (metadata.component) is the
// project, not a dependency; with a dependency graph it is the importer.
func parseCycloneDX(data []byte, req *graphReq) ([]Package, error) {
	s := &jsonScanner{b: data}
	if !s.topObject() {
		return nil, s.err
	}
	var (
		pkgs    []Package
		refs    = map[string]int{}
		rootRef string
		format  string
		deps    [][]string // ref, dependsOn...
		first   = true
	)
	for s.more(&first, '}') {
		switch string(s.key()) {
		case "bomFormat":
			v, _ := s.strOrSkip()
			format = string(v)
		case "metadata":
			if !s.enter('{') {
				continue
			}
			f := true
			for s.more(&f, '}') {
				if string(s.key()) == "component" {
					rootRef = cdxRootRef(s)
				} else {
					s.skip()
				}
			}
		case "components":
			pkgs = cdxComponents(s, pkgs, refs)
		case "dependencies":
			if req == nil {
				s.skip()
				continue
			}
			deps = cdxDependencies(s)
		default:
			s.skip()
		}
	}
	s.end()
	if s.err != nil {
		return pkgs, s.err
	}
	if !strings.EqualFold(format, "CycloneDX") {
		return pkgs, perr(1, "not a CycloneDX BOM (bomFormat %q)", format)
	}
	if req == nil || rootRef == "" || len(deps) == 0 {
		return pkgs, nil
	}
	g := req.g
	root := g.add(gnode{importer: true, label: "."})
	nodeOf := make([]int, len(pkgs))
	for i, p := range pkgs {
		nodeOf[i] = g.add(gnode{pkg: p})
	}
	for _, d := range deps {
		from := -1
		if d[0] == rootRef {
			from = root
		} else if i, ok := refs[d[0]]; ok {
			from = nodeOf[i]
		}
		if from < 0 {
			continue
		}
		for _, to := range d[1:] {
			if i, ok := refs[to]; ok {
				g.nodes[from].deps = append(g.nodes[from].deps, nodeOf[i])
			}
		}
	}
	return pkgs, nil
}

func cdxRootRef(s *jsonScanner) string {
	if !s.enter('{') {
		return ""
	}
	ref := ""
	f := true
	for s.more(&f, '}') {
		if string(s.key()) == "bom-ref" {
			v, _ := s.strOrSkip()
			ref = string(v)
		} else {
			s.skip()
		}
	}
	return ref
}

// cdxComponents reads a components array, recursing into nested ones.
func cdxComponents(s *jsonScanner, pkgs []Package, refs map[string]int) []Package {
	if !s.enter('[') {
		return pkgs
	}
	first := true
	for s.more(&first, ']') {
		if s.peek() != '{' {
			s.skip()
			continue
		}
		off := s.i
		s.i++
		var purl, ref []byte
		f := true
		for s.more(&f, '}') {
			switch string(s.key()) {
			case "purl":
				purl, _ = s.strOrSkip()
			case "bom-ref":
				ref, _ = s.strOrSkip()
			case "components":
				pkgs = cdxComponents(s, pkgs, refs)
			default:
				s.skip()
			}
		}
		if p, ok := purlPackage(string(purl)); ok {
			p.off = off
			pkgs = append(pkgs, p)
			if len(ref) > 0 {
				refs[string(ref)] = len(pkgs) - 1
			}
		}
	}
	return pkgs
}

func cdxDependencies(s *jsonScanner) [][]string {
	var out [][]string
	if !s.enter('[') {
		return nil
	}
	first := true
	for s.more(&first, ']') {
		if !s.enter('{') {
			continue
		}
		d := []string{""}
		f := true
		for s.more(&f, '}') {
			switch string(s.key()) {
			case "ref":
				v, _ := s.strOrSkip()
				d[0] = string(v)
			case "dependsOn":
				if !s.enter('[') {
					continue
				}
				af := true
				for s.more(&af, ']') {
					if v, ok := s.strOrSkip(); ok {
						d = append(d, string(v))
					}
				}
			default:
				s.skip()
			}
		}
		out = append(out, d)
	}
	return out
}

// purlPackage reads pkg:npm/[%40scope/]name@version[?qualifiers][#subpath].
func purlPackage(purl string) (Package, bool) {
	rest, ok := strings.CutPrefix(purl, "pkg:npm/")
	if !ok {
		return Package{}, false
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at <= 0 {
		return Package{}, false
	}
	name, err1 := url.PathUnescape(rest[:at])
	version, err2 := url.PathUnescape(rest[at+1:])
	if err1 != nil || err2 != nil || name == "" || version == "" {
		return Package{}, false
	}
	p := Package{Name: name}
	p.Version, p.Source = splitVersion(version)
	return p, true
}

// parseSPDX lists the npm packages of an SPDX 2.x JSON document, bare or
// wrapped as GitHub's dependency-graph export ({"sbom": {...}}). A package
// is npm when it has a pkg:npm purl, or, lacking one, when its name carries
// GitHub's "npm:" prefix. GitHub's export links every package straight to
// the repository, so SPDX findings say nothing about direct or transitive.
func parseSPDX(data []byte) ([]Package, error) {
	s := &jsonScanner{b: data}
	if !s.topObject() {
		return nil, s.err
	}
	var pkgs []Package
	version := ""
	spdxBody(s, &pkgs, &version, true)
	s.end()
	if s.err != nil {
		return pkgs, s.err
	}
	if !strings.HasPrefix(version, "SPDX-") {
		return pkgs, perr(1, "not an SPDX document (spdxVersion %q)", version)
	}
	return pkgs, nil
}

// spdxBody reads the members of a document object (s is just inside it).
func spdxBody(s *jsonScanner, pkgs *[]Package, version *string, top bool) {
	first := true
	for s.more(&first, '}') {
		switch string(s.key()) {
		case "sbom":
			if top && s.peek() == '{' {
				s.i++
				spdxBody(s, pkgs, version, false)
			} else {
				s.skip()
			}
		case "spdxVersion":
			v, _ := s.strOrSkip()
			*version = string(v)
		case "packages":
			spdxPackages(s, pkgs)
		default:
			s.skip()
		}
	}
}

func spdxPackages(s *jsonScanner, pkgs *[]Package) {
	if !s.enter('[') {
		return
	}
	first := true
	for s.more(&first, ']') {
		if s.peek() != '{' {
			s.skip()
			continue
		}
		off := s.i
		s.i++
		var name, versionInfo string
		var purls []string
		f := true
		for s.more(&f, '}') {
			switch string(s.key()) {
			case "name":
				v, _ := s.strOrSkip()
				name = string(v)
			case "versionInfo":
				v, _ := s.strOrSkip()
				versionInfo = string(v)
			case "externalRefs":
				if !s.enter('[') {
					continue
				}
				af := true
				for s.more(&af, ']') {
					if !s.enter('{') {
						continue
					}
					var typ, loc string
					rf := true
					for s.more(&rf, '}') {
						switch string(s.key()) {
						case "referenceType":
							v, _ := s.strOrSkip()
							typ = string(v)
						case "referenceLocator":
							v, _ := s.strOrSkip()
							loc = string(v)
						default:
							s.skip()
						}
					}
					if strings.EqualFold(typ, "purl") {
						purls = append(purls, loc)
					}
				}
			default:
				s.skip()
			}
		}
		found := false
		for _, u := range purls {
			if p, ok := purlPackage(u); ok {
				p.off = off
				*pkgs = append(*pkgs, p)
				found = true
				break
			}
		}
		if found {
			continue
		}
		if n, ok := strings.CutPrefix(name, "npm:"); ok && n != "" && versionInfo != "" {
			p := Package{Name: n, off: off}
			p.Version, p.Source = splitVersion(versionInfo)
			*pkgs = append(*pkgs, p)
		}
	}
}

// jsonErr turns an encoding/json error into a ParseError with the line.
func jsonErr(data []byte, err error) *ParseError {
	line := 0
	switch e := err.(type) {
	case *json.SyntaxError:
		line = lineAt(data, int(e.Offset))
	case *json.UnmarshalTypeError:
		line = lineAt(data, int(e.Offset))
	}
	msg := err.Error()
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		msg = "the file holds JSON null, not an object"
	}
	return perr(line, "%s", msg)
}
