package forensics

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/npmir/npmir/internal/state"
)

// verifyHostile publishes a good version and a hostile tarball as the next one, then verifies it
// with an evidence store in a fresh incident folder, and checks nothing appeared outside it.
func verifyHostile(t *testing.T, tgz []byte, lim Limits) VersionReport {
	t.Helper()
	reg := newFakeRegistry()
	reg.add(goodPackage("evil-pkg", "1.0.0"), day0)
	reg.addTarball("evil-pkg", "1.0.1", pkgJSONBytes("evil-pkg", "1.0.1", nil), tgz, day0.Add(time.Hour))
	root := t.TempDir()
	inc := filepath.Join(root, "incident")
	ev, err := state.OpenEvidence(inc)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), reg, Request{Package: "evil-pkg", Versions: []string{"1.0.1"}, Evidence: ev, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	// Only the evidence store wrote, and only its own names.
	var written []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			written = append(written, filepath.ToSlash(rel))
		}
		return nil
	})
	for _, w := range written {
		if !strings.HasPrefix(w, "incident/evidence/") {
			t.Errorf("file written outside the evidence folder: %s", w)
		}
	}
	if len(written) != 3 { // manifest, packument, tarball
		t.Errorf("written: %v", written)
	}
	if probs, err := ev.Verify(); err != nil || len(probs) != 0 {
		t.Errorf("evidence verify: %v %v", probs, err)
	}
	for _, p := range []string{"etc", "../etc", "../../etc/passwd.npmir"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists next to the test", p)
		}
	}
	return rep.Versions[0]
}

func TestHostilePathsAndLinks(t *testing.T) {
	t.Parallel()
	tgz := buildTarball(t, []tarEntry{
		{name: "package/package.json", body: pkgJSONBytes("evil-pkg", "1.0.1", nil)},
		{name: "package/../../etc/passwd", body: []byte("root:x:0:0::/root:/bin/sh\n")},
		{name: "/etc/cron.d/npmir-test", body: []byte("* * * * * root true\n")},
		{name: "package\\..\\..\\win.ini", body: []byte("x")},
		{name: "package/link", typ: tar.TypeSymlink, linkname: "../../../../etc/passwd"},
		{name: "package/hard", typ: tar.TypeLink, linkname: "/etc/shadow"},
		{name: "package/fifo", typ: tar.TypeFifo},
		{name: "package/index.js", body: []byte("module.exports = 1\n")},
		{name: "package/index.js", body: []byte("module.exports = 2\n")},
	})
	vr := verifyHostile(t, tgz, Limits{})
	ids := ruleIDs(vr.Findings)
	for _, id := range []string{"archive.path-traversal", "archive.absolute-path", "archive.symlink", "archive.hardlink", "archive.special-file", "archive.duplicate-entry"} {
		if !ids[id] {
			t.Errorf("missing %s:%s", id, describe(vr.Findings))
		}
	}
	if vr.Verdict != VerdictMalicious || !vr.Tarball.Complete {
		t.Errorf("verdict %s complete %v", vr.Verdict, vr.Tarball.Complete)
	}
	n := 0
	for _, f := range vr.Findings {
		if f.RuleID == "archive.path-traversal" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d traversal findings, want 2 (slash and backslash):%s", n, describe(vr.Findings))
	}
}

// TestHugeDeclaredEntry: a header claiming 2 GB over a body that is not there.
func TestHugeDeclaredEntry(t *testing.T) {
	t.Parallel()
	const declared = 2 << 30
	tgz := buildTarball(t, []tarEntry{
		{name: "package/package.json", body: pkgJSONBytes("evil-pkg", "1.0.1", nil)},
		{name: "package/bomb.bin", body: bytes.Repeat([]byte{'A'}, 4096), size: declared},
	})
	t.Run("over the total budget", func(t *testing.T) {
		vr := verifyHostile(t, tgz, Limits{})
		if !ruleIDs(vr.Findings)["archive.total-size-limit"] || vr.Tarball.Complete || vr.Verdict == VerdictClean {
			t.Fatalf("verdict %s complete %v:%s", vr.Verdict, vr.Tarball.Complete, describe(vr.Findings))
		}
		if vr.Tarball.UncompressedBytes > 1<<20 {
			t.Errorf("read %d bytes of a body it should not have started", vr.Tarball.UncompressedBytes)
		}
	})
	t.Run("within budget, cut short", func(t *testing.T) {
		vr := verifyHostile(t, tgz, Limits{MaxTotalBytes: 4 << 30})
		ids := ruleIDs(vr.Findings)
		if !ids["archive.entry-too-large"] || !ids["archive.malformed"] || vr.Tarball.Complete {
			t.Fatalf("complete %v:%s", vr.Tarball.Complete, describe(vr.Findings))
		}
	})
}

// zeroTarStream generates, on the fly, a gzipped tar holding package.json and one entry of size
// zero bytes: nothing of that size is ever held by the generator.
func zeroTarStream(size int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		gz, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		tw := tar.NewWriter(gz)
		pj := pkgJSONBytes("evil-pkg", "1.0.1", nil)
		_ = tw.WriteHeader(&tar.Header{Name: "package/package.json", Size: int64(len(pj)), Mode: 0o644, Typeflag: tar.TypeReg})
		_, _ = tw.Write(pj)
		_ = tw.WriteHeader(&tar.Header{Name: "package/zeros.bin", Size: size, Mode: 0o644, Typeflag: tar.TypeReg})
		chunk := make([]byte, 1<<20)
		var err error
		for left := size; left > 0 && err == nil; left -= int64(len(chunk)) {
			_, err = tw.Write(chunk[:min(left, int64(len(chunk)))])
		}
		if err == nil {
			err = tw.Close()
		}
		if err == nil {
			err = gz.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// TestLargeEntryStreamsInBoundedMemory reads a real (generated) 256 MB entry: it is hashed and
// scanned, never held, so allocations stay far below its size.
func TestLargeEntryStreamsInBoundedMemory(t *testing.T) {
	const size = 256 << 20
	if testing.Short() {
		t.Skip("reads 256 MB")
	}
	rc := zeroTarStream(size)
	defer rc.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := ReadTarball(rc, Limits{MaxEntryBytes: 16 << 20}, DefaultRules())
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	f := c.Files["zeros.bin"]
	if f == nil || f.Size != size || !f.Complete || f.text != nil || !c.Complete {
		t.Fatalf("file %+v complete %v:%s", f, c.Complete, describe(c.Findings))
	}
	if !ruleIDs(c.Findings)["archive.entry-too-large"] {
		t.Errorf("findings:%s", describe(c.Findings))
	}
	t.Logf("allocated %d KB reading a %d MB entry", (after.TotalAlloc-before.TotalAlloc)>>10, size>>20)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d MB reading a %d MB entry; want it streamed", alloc>>20, size>>20)
	}
	// And the 2 GB declared one on the fly: refused before decompressing it.
	rc2 := zeroTarStream(2 << 30)
	c2, err := ReadTarball(rc2, Limits{}, DefaultRules())
	rc2.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !ruleIDs(c2.Findings)["archive.total-size-limit"] || c2.TotalBytes > 1<<20 {
		t.Errorf("read %d bytes:%s", c2.TotalBytes, describe(c2.Findings))
	}
}

// TestManyTinyEntries is not parallel: it measures allocations, which other tests would inflate.
func TestManyTinyEntries(t *testing.T) {
	entries := []tarEntry{{name: "package/package.json", body: pkgJSONBytes("evil-pkg", "1.0.1", nil)}}
	for i := range 100_000 {
		entries = append(entries, tarEntry{name: fmt.Sprintf("package/f/%06d.js", i), body: []byte("x=1\n")})
	}
	tgz := buildTarball(t, entries)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := ReadTarball(bytes.NewReader(tgz), Limits{}, DefaultRules())
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if c.Complete || !ruleIDs(c.Findings)["archive.entry-count-limit"] || len(c.Files) > DefaultLimits.MaxEntries {
		t.Fatalf("complete %v files %d:%s", c.Complete, len(c.Files), describe(c.Findings))
	}
	// Bounded by the entry limit, not by the archive: a few hundred bytes per kept entry.
	t.Logf("read %d entries, %d bytes, allocated %d KB", c.Entries, c.TotalBytes, (after.TotalAlloc-before.TotalAlloc)>>10)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("allocated %d MB for %d entries", alloc>>20, len(c.Files))
	}
	vr := verifyHostile(t, tgz, Limits{})
	if vr.Verdict != VerdictSuspicious || !ruleIDs(vr.Findings)["archive.entry-count-limit"] {
		t.Errorf("verdict %s:%s", vr.Verdict, describe(vr.Findings))
	}
}

func TestMalformedArchives(t *testing.T) {
	t.Parallel()
	good := goodPackage("evil-pkg", "1.0.1").Tarball()
	cases := map[string][]byte{
		"empty":           nil,
		"not gzip":        []byte("hello, this is not a tarball"),
		"truncated gzip":  good[:len(good)/2],
		"gzip of garbage": gzipBytes([]byte(strings.Repeat("garbage!", 200))),
		"two members":     append(append([]byte{}, good...), good...),
	}
	for name, data := range cases {
		c, err := ReadTarball(bytes.NewReader(data), Limits{}, DefaultRules())
		if err != nil {
			t.Errorf("%s: error %v, want a finding", name, err)
			continue
		}
		ids := ruleIDs(c.Findings)
		if name == "two members" {
			// Read as one stream; the first archive's end marker ends the tar, as in node-tar.
			if !c.Complete || len(c.Files) != 4 {
				t.Errorf("%s: complete %v files %d", name, c.Complete, len(c.Files))
			}
			continue
		}
		if !ids["archive.malformed"] && !ids["archive.no-package-json"] {
			t.Errorf("%s: findings:%s", name, describe(c.Findings))
		}
	}
}

func TestReadTarballReportsSourceErrors(t *testing.T) {
	t.Parallel()
	good := goodPackage("x", "1.0.0").Tarball()
	r := io.MultiReader(bytes.NewReader(good[:100]), errReader{})
	if _, err := ReadTarball(r, Limits{}, nil); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err %v, want the source's error", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("connection reset") }

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(b)
	gz.Close()
	return buf.Bytes()
}

func TestStringRulesMatchAcrossChunks(t *testing.T) {
	t.Parallel()
	// Put the needle across the 64 KiB read boundary, and in mixed case for a nocase rule.
	body := bytes.Repeat([]byte{'a'}, 64<<10-5)
	body = append(body, []byte("stealthProxyControl ... 0XFC4A4858BAFEF54D1B1D7697BFB5C52F4C166976")...)
	tgz := buildTarball(t, []tarEntry{{name: "package/package.json", body: pkgJSONBytes("x", "1.0.0", nil)}, {name: "package/big.js", body: body}})
	c, err := ReadTarball(bytes.NewReader(tgz), Limits{}, DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.Files["big.js"].hits, ",")
	if !strings.Contains(got, "chalk-debug.drainer-functions\x00stealthProxyControl") || !strings.Contains(got, "chalk-debug.drainer-wallet") {
		t.Fatalf("hits %q", got)
	}
	// One byte per read: every needle straddles reads.
	a := newAnalyzer(DefaultLimits, DefaultRules())
	f := &File{Path: "big.js"}
	if _, err := a.run(f, iotest.OneByteReader(bytes.NewReader(body[64<<10-40:])), false); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.hits, ","); !strings.Contains(got, "stealthProxyControl") || !strings.Contains(got, "drainer-wallet") {
		t.Fatalf("one-byte reads: hits %q", got)
	}
}

// TestEntriesInASecondGzipMember: a tar split over two gzip members is read whole, as npm would
// extract it, so nothing hides in the second member.
func TestEntriesInASecondGzipMember(t *testing.T) {
	t.Parallel()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, e := range []struct{ name, body string }{{"package/package.json", `{"name":"x","version":"1.0.0"}`}, {"package/hidden.js", "const c = 'checkethereumw'"}} {
		_ = tw.WriteHeader(&tar.Header{Name: e.name, Size: int64(len(e.body)), Mode: 0o644, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(e.body))
	}
	_ = tw.Close()
	raw := tarBuf.Bytes()
	split := 1024 // after the first entry's header and body blocks
	tgz := append(gzipBytes(raw[:split]), gzipBytes(raw[split:])...)
	c, err := ReadTarball(bytes.NewReader(tgz), Limits{}, DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Files["hidden.js"]; f == nil || len(f.hits) == 0 {
		t.Fatalf("the second member's entry was not read: files %v findings:%s", c.Order, describe(c.Findings))
	}
}

// TestScannerAgreesWithNaiveSearch: the one-pass prefix scanner finds exactly what a per-rule
// search of the whole file finds, whatever the read sizes.
func TestScannerAgreesWithNaiveSearch(t *testing.T) {
	t.Parallel()
	rules := DefaultRules()
	withHits := 0
	for seed := range 200 {
		body := randomBase64(3000 + seed*37)
		// Plant a few needles, some in upper case, at pseudo-random places.
		for j := 0; j < seed%4; j++ {
			l := rules.literals[(seed*7+j*13)%len(rules.literals)]
			needle := []byte(l.value)
			if seed%2 == 0 {
				needle = bytes.ToUpper(needle)
			}
			at := (seed * 131 * (j + 1)) % (len(body) - len(needle))
			copy(body[at:], needle)
		}
		want := map[string]bool{}
		for _, l := range rules.literals {
			hay, n := body, []byte(l.value)
			if l.rule.NoCase {
				hay, n = bytes.ToLower(body), l.needle
			}
			if l.rule.appliesToFile("x.js") && bytes.Contains(hay, n) {
				want[l.rule.ID+"\x00"+l.value] = true
			}
		}
		a := newAnalyzer(DefaultLimits, rules)
		f := &File{Path: "x.js"}
		var r io.Reader = bytes.NewReader(body)
		if seed%3 == 0 {
			r = iotest.HalfReader(r)
		}
		if _, err := a.run(f, r, false); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, h := range f.hits {
			got[h] = true
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: got %q, want %v", seed, f.hits, want)
		}
		for h := range want {
			if !got[h] {
				t.Fatalf("seed %d: missed %q", seed, h)
			}
		}
		if len(want) > 0 {
			withHits++
		}
	}
	if withHits < 100 {
		t.Fatalf("only %d of 200 inputs held a needle: the test plants too few", withHits)
	}
}
