// Package fstree writes small folder trees for tests (lockfiles, manifests, SBOMs).
package fstree

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes files (slash-separated relative path → content) under a new temporary folder and
// returns the folder.
func Write(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
