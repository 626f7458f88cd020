// Package npmpkg builds synthetic npm packages (tarballs and the publish document the npm client
// sends) for tests, the benchmarks and the rehearsal scenarios. Contents are always harmless:
// incident-shaped files carry inert text, never working code.
package npmpkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// Package is one version to publish.
type Package struct {
	Name    string
	Version string
	// Manifest fields merged into package.json (scripts, dependencies, main, ...). name and
	// version are set from the fields above.
	Manifest map[string]any
	// Files besides package.json, by path inside the package (no "package/" prefix).
	Files map[string][]byte
}

// PackageJSON renders the package's package.json.
func (p Package) PackageJSON() []byte {
	m := map[string]any{}
	maps.Copy(m, p.Manifest)
	m["name"], m["version"] = p.Name, p.Version
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// Tarball renders the package as npm packs it: a gzipped tar with every entry under package/.
func (p Package) Tarball() []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	files := map[string][]byte{"package.json": p.PackageJSON()}
	maps.Copy(files, p.Files)
	mtime := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC) // npm's fixed pack time
	for _, name := range slices.Sorted(maps.Keys(files)) {
		_ = tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(files[name])), ModTime: mtime, Typeflag: tar.TypeReg})
		_, _ = tw.Write(files[name])
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// Integrity returns the dist.integrity (sha512, SRI) and dist.shasum (sha1 hex) of a tarball.
func Integrity(tgz []byte) (integrity, shasum string) {
	s512 := sha512.Sum512(tgz)
	s1 := sha1.Sum(tgz)
	return "sha512-" + base64.StdEncoding.EncodeToString(s512[:]), hex.EncodeToString(s1[:])
}

// TarballName is the file name npm gives a version's tarball (scope dropped).
func TarballName(name, version string) string {
	base := name
	if i := bytes.LastIndexByte([]byte(name), '/'); i >= 0 {
		base = name[i+1:]
	}
	return base + "-" + version + ".tgz"
}

// PublishDocument is the body `npm publish` PUTs to /<name>: the manifest, the dist-tag and the
// tarball as a base64 attachment. registry is the base URL the tarball URL is built on.
func (p Package) PublishDocument(registry, tag string) map[string]any {
	tgz := p.Tarball()
	integrity, shasum := Integrity(tgz)
	var man map[string]any
	_ = json.Unmarshal(p.PackageJSON(), &man)
	file := TarballName(p.Name, p.Version)
	man["_id"] = p.Name + "@" + p.Version
	man["dist"] = map[string]any{"integrity": integrity, "shasum": shasum, "tarball": registry + p.Name + "/-/" + file}
	return map[string]any{
		"_id":          p.Name,
		"name":         p.Name,
		"dist-tags":    map[string]string{tag: p.Version},
		"versions":     map[string]any{p.Version: man},
		"_attachments": map[string]any{file: map[string]any{"content_type": "application/octet-stream", "data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz)}},
	}
}
