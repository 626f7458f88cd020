package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// EvidenceSchemaVersion is the manifest.json schema this npmir writes and reads.
const EvidenceSchemaVersion = 1

// Evidence kinds.
const (
	EvidencePackument = "packument"
	EvidenceTarball   = "tarball"
)

// EvidenceEntry is one preserved file, as listed in manifest.json.
type EvidenceEntry struct {
	// Path is relative to the evidence folder, slash-separated.
	Path    string `json:"path"`
	Kind    string `json:"kind"`
	Package string `json:"package"`
	Version string `json:"version,omitempty"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	// SourceURL is where the bytes came from, without credentials, query or fragment.
	SourceURL string    `json:"source_url,omitempty"`
	SavedAt   time.Time `json:"saved_at"`
}

// EvidenceManifest is manifest.json.
type EvidenceManifest struct {
	SchemaVersion int             `json:"schema_version"`
	Entries       []EvidenceEntry `json:"entries"`
}

// EvidenceProblem is a preserved file that no longer matches the manifest.
type EvidenceProblem struct {
	Path    string `json:"path"`
	Problem string `json:"problem"`
}

// EvidenceStore keeps copies of what an incident found (packuments, tarballs of bad versions,
// mirror copies) under <incident dir>/evidence/, with a SHA-256 manifest, so they survive the
// removal steps. Files are named from package and version, sanitised, never from anything inside an
// archive. Saving is idempotent: the same bytes for the same package and version are stored once,
// which makes a resumed run safe. Safe for concurrent use within one process; across processes the
// incident's state lock serialises writers.
type EvidenceStore struct {
	dir string
	now func() time.Time

	mu sync.Mutex
	m  EvidenceManifest
	// Concurrent saves share one manifest write (group commit, like the state file's);
	// dirtyDirs are folders holding renames not yet made durable.
	gc        groupCommit
	dirtyDirs map[string]bool
}

// OpenEvidence opens (creating it if needed) the evidence folder of an incident. A manifest that
// does not parse, or comes from a newer npmir, is refused and left untouched.
func OpenEvidence(incidentDir string) (*EvidenceStore, error) {
	dir := filepath.Join(incidentDir, "evidence")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("evidence folder %s: %w", dir, err)
	}
	s := &EvidenceStore{dir: dir, now: time.Now, m: EvidenceManifest{SchemaVersion: EvidenceSchemaVersion, Entries: []EvidenceEntry{}}, dirtyDirs: map[string]bool{}}
	s.gc = newGroupCommit(&s.mu)
	data, err := os.ReadFile(s.manifestPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("evidence manifest %s: %w", s.manifestPath(), err)
	}
	var m EvidenceManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("evidence manifest %s does not parse (%v); left untouched: inspect or move it aside", s.manifestPath(), err)
	}
	if m.SchemaVersion > EvidenceSchemaVersion {
		return nil, fmt.Errorf("evidence manifest %s has schema_version %d, newer than this npmir reads (%d); upgrade npmir", s.manifestPath(), m.SchemaVersion, EvidenceSchemaVersion)
	}
	if m.Entries == nil {
		m.Entries = []EvidenceEntry{}
	}
	s.m = m
	return s, nil
}

// Dir is the evidence folder.
func (s *EvidenceStore) Dir() string { return s.dir }

func (s *EvidenceStore) manifestPath() string { return filepath.Join(s.dir, "manifest.json") }

// Entries returns a copy of the manifest's entries.
func (s *EvidenceStore) Entries() []EvidenceEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.m.Entries)
}

// SavePackument preserves a packument as fetched. A packument changes as containment proceeds
// (deprecations, tags), so each distinct content is kept, named by its hash.
func (s *EvidenceStore) SavePackument(name, sourceURL string, raw []byte) (path, sha string, err error) {
	e, err := s.Save(EvidencePackument, name, "", sourceURL, bytes.NewReader(raw))
	return e.Path, e.SHA256, err
}

// SaveTarball preserves a version's tarball, streaming it to disk.
func (s *EvidenceStore) SaveTarball(name, version, sourceURL string, r io.Reader) (path, sha string, err error) {
	e, err := s.Save(EvidenceTarball, name, version, sourceURL, r)
	return e.Path, e.SHA256, err
}

// Save streams r into the store as kind (packument, tarball, or another kind such as a mirror
// copy) of package@version and records it in the manifest. If the same kind, package, version and
// content are already stored and intact, nothing is written and the existing entry is returned.
func (s *EvidenceStore) Save(kind, pkg, version, sourceURL string, r io.Reader) (EvidenceEntry, error) {
	what := pkg
	if version != "" {
		what += "@" + version
	}
	sub := evidenceSafeName(kind) + "s"
	if err := os.MkdirAll(filepath.Join(s.dir, sub), 0o700); err != nil {
		return EvidenceEntry{}, fmt.Errorf("save %s evidence of %s: %w", kind, what, err)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, sub), ".tmp-*")
	if err != nil {
		return EvidenceEntry{}, fmt.Errorf("save %s evidence of %s: %w", kind, what, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return EvidenceEntry{}, fmt.Errorf("save %s evidence of %s: write %s: %w", kind, what, tmpName, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gc.err != nil {
		return EvidenceEntry{}, s.gc.err
	}
	for _, e := range s.m.Entries {
		if e.Kind == kind && e.Package == pkg && e.Version == version && e.SHA256 == sum && s.intact(e) {
			// The entry may belong to a manifest write still under way: wait for it.
			return e, s.gc.waitLocked(s.gc.version, s.snapshotLocked)
		}
	}
	rel, err := s.pickPath(sub, kind, pkg, version, sum)
	if err != nil {
		return EvidenceEntry{}, fmt.Errorf("save %s evidence of %s: %w", kind, what, err)
	}
	if err := os.Rename(tmpName, filepath.Join(s.dir, filepath.FromSlash(rel))); err != nil {
		return EvidenceEntry{}, fmt.Errorf("save %s evidence of %s: %w", kind, what, err)
	}
	s.dirtyDirs[filepath.Join(s.dir, sub)] = true
	e := EvidenceEntry{Path: rel, Kind: kind, Package: pkg, Version: version, SHA256: sum, Size: n, SourceURL: evidenceRedactURL(sourceURL), SavedAt: s.now().UTC()}
	// Replace an entry for the same path (a file rewritten after it went missing), else append.
	entries := slices.DeleteFunc(slices.Clone(s.m.Entries), func(x EvidenceEntry) bool { return x.Path == rel })
	s.m = EvidenceManifest{SchemaVersion: EvidenceSchemaVersion, Entries: append(entries, e)}
	if err := s.gc.waitLocked(s.gc.changed(), s.snapshotLocked); err != nil {
		return EvidenceEntry{}, fmt.Errorf("save %s evidence of %s: %w", kind, what, err)
	}
	return e, nil
}

// snapshotLocked captures the manifest and the folders to sync; the returned function makes the
// renamed files durable, then writes the manifest atomically, so the manifest never lists a file
// that a crash could lose.
func (s *EvidenceStore) snapshotLocked() func() error {
	dirs := s.dirtyDirs
	s.dirtyDirs = map[string]bool{}
	data, err := json.MarshalIndent(s.m, "", "  ")
	return func() error {
		for d := range dirs {
			if err == nil {
				err = evidenceSyncDir(d)
			}
		}
		if err == nil {
			err = WriteFileAtomic(s.manifestPath(), append(data, '\n'), 0o600)
		}
		if err != nil {
			return fmt.Errorf("write evidence manifest %s: %w", s.manifestPath(), err)
		}
		return nil
	}
}

// pickPath names a new file: <kind>/<package>-<version>.<ext>, or with the content hash added
// when that name already holds other bytes (a mirror serving a different tarball for the same
// version is itself evidence). Packuments always carry the hash: they change during an incident.
func (s *EvidenceStore) pickPath(sub, kind, pkg, version, sum string) (string, error) {
	base := evidenceSafeName(pkg)
	if version != "" {
		base += "-" + evidenceSafeName(version)
	}
	ext := ".bin"
	switch kind {
	case EvidencePackument:
		ext = ".json"
	case EvidenceTarball:
		ext = ".tgz"
	}
	candidates := []string{sub + "/" + base + ext, sub + "/" + base + "." + sum[:16] + ext, sub + "/" + base + "." + sum + ext}
	if kind == EvidencePackument {
		candidates = candidates[1:]
	}
	for _, rel := range candidates {
		var owner *EvidenceEntry
		for i := range s.m.Entries {
			if s.m.Entries[i].Path == rel {
				owner = &s.m.Entries[i]
			}
		}
		// Free, or ours (same bytes whose file went missing or was damaged: rewrite it).
		if owner == nil || owner.SHA256 == sum {
			return rel, nil
		}
	}
	return "", fmt.Errorf("no free file name for %s %s@%s", kind, pkg, version)
}

// intact reports whether e's file is present with its recorded size and hash, so a damaged copy
// is rewritten rather than trusted.
func (s *EvidenceStore) intact(e EvidenceEntry) bool {
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(e.Path)))
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return err == nil && n == e.Size && hex.EncodeToString(h.Sum(nil)) == e.SHA256
}

// Verify re-hashes every file against the manifest and lists files that are missing, altered, or
// present without a manifest entry. The error is for a folder that cannot be read at all.
func (s *EvidenceStore) Verify() ([]EvidenceProblem, error) {
	s.mu.Lock()
	entries := slices.Clone(s.m.Entries)
	s.mu.Unlock()
	var probs []EvidenceProblem
	listed := map[string]bool{"manifest.json": true}
	for _, e := range entries {
		listed[e.Path] = true
		f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(e.Path)))
		if err != nil {
			probs = append(probs, EvidenceProblem{Path: e.Path, Problem: fmt.Sprintf("cannot be read: %v", err)})
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		sum := hex.EncodeToString(h.Sum(nil))
		switch {
		case err != nil:
			probs = append(probs, EvidenceProblem{Path: e.Path, Problem: fmt.Sprintf("read failed: %v", err)})
		case n != e.Size:
			probs = append(probs, EvidenceProblem{Path: e.Path, Problem: fmt.Sprintf("size is %d, manifest says %d", n, e.Size)})
		case sum != e.SHA256:
			probs = append(probs, EvidenceProblem{Path: e.Path, Problem: fmt.Sprintf("sha256 is %s, manifest says %s", sum, e.SHA256)})
		}
	}
	err := filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(s.dir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(filepath.Base(p), ".tmp-") || strings.HasPrefix(filepath.Base(p), ".manifest.json.tmp-") {
			return nil // a save interrupted before its rename; never listed, harmless
		}
		if !listed[rel] {
			probs = append(probs, EvidenceProblem{Path: rel, Problem: "not in the manifest"})
		}
		return nil
	})
	if err != nil {
		return probs, fmt.Errorf("verify evidence in %s: %w", s.dir, err)
	}
	return probs, nil
}

// evidenceSafeName turns a package name, version or kind into one file-name component: npm's
// own characters are kept ("@scope/name" becomes "@scope__name"), anything else becomes "_", and
// a name that had to be altered gets a hash of the original so two names cannot collide.
func evidenceSafeName(s string) string {
	var b strings.Builder
	altered := false
	for i, r := range s {
		switch {
		case r == '/' && strings.HasPrefix(s, "@") && !strings.Contains(s[:i], "/"):
			b.WriteString("__")
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '+', r == '~':
			b.WriteRune(r)
		case r == '.' && i > 0 && s[i-1] != '.':
			b.WriteRune(r)
		case r == '@' && i == 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
			altered = true
		}
	}
	out := b.String()
	if len(out) > 100 {
		out, altered = out[:100], true
	}
	if out == "" || altered {
		sum := sha256.Sum256([]byte(s))
		out += "_" + hex.EncodeToString(sum[:4])
	}
	return out
}

// redactURL drops credentials, query and fragment: a token must never reach the evidence.
func evidenceRedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
	return u.String()
}

func evidenceSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
