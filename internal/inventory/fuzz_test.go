package inventory

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets feed the hand-written scanners arbitrary bytes, seeded
// with the fixture corpus. Whatever the input, a scanner must not panic or
// loop, must report problems as *ParseError, and must return only packages
// with a name and a line inside the file; the graph pass must agree.

func addSeeds(f *testing.F, dirs ...string) {
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			if len(b) > 64<<10 {
				continue // the real lockfiles make slow seeds
			}
			f.Add(b)
		}
	}
}

func checkParse(t *testing.T, data []byte, parse func([]byte, *graphReq) ([]Package, error)) {
	pkgs, err := parse(data, nil)
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not a *ParseError", err, err)
		}
	}
	setLines(data, pkgs)
	lines := bytes.Count(data, nl) + 1
	for _, p := range pkgs {
		if p.Name == "" {
			t.Fatalf("package without a name: %+v", p)
		}
		if p.Line < 0 || p.Line > lines {
			t.Fatalf("line %d outside the file (%d lines)", p.Line, lines)
		}
	}
	req := &graphReq{g: &graph{}, manifest: &manifest{Dependencies: map[string]string{"a": "^1.0.0"}}}
	gpkgs, gerr := parse(data, req)
	// The graph pass reads more of each entry, so on a broken file it may
	// stop earlier; on a sound one both passes must see the same packages.
	if err == nil && gerr == nil && len(gpkgs) != len(pkgs) {
		t.Fatalf("graph pass found %d packages, the fast pass %d", len(gpkgs), len(pkgs))
	}
	req.g.place(func(Package) bool { return true })
}

func lockDir(f *testing.F, name string) string {
	return filepath.Join(sharedFixtures(f), "lockfiles", "peer", name)
}

func FuzzNpmLock(f *testing.F) {
	addSeeds(f, lockDir(f, "packagelockjson"))
	f.Add([]byte(npmWorkspaces))
	f.Add([]byte(npmV1))
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, data, parseNpmLock) })
}

func FuzzYarnLock(f *testing.F) {
	addSeeds(f, lockDir(f, "yarnlock"), filepath.Join("testdata", "yarn-berry-patch"))
	f.Add([]byte(yarnV1))
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, data, parseYarnLock) })
}

func FuzzPnpmLock(f *testing.F) {
	addSeeds(f, lockDir(f, "pnpmlock"))
	f.Add([]byte(pnpm9))
	f.Add([]byte(pnpm5))
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, data, parsePnpmLock) })
}

func FuzzBunLock(f *testing.F) {
	addSeeds(f, lockDir(f, "bunlock"))
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, data, parseBunLock) })
}

func FuzzSBOM(f *testing.F) {
	addSeeds(f, filepath.Join("testdata", "spdx"))
	f.Add([]byte(`{"bomFormat":"CycloneDX","metadata":{"component":{"bom-ref":"r"}},"components":[{"bom-ref":"a","purl":"pkg:npm/%40s/a@1.0.0","components":[{"purl":"pkg:npm/b@2.0.0?x=y#sub"}]}],"dependencies":[{"ref":"r","dependsOn":["a"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data, parseCycloneDX)
		checkParse(t, data, func(b []byte, _ *graphReq) ([]Package, error) { return parseSPDX(b) })
	})
}

// FuzzSniff: whatever Sniff picks, extraction in that format must hold up.
func FuzzSniff(f *testing.F) {
	addSeeds(f, lockDir(f, "bunlock"), lockDir(f, "yarnlock"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if fm := Sniff(data); fm != FormatUnknown {
			ExtractFormat(fm, data) //nolint:errcheck // only panics matter here
		}
	})
}
