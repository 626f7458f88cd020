package inventory

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// SBOMs are read with encoding/json: they are not the hot path (one per
// repository at most, usually produced by a pipeline), and their schemas are
// wide enough that a hand-written scanner would buy little.

type cdxComponent struct {
	BOMRef     string         `json:"bom-ref"`
	Name       string         `json:"name"`
	Version    string         `json:"version"`
	Purl       string         `json:"purl"`
	Components []cdxComponent `json:"components"`
}

type cdxBOM struct {
	BOMFormat string `json:"bomFormat"`
	Metadata  struct {
		Component *cdxComponent `json:"component"`
	} `json:"metadata"`
	Components   []cdxComponent `json:"components"`
	Dependencies []struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	} `json:"dependencies"`
}

// parseCycloneDX lists every npm package URL in a CycloneDX JSON BOM, nested
// components included. The BOM's own subject (metadata.component) is the
// project, not a dependency; with a dependency graph it is the importer.
func parseCycloneDX(data []byte, req *graphReq) ([]Package, error) {
	var bom cdxBOM
	if err := json.Unmarshal(data, &bom); err != nil {
		return nil, jsonErr(data, err)
	}
	if !strings.EqualFold(bom.BOMFormat, "CycloneDX") {
		return nil, perr(1, "not a CycloneDX BOM (bomFormat %q)", bom.BOMFormat)
	}
	var pkgs []Package
	refs := map[string]int{}
	var walk func(cs []cdxComponent)
	walk = func(cs []cdxComponent) {
		for _, c := range cs {
			if p, ok := purlPackage(c.Purl); ok {
				pkgs = append(pkgs, p)
				if c.BOMRef != "" {
					refs[c.BOMRef] = len(pkgs) - 1
				}
			}
			walk(c.Components)
		}
	}
	walk(bom.Components)
	if req == nil || bom.Metadata.Component == nil || len(bom.Dependencies) == 0 {
		return pkgs, nil
	}
	g := req.g
	root := g.add(gnode{importer: true, label: "."})
	nodeOf := make([]int, len(pkgs))
	for i, p := range pkgs {
		nodeOf[i] = g.add(gnode{pkg: p})
	}
	for _, d := range bom.Dependencies {
		from := -1
		if d.Ref == bom.Metadata.Component.BOMRef {
			from = root
		} else if i, ok := refs[d.Ref]; ok {
			from = nodeOf[i]
		}
		if from < 0 {
			continue
		}
		for _, to := range d.DependsOn {
			if i, ok := refs[to]; ok {
				g.nodes[from].deps = append(g.nodes[from].deps, nodeOf[i])
			}
		}
	}
	return pkgs, nil
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

type spdxDoc struct {
	SPDXVersion string `json:"spdxVersion"`
	Packages    []struct {
		SPDXID       string `json:"SPDXID"`
		Name         string `json:"name"`
		VersionInfo  string `json:"versionInfo"`
		ExternalRefs []struct {
			ReferenceType    string `json:"referenceType"`
			ReferenceLocator string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
}

// parseSPDX lists the npm packages of an SPDX 2.x JSON document, bare or
// wrapped as GitHub's dependency-graph export ({"sbom": {...}}). A package
// is npm when it has a pkg:npm purl, or, lacking one, when its name carries
// GitHub's "npm:" prefix. GitHub's export links every package straight to
// the repository, so SPDX findings say nothing about direct or transitive.
func parseSPDX(data []byte) ([]Package, error) {
	var wrapper struct {
		SBOM *json.RawMessage `json:"sbom"`
	}
	body := data
	if err := json.Unmarshal(data, &wrapper); err != nil {
		return nil, jsonErr(data, err)
	}
	if wrapper.SBOM != nil {
		body = *wrapper.SBOM
	}
	var doc spdxDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, jsonErr(body, err)
	}
	if !strings.HasPrefix(doc.SPDXVersion, "SPDX-") {
		return nil, perr(1, "not an SPDX document (spdxVersion %q)", doc.SPDXVersion)
	}
	var pkgs []Package
	for _, sp := range doc.Packages {
		found := false
		for _, r := range sp.ExternalRefs {
			if strings.EqualFold(r.ReferenceType, "purl") {
				if p, ok := purlPackage(r.ReferenceLocator); ok {
					pkgs = append(pkgs, p)
					found = true
					break
				}
			}
		}
		if found {
			continue
		}
		if name, ok := strings.CutPrefix(sp.Name, "npm:"); ok && sp.VersionInfo != "" {
			p := Package{Name: name}
			p.Version, p.Source = splitVersion(sp.VersionInfo)
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, nil
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
