package forensics

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/testenv/npmpkg"
)

// The packages below imitate real incidents' shapes with inert content: strings are only strings,
// "payloads" are random base64 or a console.log. Nothing here runs, and nothing is real malware.

const goodIndex = `'use strict'

// Returns a debug logger for the namespace ns.
function createDebug(ns) {
  const enabled = process.env.DEBUG === ns
  return function log(...args) {
    if (enabled) console.error(ns, ...args)
  }
}

module.exports = createDebug
`

const goodReadme = "# debug-like\n\nA tiny debugging utility. Smal and fast.\n"

func goodPackage(name, version string) npmpkg.Package {
	return npmpkg.Package{
		Name:    name,
		Version: version,
		Manifest: map[string]any{
			"main":         "index.js",
			"license":      "MIT",
			"scripts":      map[string]any{"test": "node test.js"},
			"dependencies": map[string]any{"ms": "^2.1.2"},
		},
		Files: map[string][]byte{"index.js": []byte(goodIndex), "README.md": []byte(goodReadme), "LICENSE": []byte("MIT License\n")},
	}
}

// withChange returns a copy of p at version v with files and manifest fields changed.
func withChange(p npmpkg.Package, v string, files map[string][]byte, manifest map[string]any) npmpkg.Package {
	out := npmpkg.Package{Name: p.Name, Version: v, Manifest: maps.Clone(p.Manifest), Files: maps.Clone(p.Files)}
	maps.Copy(out.Files, files)
	maps.Copy(out.Manifest, manifest)
	return out
}

// randomBase64 is inert high-entropy text standing in for an obfuscated payload.
func randomBase64(n int) []byte {
	raw := make([]byte, n*3/4+3)
	_, _ = rand.Read(raw)
	return []byte(base64.StdEncoding.EncodeToString(raw)[:n])
}

// shaiHulud2Like imitates a Shai-Hulud 2.0 version: a preinstall running setup_bun.js, a large
// high-entropy bun_environment.js and a discussion-triggered workflow on a self-hosted runner.
func shaiHulud2Like(good npmpkg.Package, v string, payloadBytes int) npmpkg.Package {
	return withChange(good, v, map[string][]byte{
		"setup_bun.js":                      []byte("// npmir test fixture: inert stand-in\nconsole.log('setup')\n"),
		"bun_environment.js":                randomBase64(payloadBytes),
		".github/workflows/discussion.yaml": []byte("name: Discussion\non:\n  discussion:\njobs:\n  process:\n    runs-on: self-hosted\n    steps:\n      - run: echo inert\n"),
	}, map[string]any{"scripts": map[string]any{"test": "node test.js", "preinstall": "node setup_bun.js"}})
}

// chalkDebugLike imitates the chalk/debug takeover: the main file gains the drainer's function
// names (as inert strings).
func chalkDebugLike(good npmpkg.Package, v string) npmpkg.Package {
	return withChange(good, v, map[string][]byte{
		"index.js": []byte(goodIndex + "\n// npmir test fixture: inert names only\nconst names = ['checkethereumw', 'runmask', 'stealthProxyControl']\nvoid names\n"),
	}, nil)
}

// nxLike imitates nx s1ngularity: a postinstall running telemetry.js, which names the exfiltration
// repository and the inventory file.
func nxLike(good npmpkg.Package, v string) npmpkg.Package {
	return withChange(good, v, map[string][]byte{
		"telemetry.js": []byte("// npmir test fixture: inert strings\nconst repo = 's1ngularity-repository'\nconst out = '/tmp/inventory.txt'\nvoid repo, out\n"),
	}, map[string]any{"scripts": map[string]any{"test": "node test.js", "postinstall": "node telemetry.js"}})
}

func typoFix(good npmpkg.Package, v string) npmpkg.Package {
	return withChange(good, v, map[string][]byte{"README.md": []byte("# debug-like\n\nA tiny debugging utility. Small and fast.\n")}, nil)
}

func dependencyBump(good npmpkg.Package, v string) npmpkg.Package {
	return withChange(good, v, nil, map[string]any{"dependencies": map[string]any{"ms": "^2.1.3"}})
}

func readmeChange(good npmpkg.Package, v string) npmpkg.Package {
	return withChange(good, v, map[string][]byte{"README.md": []byte(goodReadme + "\n## Usage\n\n```js\nconst debug = require('debug-like')('app')\ndebug('hello')\n```\n")}, nil)
}

// fakeRegistry is an in-memory Source: packuments built from npmpkg packages, tarballs by URL.
type fakeRegistry struct {
	mu         sync.Mutex
	packuments map[string]*npmreg.Packument
	tarballs   map[string][]byte
	fetches    int
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{packuments: map[string]*npmreg.Packument{}, tarballs: map[string][]byte{}}
}

const fakeBase = "https://registry.test/"

// add publishes p at time t and returns its manifest for further edits.
func (f *fakeRegistry) add(p npmpkg.Package, t time.Time) *npmreg.Version {
	return f.addTarball(p.Name, p.Version, p.PackageJSON(), p.Tarball(), t)
}

// addTarball publishes arbitrary tarball bytes with the given package.json as manifest.
func (f *fakeRegistry) addTarball(name, version string, pkgJSON, tgz []byte, t time.Time) *npmreg.Version {
	f.mu.Lock()
	defer f.mu.Unlock()
	pk := f.packuments[name]
	if pk == nil {
		pk = &npmreg.Packument{Name: name, DistTags: map[string]string{}, Versions: map[string]*npmreg.Version{}, Time: map[string]string{"created": t.Format(time.RFC3339)}}
		f.packuments[name] = pk
	}
	var man npmreg.Version
	if err := json.Unmarshal(pkgJSON, &man); err != nil {
		panic(err)
	}
	integrity, shasum := npmpkg.Integrity(tgz)
	url := fakeBase + name + "/-/" + npmpkg.TarballName(name, version)
	man.Name, man.Version = name, version
	man.Dist = npmreg.Dist{Tarball: url, Integrity: integrity, Shasum: shasum}
	pk.Versions[version] = &man
	pk.Time[version] = t.UTC().Format(time.RFC3339Nano)
	pk.Time["modified"] = t.UTC().Format(time.RFC3339Nano)
	pk.DistTags["latest"] = version
	f.tarballs[url] = tgz
	return &man
}

func (f *fakeRegistry) Packument(_ context.Context, name string, _ bool) (*npmreg.Packument, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.packuments[name]
	if p == nil {
		return nil, &npmreg.HTTPError{Method: http.MethodGet, URL: fakeBase + name, Status: 404}
	}
	// A deep copy, as a registry answer would be.
	b, _ := json.Marshal(p)
	var out npmreg.Packument
	_ = json.Unmarshal(b, &out)
	return &out, nil
}

func (f *fakeRegistry) Tarball(_ context.Context, url string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	b, ok := f.tarballs[url]
	if !ok {
		return nil, &npmreg.HTTPError{Method: http.MethodGet, URL: url, Status: 404}
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeRegistry) Registry() string { return fakeBase }

// tarEntry describes one entry of a hand-built (possibly hostile) tarball.
type tarEntry struct {
	name     string
	typ      byte
	body     []byte
	size     int64 // declared size when body is shorter (a truncated archive)
	linkname string
}

// buildTarball writes entries into a gzipped tar directly, so headers can lie and paths can be
// hostile; npmpkg only builds well-formed packages.
func buildTarball(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	truncated := false
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.body))
		if e.size > 0 {
			size = e.size
		}
		if typ != tar.TypeReg {
			size = 0
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Size: size, Mode: 0o644, Linkname: e.linkname, ModTime: time.Unix(499162500, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("header %q: %v", e.name, err)
		}
		if len(e.body) > 0 {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatalf("body %q: %v", e.name, err)
			}
		}
		if size > int64(len(e.body)) {
			truncated = true
			break // the rest of the declared body never comes
		}
	}
	if !truncated {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		_ = tw.Flush() // reports the short body; the archive is meant to be cut
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pkgJSONBytes(name, version string, extra map[string]any) []byte {
	m := map[string]any{"name": name, "version": version}
	maps.Copy(m, extra)
	b, _ := json.Marshal(m)
	return b
}

// ruleIDs lists a version's finding ids.
func ruleIDs(fs []Finding) map[string]bool {
	out := map[string]bool{}
	for _, f := range fs {
		out[f.RuleID] = true
	}
	return out
}

func describe(fs []Finding) string {
	var b bytes.Buffer
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  [%s] %s %s %s", f.Severity, f.RuleID, f.Path, f.Message)
	}
	return b.String()
}

var day0 = time.Date(2025, 9, 1, 12, 0, 0, 0, time.UTC)
