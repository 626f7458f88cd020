package forensics

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
)

// FuzzReadTarball feeds arbitrary bytes to the reader: it must never panic, never report more
// than its limits allow, and never return a path that could climb out of a folder unflagged.
func FuzzReadTarball(f *testing.F) {
	f.Add(goodPackage("seed", "1.0.0").Tarball())
	f.Add(shaiHulud2Like(goodPackage("seed", "1.0.0"), "1.0.1", 2048).Tarball())
	f.Add(buildTarball(f, []tarEntry{
		{name: "package/package.json", body: []byte(`{"name":"x","version":"1.0.0"}`)},
		{name: "package/../../etc/passwd", body: []byte("x")},
		{name: "/abs", body: []byte("x")},
		{name: "package/l", typ: tar.TypeSymlink, linkname: "../../x"},
	}))
	f.Add(buildTarball(f, []tarEntry{{name: "package/big", body: []byte("abc"), size: 1 << 40}}))
	f.Add([]byte{})
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"))
	lim := Limits{MaxTotalBytes: 4 << 20, MaxEntryBytes: 1 << 20, MaxEntries: 500, MaxDiffBytes: 64 << 10, MaxHeldBytes: 1 << 20}
	rules := DefaultRules()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadTarball(bytes.NewReader(data), lim, rules)
		if err != nil {
			t.Fatalf("a bytes.Reader cannot fail, yet: %v", err)
		}
		if c.TotalBytes > lim.MaxTotalBytes {
			t.Fatalf("read %d bytes past the %d limit", c.TotalBytes, lim.MaxTotalBytes)
		}
		if len(c.Files) > lim.MaxEntries {
			t.Fatalf("%d files past the %d-entry limit", len(c.Files), lim.MaxEntries)
		}
		held := 0
		flagged := map[string]bool{}
		for _, fd := range c.Findings {
			if fd.RuleID == "archive.path-traversal" || fd.RuleID == "archive.absolute-path" {
				flagged[fd.Path] = true
			}
		}
		for p, fl := range c.Files {
			held += len(fl.text)
			climbs := strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || p == ".." ||
				strings.Contains(p, "/../") || strings.HasPrefix(p, "../") || strings.HasSuffix(p, "/..") ||
				strings.Contains(p, `\..`) || strings.Contains(p, `..\`)
			if climbs && !flagged[p] {
				t.Fatalf("path %q could climb out and was not flagged", p)
			}
		}
		if int64(held) > lim.MaxHeldBytes+maxPackageJSON {
			t.Fatalf("held %d bytes of file text", held)
		}
	})
}

// FuzzPackageJSONDiff: the diff never panics on attacker-controlled JSON, a document compared
// with itself shows no change, and a lifecycle script that differs is always reported.
func FuzzPackageJSONDiff(f *testing.F) {
	f.Add([]byte(`{"name":"a","version":"1.0.0","scripts":{"test":"x"},"dependencies":{"ms":"^2"}}`),
		[]byte(`{"name":"a","version":"1.0.1","scripts":{"test":"x","preinstall":"node setup_bun.js"},"dependencies":{"ms":"^2","flatmap-stream":"0.1.1"}}`))
	f.Add([]byte(`{"scripts":"not an object","bin":"cli.js"}`), []byte(`{"scripts":{"postinstall":1},"bin":{"a":"b"}}`))
	f.Add([]byte(`{"bundleDependencies":["a","b"]}`), []byte(`{"bundleDependencies":true}`))
	f.Add([]byte(`[]`), []byte(`null`))
	f.Add([]byte(`{"main":"index.js","dependencies":null}`), []byte(`{"main":{"x":1},"dependencies":{"":""}}`))
	f.Fuzz(func(t *testing.T, oldJSON, newJSON []byte) {
		d, err := DiffPackageJSON(oldJSON, newJSON)
		if err != nil {
			return
		}
		if same, err := DiffPackageJSON(newJSON, newJSON); err != nil || !same.Empty() {
			t.Fatalf("a document differs from itself: %+v %v", same, err)
		}
		o, _ := parsePkgJSON(oldJSON)
		n, _ := parsePkgJSON(newJSON)
		for _, s := range lifecycleScripts {
			ov, oin := o.scripts[s]
			nv, nin := n.scripts[s]
			if (oin != nin || ov != nv) && !hasScript(d, s) {
				t.Fatalf("lifecycle script %q changed (%q → %q) but is not in the diff", s, ov, nv)
			}
		}
	})
}

func hasScript(d *PackageJSONDiff, name string) bool {
	for _, s := range d.Scripts {
		if s.Name == name && s.Lifecycle {
			return true
		}
	}
	return false
}
