package inventory

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Format names a file format inventory reads.
type Format string

// The formats inventory reads.
const (
	FormatNpmLock   Format = "package-lock"   // package-lock.json, npm-shrinkwrap.json, node_modules/.package-lock.json
	FormatYarnLock  Format = "yarn.lock"      // yarn v1 and berry (v2+)
	FormatPnpmLock  Format = "pnpm-lock"      // pnpm-lock.yaml 5.x, 6.x, 9.x
	FormatBunLock   Format = "bun.lock"       // bun text lockfile
	FormatManifest  Format = "package.json"   // exposure by range; installed version under node_modules
	FormatCycloneDX Format = "cyclonedx"      // CycloneDX JSON
	FormatSPDX      Format = "spdx"           // SPDX 2.x JSON, bare or wrapped as GitHub exports it
	FormatBunBinary Format = "bun.lockb"      // recognised only to be reported as unreadable
	FormatUnknown   Format = ""               // sniffing failed
	formatInstalled Format = "installed-json" // package.json inside node_modules
)

// Relation says how a package reaches the project.
type Relation string

// Relations.
const (
	Direct     Relation = "direct"
	Transitive Relation = "transitive"
	Unknown    Relation = "unknown"
)

// Package is one name@version a file pins. Name is always the real registry
// name: an alias (npm:real@1.0.0, yarn/pnpm/bun aliases) is reported under the
// real name, with the local name in Alias.
type Package struct {
	Name string `json:"name"`
	// Version is the exact version; empty when the file pins a git, file,
	// link or URL source without stating a version (then Source says what).
	Version string `json:"version"`
	Alias   string `json:"alias,omitempty"`
	Source  string `json:"source,omitempty"`
	// Spec is the declared range, for manifests and importers.
	Spec string `json:"spec,omitempty"`
	// Line is the 1-based line of the entry in its file, 0 when unknown.
	Line int `json:"line,omitempty"`

	off int // byte offset of the entry, turned into Line after parsing
}

// Extract reads one file and returns every package it pins. The format comes
// from the file name when it is a known one, else from the content. A parse
// error is returned together with whatever could be extracted before it.
func Extract(path string) ([]Package, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	_, pkgs, err := ExtractBytes(path, data)
	return pkgs, err
}

// ExtractBytes is Extract on bytes already read; name is used to pick the
// format (and in error messages). It returns the format it used.
func ExtractBytes(name string, data []byte) (Format, []Package, error) {
	f := FormatForName(name)
	if f == FormatUnknown || f == FormatCycloneDX || f == FormatSPDX {
		// bom.json and friends may hold either SBOM standard.
		if s := Sniff(data); f == FormatUnknown || s == FormatCycloneDX || s == FormatSPDX {
			f = s
		}
	}
	if f == FormatUnknown {
		return f, nil, &ParseError{File: name, Msg: "not a lockfile, SBOM or package.json inventory can read"}
	}
	pkgs, err := ExtractFormat(f, data)
	return f, pkgs, withFile(err, name)
}

// ParseError is a problem found in a file, with the line when known.
type ParseError struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"msg"`
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	switch {
	case e.Line > 0 && e.File != "":
		fmt.Fprintf(&b, ":%d", e.Line)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func perr(line int, format string, args ...any) *ParseError {
	return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// withFile names the file in a parse error.
func withFile(err error, file string) error {
	if err == nil {
		return nil
	}
	if pe, ok := err.(*ParseError); ok {
		c := *pe
		c.File = file
		return &c
	}
	return &ParseError{File: file, Msg: err.Error()}
}

// ExtractFormat parses data as format f. Errors are *ParseError with the
// line but not the file name, which the caller adds.
func ExtractFormat(f Format, data []byte) ([]Package, error) {
	var pkgs []Package
	var err error
	switch f {
	case FormatNpmLock:
		pkgs, err = parseNpmLock(data, nil)
	case FormatYarnLock:
		pkgs, err = parseYarnLock(data, nil)
	case FormatPnpmLock:
		pkgs, err = parsePnpmLock(data, nil)
	case FormatBunLock:
		pkgs, err = parseBunLock(data, nil)
	case FormatCycloneDX:
		pkgs, err = parseCycloneDX(data, nil)
	case FormatSPDX:
		pkgs, err = parseSPDX(data)
	case FormatManifest:
		var m *manifest
		m, err = parseManifest(data)
		if m != nil {
			pkgs = m.declared()
		}
	case formatInstalled:
		var m *manifest
		m, err = parseManifest(data)
		if m != nil && m.Name != "" && m.Version != "" {
			pkgs = []Package{{Name: m.Name, Version: m.Version, Line: 1}}
		}
	case FormatBunBinary:
		err = perr(0, "binary bun.lockb cannot be read; run `bun install --save-text-lockfile` to get a bun.lock")
	default:
		err = perr(0, "unknown format %q", f)
	}
	setLines(data, pkgs)
	return pkgs, err
}

// setLines turns byte offsets into line numbers in one pass when the
// offsets grow, which they do for every scanner here.
func setLines(data []byte, pkgs []Package) {
	line, at := 1, 0
	for i := range pkgs {
		off := pkgs[i].off
		if off <= 0 || pkgs[i].Line != 0 {
			continue
		}
		if off < at {
			line, at = 1, 0
		}
		if off > len(data) {
			off = len(data)
		}
		line += bytes.Count(data[at:off], nl)
		at = off
		pkgs[i].Line = line
	}
}

var nl = []byte{'\n'}

// lineAt returns the 1-based line of a byte offset, for error messages.
func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], nl) + 1
}

// FormatForName recognises a file by its base name alone, the way a directory
// walk does. It returns FormatUnknown for names that need sniffing.
func FormatForName(path string) Format {
	base := filepath.Base(path)
	switch base {
	case "package-lock.json", "npm-shrinkwrap.json", ".package-lock.json":
		return FormatNpmLock
	case "yarn.lock":
		return FormatYarnLock
	case "pnpm-lock.yaml":
		return FormatPnpmLock
	case "bun.lock":
		return FormatBunLock
	case "bun.lockb":
		return FormatBunBinary
	case "package.json":
		if inNodeModules(path) {
			return formatInstalled
		}
		return FormatManifest
	case "bom.json":
		return FormatCycloneDX
	}
	switch {
	case strings.HasSuffix(base, ".cdx.json"):
		return FormatCycloneDX
	case strings.HasSuffix(base, ".spdx.json"):
		return FormatSPDX
	}
	return FormatUnknown
}

func inNodeModules(path string) bool {
	p := filepath.ToSlash(path)
	return strings.Contains(p, "/node_modules/") || strings.HasPrefix(p, "node_modules/")
}

// Sniff guesses the format of a file whose name says nothing, from its
// first bytes and a few markers. It errs towards a format whose parser will
// then fail loudly rather than towards FormatUnknown for anything JSON-ish.
func Sniff(data []byte) Format {
	d := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(d) == 0 {
		return FormatUnknown
	}
	head := d
	if len(head) > 64<<10 {
		head = head[:64<<10]
	}
	if d[0] == '{' {
		switch {
		case bytes.Contains(head, []byte(`"bomFormat"`)):
			return FormatCycloneDX
		case bytes.Contains(head, []byte(`"spdxVersion"`)) || bytes.Contains(head, []byte(`"SPDXID"`)):
			return FormatSPDX
		case bytes.Contains(head, []byte(`"lockfileVersion"`)):
			if looksLikeBun(head) {
				return FormatBunLock
			}
			return FormatNpmLock
		case bytes.Contains(head, []byte(`"dependencies"`)) || bytes.Contains(head, []byte(`"devDependencies"`)) ||
			bytes.Contains(head, []byte(`"name"`)):
			return FormatManifest
		case bytes.Equal(bytes.TrimSpace(d), []byte("{}")):
			return FormatNpmLock
		}
		return FormatUnknown
	}
	if bytes.HasPrefix(d, []byte("lockfileVersion:")) || bytes.Contains(head, []byte("\nlockfileVersion:")) {
		return FormatPnpmLock
	}
	if bytes.Contains(head, []byte("# yarn lockfile v1")) || bytes.Contains(head, []byte(`by running "yarn install"`)) || bytes.Contains(head, []byte("\n__metadata:")) ||
		bytes.HasPrefix(d, []byte("__metadata:")) || looksLikeYarnEntry(head) {
		return FormatYarnLock
	}
	return FormatUnknown
}

// looksLikeBun tells bun.lock from package-lock.json: bun always writes
// trailing commas and keeps a top-level "workspaces" object whose root key is
// "", while npm writes strict JSON.
func looksLikeBun(head []byte) bool {
	for i := 0; i < len(head); i++ {
		if head[i] != ',' {
			continue
		}
		j := i + 1
		for j < len(head) && (head[j] == ' ' || head[j] == '\n' || head[j] == '\r' || head[j] == '\t') {
			j++
		}
		if j < len(head) && (head[j] == '}' || head[j] == ']') {
			return true
		}
	}
	return bytes.Contains(head, []byte(`"workspaces": {`)) && bytes.Contains(head, []byte(`"": {`)) &&
		!bytes.Contains(head, []byte(`"packages": {
    "": {`))
}

// looksLikeYarnEntry spots a yarn entry: an unindented line ending in ':'
// followed by an indented version line.
func looksLikeYarnEntry(head []byte) bool {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			return false
		}
		line := bytes.TrimRight(head[:i], "\r")
		head = head[i+1:]
		if len(line) == 0 || line[0] == '#' || line[0] == ' ' || line[len(line)-1] != ':' {
			continue
		}
		next := head
		if j := bytes.IndexByte(next, '\n'); j >= 0 {
			next = next[:j]
		}
		t := bytes.TrimLeft(next, " ")
		return len(t) < len(next) && (bytes.HasPrefix(t, []byte("version")) || bytes.HasPrefix(t, []byte(`"version"`)))
	}
	return false
}

// splitVersion separates a lockfile version string into an exact version
// and, for git/file/link/URL pins, the source: those are not registry
// versions, so they never match a target by version but are still reported.
func splitVersion(v string) (version, source string) {
	if v == "" {
		return "", ""
	}
	if isExactVersion(v) {
		return v, ""
	}
	return "", v
}

// isExactVersion accepts what can be an npm registry version: it starts with
// a digit (or "v" then a digit) and holds no URL or protocol characters.
func isExactVersion(v string) bool {
	if v == "" {
		return false
	}
	c := v[0]
	if c == 'v' && len(v) > 1 {
		c = v[1]
	}
	if c < '0' || c > '9' {
		return false
	}
	return strings.IndexAny(v, ":/# ") < 0
}

// splitNameAt splits "name@rest" where name may be scoped ("@s/n@rest").
// ok is false when there is no '@' after the name.
func splitNameAt(s string) (name, rest string, ok bool) {
	from := 0
	if strings.HasPrefix(s, "@") {
		from = 1
	}
	i := strings.IndexByte(s[from:], '@')
	if i < 0 {
		return s, "", false
	}
	return s[:from+i], s[from+i+1:], true
}
