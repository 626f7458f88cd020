package forensics

import (
	"fmt"
	"slices"
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
)

// Diff is what a suspect version changed relative to the base (last known-good) version.
type Diff struct {
	Base        string           `json:"base"`
	Added       []FileChange     `json:"added"`
	Removed     []FileChange     `json:"removed"`
	Changed     []FileChange     `json:"changed"`
	PackageJSON *PackageJSONDiff `json:"package_json,omitempty"`
}

// FileChange is one file added, removed or changed.
type FileChange struct {
	Path      string   `json:"path"`
	Type      string   `json:"type"`
	OldSize   int64    `json:"old_size,omitempty"`
	NewSize   int64    `json:"new_size,omitempty"`
	OldSHA256 string   `json:"old_sha256,omitempty"`
	NewSHA256 string   `json:"new_sha256,omitempty"`
	Entropy   float64  `json:"entropy,omitempty"`
	Flags     []string `json:"flags,omitempty"` // binary, minified, high-entropy
	// UnifiedDiff is set for changed small text files; DiffOmitted says why it is not.
	UnifiedDiff string `json:"unified_diff,omitempty"`
	DiffOmitted string `json:"diff_omitted,omitempty"`
}

// Thresholds of the content flags. Random base64 measures about 6.0 bits per byte; minified
// JavaScript 5.0 to 5.5; hand-written source 4.5 to 5.0.
const (
	highEntropyBits  = 5.8
	highEntropyBytes = 4096
	maxUnifiedBytes  = 64 << 10
)

func contentFlags(f *File) []string {
	var flags []string
	if f.Binary {
		flags = append(flags, "binary")
	}
	if f.Minified {
		flags = append(flags, "minified")
	}
	if highEntropy(f) {
		flags = append(flags, "high-entropy")
	}
	return flags
}

func highEntropy(f *File) bool {
	return !f.Binary && f.Size >= highEntropyBytes && f.Entropy >= highEntropyBits
}

// diffFiles compares two tarballs' files. base may be nil (no known-good): every file is added.
func diffFiles(baseVersion string, base, cur *Contents) *Diff {
	d := &Diff{Base: baseVersion, Added: []FileChange{}, Removed: []FileChange{}, Changed: []FileChange{}}
	var baseFiles map[string]*File
	if base != nil {
		baseFiles = base.Files
	}
	for _, p := range sortedPaths(cur) {
		f := cur.Files[p]
		old, ok := baseFiles[p]
		if !ok {
			d.Added = append(d.Added, FileChange{Path: p, Type: f.Type, NewSize: f.Size, NewSHA256: f.SHA256, Entropy: f.Entropy, Flags: contentFlags(f)})
			continue
		}
		if old.SHA256 == f.SHA256 && old.Type == f.Type && old.Linkname == f.Linkname {
			continue
		}
		fc := FileChange{Path: p, Type: f.Type, OldSize: old.Size, NewSize: f.Size, OldSHA256: old.SHA256, NewSHA256: f.SHA256, Entropy: f.Entropy, Flags: contentFlags(f)}
		fc.UnifiedDiff, fc.DiffOmitted = unified(p, old, f)
		d.Changed = append(d.Changed, fc)
	}
	if base != nil {
		for _, p := range sortedPaths(base) {
			if _, ok := cur.Files[p]; !ok {
				f := base.Files[p]
				d.Removed = append(d.Removed, FileChange{Path: p, Type: f.Type, OldSize: f.Size, OldSHA256: f.SHA256})
			}
		}
	}
	return d
}

// unified renders a unified diff of two small text files, or says why it does not.
func unified(p string, old, cur *File) (string, string) {
	switch {
	case old.Type != TypeFile || cur.Type != TypeFile:
		return "", "not a regular file"
	case old.Binary || cur.Binary:
		return "", "binary"
	case old.text == nil || cur.text == nil:
		return "", "too large to diff"
	case old.Minified || cur.Minified:
		return "", "minified (one long line: a diff would be the whole file)"
	}
	edits := udiff.Lines(string(old.text), string(cur.text))
	out, err := udiff.ToUnified("a/"+p, "b/"+p, string(old.text), edits, udiff.DefaultContextLines)
	if err != nil {
		return "", fmt.Sprintf("diff failed: %v", err)
	}
	if len(out) > maxUnifiedBytes {
		// Cut at a line end so no rune or line is split.
		cut := strings.LastIndexByte(out[:maxUnifiedBytes], '\n') + 1
		return out[:cut] + "… (diff truncated at 64 KiB)\n", ""
	}
	return out, ""
}

func sortedPaths(c *Contents) []string {
	ps := slices.Clone(c.Order)
	slices.Sort(ps)
	return ps
}
