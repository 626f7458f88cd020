package forensics

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"path"
	"strings"
)

// Limits bound what reading one tarball may cost. A package is untrusted input: a tar bomb must
// end in a finding, not an exhausted machine.
type Limits struct {
	// MaxTarballBytes caps the compressed download (held in memory to hash, preserve and read it).
	MaxTarballBytes int64
	// MaxTotalBytes caps the uncompressed bytes read from one tarball.
	MaxTotalBytes int64
	// MaxEntryBytes is the size above which an entry is flagged; it is still hashed and scanned,
	// streamed, never held.
	MaxEntryBytes int64
	// MaxEntries caps the entries read from one tarball.
	MaxEntries int
	// MaxDiffBytes: text files up to this size are kept in memory for a unified diff.
	MaxDiffBytes int64
	// MaxHeldBytes caps the file contents kept in memory per tarball for diffs.
	MaxHeldBytes int64
}

// DefaultLimits are generous for real packages (the largest legitimate npm tarballs are a few
// hundred MB unpacked, with tens of thousands of files at most) and small for a single machine.
var DefaultLimits = Limits{
	MaxTarballBytes: 256 << 20,
	MaxTotalBytes:   1 << 30,
	MaxEntryBytes:   64 << 20,
	MaxEntries:      50_000,
	MaxDiffBytes:    256 << 10,
	MaxHeldBytes:    64 << 20,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxTarballBytes > 0 {
		d.MaxTarballBytes = l.MaxTarballBytes
	}
	if l.MaxTotalBytes > 0 {
		d.MaxTotalBytes = l.MaxTotalBytes
	}
	if l.MaxEntryBytes > 0 {
		d.MaxEntryBytes = l.MaxEntryBytes
	}
	if l.MaxEntries > 0 {
		d.MaxEntries = l.MaxEntries
	}
	if l.MaxDiffBytes > 0 {
		d.MaxDiffBytes = l.MaxDiffBytes
	}
	if l.MaxHeldBytes > 0 {
		d.MaxHeldBytes = l.MaxHeldBytes
	}
	return d
}

// maxPackageJSON caps the package.json kept for parsing whatever the diff budget.
const maxPackageJSON = 4 << 20

// File types recorded in File.Type.
const (
	TypeFile     = "file"
	TypeSymlink  = "symlink"
	TypeHardlink = "hardlink"
	TypeOther    = "other"
)

// File is one entry of a tarball as the reader saw it.
type File struct {
	// Path is relative to the package root (npm's first path component stripped); for an entry
	// with an absolute or ".." path it is the raw name, reported and never used on a filesystem.
	Path     string  `json:"path"`
	Type     string  `json:"type"`
	Size     int64   `json:"size"`
	SHA256   string  `json:"sha256,omitempty"`
	Linkname string  `json:"linkname,omitempty"`
	Binary   bool    `json:"binary,omitempty"`
	Minified bool    `json:"minified,omitempty"`
	Entropy  float64 `json:"entropy,omitempty"` // bits per byte, 0..8
	// Complete is false when the body was cut short (a limit, a malformed archive).
	Complete bool `json:"complete"`

	text []byte   // kept when small enough, for the unified diff
	hits []string // rule ids of string rules found, with the value: "id\x00value"
}

// Contents is what ReadTarball found.
type Contents struct {
	Files       map[string]*File
	Order       []string // archive order of Files' keys
	PackageJSON []byte   // nil when absent or too large
	Entries     int
	TotalBytes  int64 // uncompressed bytes read
	Complete    bool  // false when a limit or a malformed archive stopped reading
	Findings    []Finding
}

// srcErr remembers an error of the underlying reader, so a network failure is told apart from a
// malformed archive (which is a finding, not an error).
type srcErr struct {
	r   io.Reader
	err error
}

func (s *srcErr) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// ReadTarball reads a gzipped npm tarball from r without writing anything anywhere: every entry is
// hashed and analysed in memory, within lim (zero fields take DefaultLimits'), and searched for the
// string rules of rules (nil: none). Hostile content (tar bombs, links, absolute or ".." paths,
// malformed archives) becomes findings. The error is non-nil only when r itself fails.
func ReadTarball(r io.Reader, lim Limits, rules *RuleSet) (*Contents, error) {
	lim = lim.withDefaults()
	if rules == nil {
		rules = &RuleSet{}
	}
	src := &srcErr{r: r}
	c := &Contents{Files: map[string]*File{}, Complete: true}
	fail := func(id, p, format string, args ...any) {
		c.Findings = append(c.Findings, rules.finding(id, "archive", p, "", format, args...))
	}
	gz, err := gzip.NewReader(src)
	if err != nil {
		if src.err != nil {
			return c, fmt.Errorf("read tarball: %w", src.err)
		}
		c.Complete = false
		fail("archive.malformed", "", "not a gzip stream: %v", err)
		return c, nil
	}
	// Concatenated gzip members are read as one stream (the default), as Node's zlib does when
	// npm extracts: stopping at the first member would let entries hide in a second one.
	tr := tar.NewReader(gz)
	a := newAnalyzer(lim, rules)
	held := int64(0)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if src.err != nil {
				return c, fmt.Errorf("read tarball: %w", src.err)
			}
			c.Complete = false
			fail("archive.malformed", "", "archive is malformed after %d entries: %v", c.Entries, err)
			break
		}
		c.Entries++
		if c.Entries > lim.MaxEntries {
			c.Complete = false
			fail("archive.entry-count-limit", "", "more than %d entries; stopped reading (a tar bomb, or raise the limit)", lim.MaxEntries)
			break
		}
		// Checked for every entry type: the tar reader skips a directory's or a link's declared
		// body by decompressing it, so a lying header on any entry is a bomb.
		if hdr.Size < 0 {
			c.Complete = false
			fail("archive.malformed", hdr.Name, "entry declares a negative size")
			break
		}
		if hdr.Size > lim.MaxTotalBytes-c.TotalBytes {
			c.Complete = false
			fail("archive.total-size-limit", oneLine(hdr.Name), "entry declares %d bytes; with the %d already read that passes the %d-byte limit; stopped reading (a tar bomb, or raise the limit)", hdr.Size, c.TotalBytes, lim.MaxTotalBytes)
			break
		}
		name, bad := entryPath(hdr.Name)
		switch bad {
		case "absolute":
			fail("archive.absolute-path", name, "entry has an absolute path %q (never extracted; reported only)", hdr.Name)
		case "traversal":
			fail("archive.path-traversal", name, "entry path %q climbs out of the package with \"..\" (never extracted; reported only)", hdr.Name)
		case "nul":
			fail("archive.path-traversal", name, "entry path %q holds a NUL byte", hdr.Name)
		}
		if !isRegular(hdr.Typeflag) {
			c.TotalBytes += hdr.Size // any body is decompressed when Next skips it
		}
		f := &File{Path: name, Size: hdr.Size, Complete: true}
		switch {
		case isRegular(hdr.Typeflag):
			f.Type = TypeFile
		case hdr.Typeflag == tar.TypeDir:
			continue
		case hdr.Typeflag == tar.TypeSymlink:
			f.Type, f.Linkname, f.Size = TypeSymlink, hdr.Linkname, 0
			fail("archive.symlink", name, "symlink to %q (not followed)%s", hdr.Linkname, linkNote(hdr.Linkname))
		case hdr.Typeflag == tar.TypeLink:
			f.Type, f.Linkname, f.Size = TypeHardlink, hdr.Linkname, 0
			fail("archive.hardlink", name, "hard link to %q (not followed)%s", hdr.Linkname, linkNote(hdr.Linkname))
		case hdr.Typeflag == tar.TypeXGlobalHeader:
			continue
		default:
			f.Type, f.Size = TypeOther, 0
			fail("archive.special-file", name, "entry of tar type %q (device, fifo or unknown) in a package", string(hdr.Typeflag))
		}
		if prev, dup := c.Files[name]; dup {
			fail("archive.duplicate-entry", name, "path appears twice in the archive; the later entry (kept here) wins on extraction")
			held -= int64(len(prev.text))
		} else {
			c.Order = append(c.Order, name)
		}
		c.Files[name] = f
		if f.Type != TypeFile {
			continue
		}
		if hdr.Size > lim.MaxEntryBytes {
			fail("archive.entry-too-large", name, "entry of %d bytes is over the %d-byte entry limit; hashed and scanned streaming, not diffed", hdr.Size, lim.MaxEntryBytes)
		}
		keep := (name == "package.json" && hdr.Size <= maxPackageJSON) ||
			(hdr.Size <= lim.MaxDiffBytes && held+hdr.Size <= lim.MaxHeldBytes)
		n, err := a.run(f, tr, keep)
		c.TotalBytes += n
		if keep {
			held += int64(len(f.text))
		}
		if name == "package.json" && f.Complete {
			c.PackageJSON = f.text
			if hdr.Size > lim.MaxDiffBytes {
				// Kept for parsing only: do not let it count as diffable text.
				held -= int64(len(f.text))
			}
		}
		if err != nil {
			if src.err != nil {
				return c, fmt.Errorf("read tarball: %w", src.err)
			}
			c.Complete, f.Complete = false, false
			fail("archive.malformed", name, "entry body is cut short after %d of %d bytes: %v", n, hdr.Size, err)
			break
		}
	}
	if c.Complete && c.PackageJSON == nil {
		fail("archive.no-package-json", "", "no package.json at the package root")
	}
	return c, nil
}

// isRegular: a regular file, including the old NUL type byte (TypeRegA) some packers still write.
func isRegular(t byte) bool { return t == tar.TypeReg || t == 0 }

func linkNote(target string) string {
	if _, bad := entryPath(target); bad != "" || strings.HasPrefix(target, "/") {
		return "; the target is outside the package"
	}
	return ""
}

// entryPath turns an archive name into a package-relative path. npm strips the first component
// (normally "package/") whatever it is. bad is "absolute", "traversal" or "nul" for names that
// must never be joined to a directory; such names are returned raw for the report.
func entryPath(raw string) (p, bad string) {
	if strings.IndexByte(raw, 0) >= 0 {
		return strings.ReplaceAll(raw, "\x00", `\x00`), "nul"
	}
	norm := strings.ReplaceAll(raw, `\`, "/")
	if strings.HasPrefix(norm, "/") || (len(norm) >= 2 && norm[1] == ':') {
		return raw, "absolute"
	}
	for _, seg := range strings.Split(norm, "/") {
		if seg == ".." {
			return raw, "traversal"
		}
	}
	norm = strings.TrimPrefix(path.Clean("/"+norm), "/")
	if i := strings.IndexByte(norm, '/'); i >= 0 {
		norm = norm[i+1:]
	}
	return norm, ""
}

// analyzer hashes and characterises entry bodies with fixed buffers, so memory does not grow with
// entry size.
type analyzer struct {
	lim   Limits
	rules *RuleSet
	buf   []byte
	sha   hash.Hash
	hist  [256]int64
	carry []byte // last bytes of the previous chunk, for matches across chunk boundaries
	join  []byte
	// Per file: which literals apply (files globs), which were found, how many are left.
	active, found []bool
	remaining     int
}

func newAnalyzer(lim Limits, rules *RuleSet) *analyzer {
	n := len(rules.literals)
	return &analyzer{lim: lim, rules: rules, buf: make([]byte, 64<<10), sha: sha256.New(), active: make([]bool, n), found: make([]bool, n)}
}

// run reads one entry body from r into f's hash, statistics and string hits. It returns the bytes
// read and a read error, if any.
func (a *analyzer) run(f *File, r io.Reader, keep bool) (int64, error) {
	a.sha.Reset()
	a.hist = [256]int64{}
	a.carry = a.carry[:0]
	clear(a.found)
	a.remaining = 0
	for i, l := range a.rules.literals {
		a.active[i] = l.rule.appliesToFile(f.Path)
		if a.active[i] {
			a.remaining++
		}
	}
	var kept bytes.Buffer
	if keep {
		kept.Grow(int(f.Size))
	}
	var (
		total            int64
		lineLen, maxLine int64
		lines            int64 = 1
		nulInHead        bool
		readErr          error
	)
	for {
		n, err := r.Read(a.buf)
		if n > 0 {
			chunk := a.buf[:n]
			a.sha.Write(chunk)
			for _, b := range chunk {
				a.hist[b]++
			}
			if total < 8000 && bytes.IndexByte(chunk[:min(int64(n), 8000-total)], 0) >= 0 {
				nulInHead = true
			}
			// Line statistics without a per-byte branch on the common path.
			rest := chunk
			for {
				i := bytes.IndexByte(rest, '\n')
				if i < 0 {
					lineLen += int64(len(rest))
					break
				}
				lineLen += int64(i)
				maxLine = max(maxLine, lineLen)
				lineLen = 0
				lines++
				rest = rest[i+1:]
			}
			a.scan(chunk)
			if keep {
				kept.Write(chunk)
			}
			total += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	maxLine = max(maxLine, lineLen)
	f.SHA256 = hex.EncodeToString(a.sha.Sum(nil))
	f.Size = total
	f.Binary = nulInHead
	f.Entropy = entropy(&a.hist, total)
	// Minified: long lines on average, as a bundler or an obfuscator writes them.
	f.Minified = !f.Binary && total >= 2048 && maxLine >= 1000 && total/lines >= 300
	if keep && readErr == nil {
		f.text = kept.Bytes()
	}
	for i, ok := range a.found {
		if ok {
			l := a.rules.literals[i]
			f.hits = append(f.hits, l.rule.ID+"\x00"+l.value)
		}
	}
	return total, readErr
}

// scan looks for the active literals in chunk, including matches that straddle the previous
// chunk. One pass over the bytes: a two-byte prefix table says where a literal may start, so the
// cost does not grow with the number of rules (a 10 MB file is scanned once, not once per rule).
func (a *analyzer) scan(chunk []byte) {
	ix := a.rules.scanIndex
	if a.remaining == 0 || ix == nil {
		return
	}
	if len(a.carry) > 0 {
		a.join = append(append(a.join[:0], a.carry...), chunk[:min(len(chunk), a.rules.maxLit-1)]...)
		a.scanBytes(a.join)
	}
	a.scanBytes(chunk)
	keep := a.rules.maxLit - 1
	if len(chunk) >= keep {
		a.carry = append(a.carry[:0], chunk[len(chunk)-keep:]...)
	} else {
		a.carry = append(a.carry, chunk...)
		if len(a.carry) > keep {
			a.carry = a.carry[len(a.carry)-keep:]
		}
	}
}

func (a *analyzer) scanBytes(hay []byte) {
	ix := a.rules.scanIndex
	for i := 0; i+1 < len(hay); i++ {
		k := uint16(hay[i])<<8 | uint16(hay[i+1])
		if ix.bits[k>>6]&(1<<(k&63)) == 0 {
			continue
		}
		for _, li := range ix.byPrefix[k] {
			if !a.active[li] || a.found[li] {
				continue
			}
			l := &a.rules.literals[li]
			if len(hay)-i < len(l.needle) {
				continue
			}
			w := hay[i : i+len(l.needle)]
			if (l.rule.NoCase && equalFoldASCII(w, l.needle)) || (!l.rule.NoCase && bytes.Equal(w, l.needle)) {
				a.found[li] = true
				a.remaining--
				if a.remaining == 0 {
					return
				}
			}
		}
	}
}

// equalFoldASCII compares w with a lowercase needle, folding ASCII letters of w.
func equalFoldASCII(w, lowerNeedle []byte) bool {
	for i, b := range w {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != lowerNeedle[i] {
			return false
		}
	}
	return true
}

// scanIndex maps the first two bytes of every literal (both cases for nocase ones) to the
// literals starting with them.
type scanIndex struct {
	bits     [65536 / 64]uint64
	byPrefix map[uint16][]int
}

func buildScanIndex(lits []literal) *scanIndex {
	if len(lits) == 0 {
		return nil
	}
	ix := &scanIndex{byPrefix: map[uint16][]int{}}
	for i, l := range lits {
		firsts, seconds := caseVariants(l.needle[0], l.rule.NoCase), caseVariants(l.needle[1], l.rule.NoCase)
		for _, b0 := range firsts {
			for _, b1 := range seconds {
				k := uint16(b0)<<8 | uint16(b1)
				ix.bits[k>>6] |= 1 << (k & 63)
				ix.byPrefix[k] = append(ix.byPrefix[k], i)
			}
		}
	}
	return ix
}

func caseVariants(b byte, fold bool) []byte {
	if fold && 'a' <= b && b <= 'z' {
		return []byte{b, b - 'a' + 'A'}
	}
	return []byte{b}
}

// entropy is the Shannon entropy of the byte distribution, in bits per byte.
func entropy(hist *[256]int64, total int64) float64 {
	if total == 0 {
		return 0
	}
	h := 0.0
	for _, n := range hist {
		if n == 0 {
			continue
		}
		p := float64(n) / float64(total)
		h -= p * math.Log2(p)
	}
	return math.Round(h*1000) / 1000
}
