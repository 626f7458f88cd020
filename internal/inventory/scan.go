package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Shard selects a stable slice of the files for one job of a CI matrix:
// shard I of N (1-based, as jest and playwright spell --shard 1/4) owns the
// files whose path, relative to the scanned root, hashes to I-1 modulo N.
// The zero value owns every file.
type Shard struct {
	I int `json:"i"`
	N int `json:"n"`
}

// ParseShard parses "i/n" with 1 <= i <= n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want i/n, e.g. 1/4", s)
	}
	sh := Shard{I: i, N: n}
	return sh, sh.validate()
}

func (s Shard) validate() error {
	if s == (Shard{}) {
		return nil
	}
	if s.N < 1 || s.I < 1 || s.I > s.N {
		return fmt.Errorf("shard %d/%d: want 1 <= i <= n", s.I, s.N)
	}
	return nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// Owns reports whether the shard owns a file, by its slash-separated path
// relative to the scanned root (so that every job of a matrix, whatever its
// checkout directory, agrees).
func (s Shard) Owns(rel string) bool {
	if s.N <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(rel))
	return int(h.Sum64()%uint64(s.N)) == s.I-1
}

// Options configure one Scan. The CLI fills it from flags; tests and the
// engine's inventory stage build it directly.
type Options struct {
	// Paths are directories (walked recursively) and files (read whatever
	// their name; the format is sniffed when the name is not a known one).
	Paths []string
	// Targets are the bad versions to look for. Required.
	Targets *Targets
	// IncludeNodeModules walks node_modules folders too: their package.json
	// files report installed versions, .package-lock.json the hidden lockfile.
	IncludeNodeModules bool
	// Concurrency bounds the files read and parsed at once (default: the
	// number of CPUs). Memory grows with it, by about one file each.
	Concurrency int
	// Shard restricts the scan to one shard of the files.
	Shard Shard
	// Progress, when set, is called after each file with the count done and
	// the total, never concurrently with itself.
	Progress func(done, total int)
	// NoPrefilter parses every file even when it never mentions a target
	// name. Slower; it surfaces every malformed file, not only those that
	// could have held a target. Without it, skipped files still get a cheap
	// structural check (empty, truncated, merge-conflict markers).
	NoPrefilter bool
}

// Kind says what a finding means.
type Kind string

// Kinds of finding.
const (
	// Locked: a lockfile pins the bad version; it is installed on the next
	// `npm ci` / frozen install.
	Locked Kind = "locked"
	// Listed: an SBOM lists the bad version.
	Listed Kind = "listed"
	// Installed: a node_modules folder holds the bad version.
	Installed Kind = "installed"
	// Exposed: a package.json range admits the bad version, so the next
	// install that resolves afresh can pull it, whatever the lockfile says.
	Exposed Kind = "exposed"
)

// Finding is one bad version found in one file.
type Finding struct {
	File    string `json:"file"`
	Format  Format `json:"format"`
	Kind    Kind   `json:"kind"`
	Package string `json:"package"`
	// Version is the bad version; empty for an exposure to an open range.
	Version string `json:"version"`
	Alias   string `json:"alias,omitempty"`
	// Target is the target that matched: name@version, or a range.
	Target    string   `json:"target"`
	Relation  Relation `json:"relation"`
	Workspace string   `json:"workspace,omitempty"`
	// Path runs from a top-level dependency of Workspace down to the
	// package, as name@version steps; empty when the format gives no graph.
	Path []string `json:"path,omitempty"`
	Line int      `json:"line,omitempty"`
	// Spec and DependencyType describe an exposure: the declared range and
	// the package.json group holding it.
	Spec           string `json:"spec,omitempty"`
	DependencyType string `json:"dependency_type,omitempty"`
	Note           string `json:"note,omitempty"`
}

func (f Finding) key() string {
	return f.File + "\x00" + string(f.Kind) + "\x00" + f.Package + "\x00" + f.Version + "\x00" + f.DependencyType
}

// FileError is a file or folder that could not be read or parsed. It is
// never clean: it may pin a bad version nobody saw.
type FileError struct {
	Path   string `json:"path"`
	Line   int    `json:"line,omitempty"`
	Format Format `json:"format,omitempty"`
	Error  string `json:"error"`
}

// ScannedFile records one file the scan looked at.
type ScannedFile struct {
	Path   string `json:"path"`
	Format Format `json:"format"`
	// Packages is how many packages the file pins; -1 when it was not
	// parsed because it never mentions a target name.
	Packages int `json:"packages"`
}

// Result is the outcome of a Scan, or of a Merge of several. It is written
// as one versioned JSON document and read back by ReadJSON for merging.
type Result struct {
	SchemaVersion int           `json:"schema_version"`
	Targets       []Target      `json:"targets"`
	Ranges        []RangeTarget `json:"ranges,omitempty"`
	// Shards lists the shards the result covers; empty for a full scan.
	Shards   []Shard       `json:"shards,omitempty"`
	Files    []ScannedFile `json:"files"`
	Findings []Finding     `json:"findings"`
	Errors   []FileError   `json:"errors"`
}

// SchemaVersion is the version of the Result JSON document.
const SchemaVersion = 1

// Clean reports a scan that found nothing and read every file.
func (r *Result) Clean() bool { return len(r.Findings) == 0 && len(r.Errors) == 0 }

// Incomplete reports files that could not be read: the CLI's exit code must
// say so even when there are no findings.
func (r *Result) Incomplete() bool { return len(r.Errors) > 0 }

type scanFile struct {
	path   string
	rel    string
	format Format
}

// Scan walks opts.Paths and reports every file that pins, lists, installs
// or admits a target version. Per-file problems are in Result.Errors; the
// returned error is for bad options or cancellation (then the partial
// result comes with it).
func Scan(ctx context.Context, opts Options) (*Result, error) {
	if opts.Targets.Len() == 0 {
		return nil, errors.New("inventory: no targets to look for")
	}
	if len(opts.Paths) == 0 {
		return nil, errors.New("inventory: no paths to scan")
	}
	if err := opts.Shard.validate(); err != nil {
		return nil, err
	}
	res := &Result{
		SchemaVersion: SchemaVersion,
		Targets:       opts.Targets.Exact(),
		Ranges:        opts.Targets.Ranges(),
		Files:         []ScannedFile{},
		Findings:      []Finding{},
		Errors:        []FileError{},
	}
	if opts.Shard.N > 1 {
		res.Shards = []Shard{opts.Shard}
	}
	files, walkErrs := collect(ctx, opts)
	res.Errors = append(res.Errors, walkErrs...)
	owned := files[:0]
	for _, f := range files {
		if opts.Shard.Owns(f.rel) {
			owned = append(owned, f)
		}
	}
	files = owned

	n := opts.Concurrency
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	m := newMatcher(opts.Targets)
	outs := make([]fileOutcome, len(files))
	var (
		mu   sync.Mutex
		done int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for i := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			outs[i] = scanOne(files[i], m, opts)
			if opts.Progress != nil {
				mu.Lock()
				done++
				opts.Progress(done, len(files))
				mu.Unlock()
			}
			return nil
		})
	}
	werr := g.Wait()
	for i, o := range outs {
		if o.file.Path == "" {
			continue // not reached before cancellation
		}
		_ = i
		res.Files = append(res.Files, o.file)
		res.Findings = append(res.Findings, o.findings...)
		if o.err != nil {
			res.Errors = append(res.Errors, *o.err)
		}
	}
	res.sort()
	if werr == nil {
		werr = ctx.Err()
	}
	return res, werr
}

// collect lists the files to scan, sorted, with their shard key.
func collect(ctx context.Context, opts Options) ([]scanFile, []FileError) {
	var files []scanFile
	var errs []FileError
	seen := map[string]bool{}
	add := func(f scanFile) {
		if !seen[f.path] {
			seen[f.path] = true
			files = append(files, f)
		}
	}
	for _, root := range opts.Paths {
		st, err := os.Stat(root)
		if err != nil {
			errs = append(errs, FileError{Path: root, Error: err.Error()})
			continue
		}
		if !st.IsDir() {
			add(scanFile{path: root, rel: filepath.ToSlash(filepath.Clean(root)), format: FormatForName(root)})
			continue
		}
		walkErr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				// An unreadable folder may hold lockfiles: say so.
				errs = append(errs, FileError{Path: p, Error: err.Error()})
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			name := d.Name()
			if d.IsDir() {
				if p != root && (name == ".git" || (name == "node_modules" && !opts.IncludeNodeModules)) {
					return fs.SkipDir
				}
				return nil
			}
			f := FormatForName(p)
			if f == FormatUnknown {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
					return nil
				}
			} else if !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				rel = p
			}
			add(scanFile{path: p, rel: filepath.ToSlash(rel), format: f})
			return nil
		})
		if walkErr != nil && !errors.Is(walkErr, ctx.Err()) {
			errs = append(errs, FileError{Path: root, Error: walkErr.Error()})
		}
	}
	// bun.lockb next to a bun.lock is the older copy of the same data.
	hasText := map[string]bool{}
	for _, f := range files {
		if f.format == FormatBunLock {
			hasText[filepath.Dir(f.path)] = true
		}
	}
	kept := files[:0]
	for _, f := range files {
		if f.format == FormatBunBinary && hasText[filepath.Dir(f.path)] {
			continue
		}
		kept = append(kept, f)
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].path < kept[j].path })
	return kept, errs
}

// matcher holds the prefilter needles for a target set.
type matcher struct {
	t *Targets
	// needles per name: the name without a leading '@', which also matches
	// %40-encoded purls and pnpm 5 paths; versions are the exact bad
	// versions, all of which must be absent for the name to be ruled out.
	names []matcherName
}

type matcherName struct {
	needle   []byte
	versions [][]byte // nil when a range target exists (any version may match)
}

func newMatcher(t *Targets) *matcher {
	m := &matcher{t: t}
	for _, n := range t.Names() {
		e := t.byName[n]
		mn := matcherName{needle: []byte(strings.TrimPrefix(n, "@"))}
		if len(e.ranges) == 0 {
			for v := range e.versions {
				mn.versions = append(mn.versions, []byte(v))
			}
		}
		m.names = append(m.names, mn)
	}
	return m
}

// mentions is the prefilter: a file that never mentions a target name, or
// mentions it but none of its bad versions, cannot pin a bad version.
// Every format writes names and versions literally (purls %40-encode the
// scope's '@' only, hence the needle without it). For package.json the
// version test is skipped: a range admits versions it does not spell.
func (m *matcher) mentions(data []byte, checkVersions bool) bool {
	for _, n := range m.names {
		if !bytes.Contains(data, n.needle) {
			continue
		}
		if !checkVersions || n.versions == nil {
			return true
		}
		for _, v := range n.versions {
			if bytes.Contains(data, v) {
				return true
			}
		}
	}
	return false
}

type fileOutcome struct {
	file     ScannedFile
	findings []Finding
	err      *FileError
}

func scanOne(f scanFile, m *matcher, opts Options) (out fileOutcome) {
	out.file = ScannedFile{Path: f.path, Format: f.format, Packages: -1}
	fail := func(err error) {
		fe := FileError{Path: f.path, Format: out.file.Format, Error: err.Error()}
		var pe *ParseError
		if errors.As(err, &pe) {
			fe.Line = pe.Line
			fe.Error = pe.Msg
		}
		out.err = &fe
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		fail(err)
		return out
	}
	format := f.format
	if format == FormatUnknown || format == FormatCycloneDX || format == FormatSPDX {
		// Explicit files of any name, and SBOM names that do not say which
		// of the two standards they hold.
		if s := Sniff(data); s != FormatUnknown && (format == FormatUnknown || s == FormatCycloneDX || s == FormatSPDX) {
			format = s
		}
	}
	out.file.Format = format
	switch format {
	case FormatUnknown:
		fail(errors.New("not a lockfile, SBOM or package.json inventory can read"))
		return out
	case FormatBunBinary:
		_, err := ExtractFormat(format, data)
		fail(err)
		return out
	}
	if !opts.NoPrefilter && !m.mentions(data, format != FormatManifest) {
		if err := quickCheck(format, data); err != nil {
			fail(err)
		}
		return out
	}
	if format == FormatManifest {
		return scanManifest(f, data, m.t, out)
	}
	pkgs, perr := ExtractFormat(format, data)
	out.file.Packages = len(pkgs)
	if perr != nil {
		fail(perr)
	}
	kind := Locked
	switch format {
	case FormatCycloneDX, FormatSPDX:
		kind = Listed
	case formatInstalled:
		kind = Installed
	}
	type hit struct {
		pkg    Package
		target string
	}
	var hits []hit
	seen := map[string]bool{}
	for _, p := range pkgs {
		t, ok := m.t.Match(p.Name, p.Version)
		if !ok {
			continue
		}
		k := p.Name + "@" + p.Version
		if seen[k] {
			continue
		}
		seen[k] = true
		hits = append(hits, hit{p, t})
	}
	if len(hits) == 0 {
		return out
	}
	places := placements(format, f.path, data, m.t)
	for _, h := range hits {
		fd := Finding{
			File: f.path, Format: format, Kind: kind,
			Package: h.pkg.Name, Version: h.pkg.Version, Alias: h.pkg.Alias,
			Target: h.target, Relation: Unknown, Line: h.pkg.Line,
		}
		if kind == Installed {
			fd.Relation = Unknown
		}
		if pl, ok := places[h.pkg.Name+"@"+h.pkg.Version]; ok {
			fd.Relation, fd.Workspace, fd.Path = pl.relation, pl.workspace, pl.path
		}
		out.findings = append(out.findings, fd)
	}
	return out
}

// placements builds the dependency graph of a file that matched and places
// every matching package in it.
func placements(format Format, path string, data []byte, t *Targets) map[string]placement {
	req := &graphReq{g: &graph{}}
	switch format {
	case FormatNpmLock, FormatYarnLock:
		// npm v1 and yarn v1 do not record the project's own dependencies.
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "package.json")); err == nil {
			if m, err := parseManifest(b); err == nil {
				req.manifest = m
			}
		}
	}
	switch format {
	case FormatNpmLock:
		parseNpmLock(data, req) //nolint:errcheck // errors were reported by the first pass
	case FormatYarnLock:
		parseYarnLock(data, req) //nolint:errcheck
	case FormatPnpmLock:
		parsePnpmLock(data, req) //nolint:errcheck
	case FormatBunLock:
		parseBunLock(data, req) //nolint:errcheck
	case FormatCycloneDX:
		parseCycloneDX(data, req) //nolint:errcheck
	default:
		return nil
	}
	return req.g.place(func(p Package) bool {
		_, ok := t.Match(p.Name, p.Version)
		return ok
	})
}

func scanManifest(f scanFile, data []byte, t *Targets, out fileOutcome) fileOutcome {
	m, err := parseManifest(data)
	if err != nil {
		fe := FileError{Path: f.path, Format: FormatManifest, Error: err.Error()}
		if pe, ok := err.(*ParseError); ok {
			fe.Line, fe.Error = pe.Line, pe.Msg
		}
		out.err = &fe
		return out
	}
	out.file.Packages = len(m.depSpecs())
	for _, x := range m.exposures(t) {
		local := x.name
		if x.alias != "" {
			local = x.alias
		}
		out.findings = append(out.findings, Finding{
			File: f.path, Format: FormatManifest, Kind: Exposed,
			Package: x.name, Version: x.version, Alias: x.alias, Target: x.target,
			// The manifest is the workspace: File names it.
			Relation: Direct, Path: []string{x.name + "@" + x.spec},
			Line: manifestLine(data, x.group, local), Spec: x.spec, DependencyType: x.group, Note: x.note,
		})
	}
	return out
}

// manifestLine finds the line declaring a dependency: the first `"name"`
// after the group's key.
func manifestLine(data []byte, group, name string) int {
	g := bytes.Index(data, []byte(`"`+group+`"`))
	if g < 0 {
		return 0
	}
	i := bytes.Index(data[g:], []byte(`"`+name+`"`))
	if i < 0 {
		return 0
	}
	return lineAt(data, g+i)
}

// quickCheck is the structural check of a file the prefilter skipped: it
// catches the damage that actually happens to lockfiles (emptied, cut
// short, merge conflict left in, an HTML error page saved instead) without
// parsing.
func quickCheck(format Format, data []byte) error {
	d := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	if len(d) == 0 {
		return perr(0, "empty file")
	}
	if bytes.HasPrefix(d, []byte("<<<<<<< ")) || bytes.Contains(d, []byte("\n<<<<<<< ")) {
		return perr(lineAt(data, bytes.Index(data, []byte("<<<<<<< "))), "unresolved merge conflict markers")
	}
	switch format {
	case FormatNpmLock, FormatBunLock, FormatCycloneDX, FormatSPDX, FormatManifest, formatInstalled:
		if d[0] != '{' || d[len(d)-1] != '}' {
			return perr(0, "not a complete JSON object (truncated?)")
		}
		if (format == FormatNpmLock || format == FormatBunLock) && !bytes.Contains(d, []byte(`"lockfileVersion"`)) {
			return perr(0, "no lockfileVersion: not a lockfile a package manager wrote (truncated or emptied?)")
		}
	case FormatPnpmLock:
		if !bytes.HasPrefix(d, []byte("lockfileVersion:")) && !bytes.Contains(d, []byte("\nlockfileVersion:")) {
			return perr(0, "no lockfileVersion: not a lockfile pnpm wrote (truncated or emptied?)")
		}
	case FormatYarnLock:
		for _, line := range bytes.SplitN(d, nl, 64) {
			line = bytes.TrimRight(line, "\r ")
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			if line[0] == ' ' || line[len(line)-1] != ':' {
				return perr(0, "not a yarn lockfile: first entry %q", clip(line))
			}
			break
		}
	}
	return nil
}

func (r *Result) sort() {
	sort.Slice(r.Files, func(i, j int) bool { return r.Files[i].Path < r.Files[j].Path })
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.DependencyType < b.DependencyType
	})
	sort.SliceStable(r.Errors, func(i, j int) bool {
		if r.Errors[i].Path != r.Errors[j].Path {
			return r.Errors[i].Path < r.Errors[j].Path
		}
		return r.Errors[i].Line < r.Errors[j].Line
	})
}
