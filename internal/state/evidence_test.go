package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestEvidenceSaveIsIdempotentAndVerifies(t *testing.T) {
	t.Parallel()
	inc := t.TempDir()
	s, err := OpenEvidence(inc)
	if err != nil {
		t.Fatal(err)
	}
	tgz := []byte("pretend tarball bytes")
	p1, sum1, err := s.SaveTarball("@ctrl/tinycolor", "4.1.1", "https://user:secret@registry.example/@ctrl/tinycolor/-/tinycolor-4.1.1.tgz?token=abc#x", bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(tgz)
	if sum1 != hex.EncodeToString(want[:]) {
		t.Fatalf("sha256 %s, want %x", sum1, want)
	}
	if p1 != "tarballs/@ctrl__tinycolor-4.1.1.tgz" {
		t.Fatalf("path %q", p1)
	}
	// Saving the same bytes again, through a fresh store as a resumed run would, is a no-op.
	s2, err := OpenEvidence(inc)
	if err != nil {
		t.Fatal(err)
	}
	p2, sum2, err := s2.SaveTarball("@ctrl/tinycolor", "4.1.1", "https://registry.example/@ctrl/tinycolor/-/tinycolor-4.1.1.tgz", bytes.NewReader(tgz))
	if err != nil || p2 != p1 || sum2 != sum1 {
		t.Fatalf("second save: %q %q %v", p2, sum2, err)
	}
	if n := len(s2.Entries()); n != 1 {
		t.Fatalf("%d manifest entries after saving twice, want 1", n)
	}
	// Different bytes for the same version (a mirror's copy) are kept beside, not over.
	p3, _, err := s2.SaveTarball("@ctrl/tinycolor", "4.1.1", "", bytes.NewReader([]byte("other bytes")))
	if err != nil || p3 == p1 {
		t.Fatalf("different content: path %q err %v", p3, err)
	}
	pk, _, err := s2.SavePackument("@ctrl/tinycolor", "https://registry.example/@ctrl%2ftinycolor", []byte(`{"name":"@ctrl/tinycolor"}`))
	if err != nil || !strings.HasPrefix(pk, "packuments/@ctrl__tinycolor.") {
		t.Fatalf("packument path %q err %v", pk, err)
	}
	if probs, err := s2.Verify(); err != nil || len(probs) != 0 {
		t.Fatalf("verify: %v %v", probs, err)
	}
	for _, e := range s2.Entries() {
		data, err := os.ReadFile(filepath.Join(s2.Dir(), e.Path))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != e.SHA256 || int64(len(data)) != e.Size {
			t.Errorf("%s: manifest says %s/%d, file is %x/%d", e.Path, e.SHA256, e.Size, got, len(data))
		}
	}
	manifest, _ := os.ReadFile(filepath.Join(s2.Dir(), "manifest.json"))
	for _, secret := range []string{"secret", "token=abc", "user:"} {
		if bytes.Contains(manifest, []byte(secret)) {
			t.Errorf("manifest holds %q:\n%s", secret, manifest)
		}
	}

	// Tampering is caught, and so is a stray file.
	if err := os.WriteFile(filepath.Join(s2.Dir(), p1), []byte("pretend tarball BYTES"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s2.Dir(), "tarballs", "stray.tgz"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	probs, err := s2.Verify()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range probs {
		got[p.Path] = p.Problem
	}
	if !strings.Contains(got[p1], "sha256") || got["tarballs/stray.tgz"] != "not in the manifest" || len(got) != 2 {
		t.Fatalf("problems: %v", probs)
	}
	// A damaged file is rewritten by the next save of the same bytes.
	if _, _, err := s2.SaveTarball("@ctrl/tinycolor", "4.1.1", "", bytes.NewReader(tgz)); err != nil {
		t.Fatal(err)
	}
	probs, _ = s2.Verify()
	if len(probs) != 1 || probs[0].Path != "tarballs/stray.tgz" {
		t.Fatalf("after repair: %v", probs)
	}
}

func TestEvidenceNamesStayInsideTheFolder(t *testing.T) {
	t.Parallel()
	inc := t.TempDir()
	s, err := OpenEvidence(inc)
	if err != nil {
		t.Fatal(err)
	}
	hostile := []struct{ name, version string }{
		{"../../etc/passwd", "1.0.0"},
		{"/abs/name", "../../x"},
		{"..", ".."},
		{"a\\..\\..\\b", "1.0.0/../../y"},
		{"", ""},
		{"name\x00nul", "1.0.0"},
	}
	seen := map[string]bool{}
	for _, h := range hostile {
		p, _, err := s.SaveTarball(h.name, h.version, "", strings.NewReader(h.name+h.version))
		if err != nil {
			t.Fatalf("%q@%q: %v", h.name, h.version, err)
		}
		if seen[p] {
			t.Errorf("%q@%q collides on %s", h.name, h.version, p)
		}
		seen[p] = true
		if strings.Count(p, "/") != 1 || strings.Contains(p, "..") || strings.ContainsAny(p, "\\\x00") {
			t.Errorf("%q@%q stored as %q", h.name, h.version, p)
		}
	}
	// Nothing but the evidence folder appeared in the incident folder.
	ents, _ := os.ReadDir(inc)
	if len(ents) != 1 || ents[0].Name() != "evidence" {
		t.Fatalf("incident folder holds %v", ents)
	}
	if probs, err := s.Verify(); err != nil || len(probs) != 0 {
		t.Fatalf("verify: %v %v", probs, err)
	}
}

func TestEvidenceRefusesBadManifest(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"garbage": "{not json",
		"newer":   `{"schema_version": 99, "entries": []}`,
	} {
		t.Run(name, func(t *testing.T) {
			inc := t.TempDir()
			dir := filepath.Join(inc, "evidence")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "manifest.json")
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenEvidence(inc); err == nil || !strings.Contains(err.Error(), "manifest.json") {
				t.Fatalf("err = %v, want a refusal naming the manifest", err)
			}
			if got, _ := os.ReadFile(path); string(got) != body {
				t.Fatal("the refused manifest was modified")
			}
		})
	}
}

// Concurrent saves through one store: every file ends up in the manifest (a run preserves
// hundreds of packages at once).
func TestEvidenceConcurrentSavesAllInTheManifest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := OpenEvidence(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.SaveTarball(fmt.Sprintf("pkg-%02d", i), "1.0.0", "http://127.0.0.1/x.tgz", strings.NewReader(fmt.Sprint("tarball ", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	again, err := OpenEvidence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.Entries()); n != 64 {
		t.Fatalf("manifest lists %d of 64 files", n)
	}
	if problems, err := again.Verify(); err != nil || len(problems) != 0 {
		t.Fatalf("%v %v", problems, err)
	}
}
