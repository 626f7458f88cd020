package inventory

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The oracle: shared/fixtures holds real lockfiles and osv-scalibr's
// extractor fixtures, with the name@version sets osv-scalibr v0.5.3 reports
// for each (expected/). CI clones this repository next to shared/, so the
// fixtures are at a fixed relative path; a missing fixture tree fails the
// test rather than skipping it, or the oracle could silently stop running.

func sharedFixtures(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "fixtures")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("fixtures not found at %s (the repository must sit next to shared/): %v", dir, err)
	}
	return dir
}

type expectedEntry struct {
	Packages []string `json:"packages"`
	Error    string   `json:"error"`
}

func loadExpected(t testing.TB, path string) map[string]expectedEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]expectedEntry
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func pairSet(pkgs []Package) map[string]bool {
	s := map[string]bool{}
	for _, p := range pkgs {
		s[p.Name+"@"+p.Version] = true
	}
	return s
}

// peerDifference is a deliberate difference from the peer's answer.
type peerDifference struct {
	extra   []string // pairs npmir reports and the peer does not
	missing []string // pairs the peer reports and npmir does not
	err     bool     // npmir reports an error where the peer does not
	reason  string
}

// peerDifferences lists every difference from osv-scalibr, keyed by
// "<set>/<fixture>". A missed pair is worse than an extra one, so npmir
// errs on the side of reporting.
var peerDifferences = map[string]peerDifference{
	"peer-packagelockjson/both/package-lock.json": {
		extra: []string{"supports-color@5.5.0", "wrappy@1.0.2"},
		reason: "npm installs from npm-shrinkwrap.json when both sit in one folder, and the peer skips " +
			"package-lock.json there; npmir reads both, because a stale package-lock.json is still what " +
			"other tools (and people) install from, and a missed pair is worse than an extra one",
	},
	"peer-pnpmlock/empty.yaml": {
		err: true,
		reason: "a pnpm-lock.yaml holding only a comment has no lockfileVersion; pnpm never writes that, " +
			"so the file was emptied or cut short, and npmir reports it as unreadable rather than clean",
	},
	"peer-bunlock/empty.json5": {
		err: true,
		reason: "`{}` has no lockfileVersion; bun never writes that, so the file was emptied, and npmir " +
			"reports it as unreadable rather than clean",
	},
}

type oracleCase struct {
	set      string // expected/<set>.json
	dir      string // fixture folder
	format   Format // "" = by name / sniffing
	expected string
}

func oracleCases(t testing.TB) []oracleCase {
	root := sharedFixtures(t)
	lf := filepath.Join(root, "lockfiles")
	return []oracleCase{
		{"real", filepath.Join(lf, "real"), "", filepath.Join(lf, "expected", "real.json")},
		{"peer-packagelockjson", filepath.Join(lf, "peer", "packagelockjson"), FormatNpmLock, filepath.Join(lf, "expected", "peer-packagelockjson.json")},
		{"peer-yarnlock", filepath.Join(lf, "peer", "yarnlock"), FormatYarnLock, filepath.Join(lf, "expected", "peer-yarnlock.json")},
		{"peer-pnpmlock", filepath.Join(lf, "peer", "pnpmlock"), FormatPnpmLock, filepath.Join(lf, "expected", "peer-pnpmlock.json")},
		{"peer-bunlock", filepath.Join(lf, "peer", "bunlock"), FormatBunLock, filepath.Join(lf, "expected", "peer-bunlock.json")},
		{"sbom", filepath.Join(root, "sbom", "cyclonedx"), "", filepath.Join(root, "sbom", "expected.json")},
	}
}

func TestOracleExtract(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	for _, oc := range oracleCases(t) {
		expected := loadExpected(t, oc.expected)
		// Every fixture file must have an expectation, so none goes untested.
		filepath.WalkDir(oc.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(oc.dir, p)
			if _, ok := expected[filepath.ToSlash(rel)]; !ok {
				t.Errorf("%s: fixture %s has no expectation", oc.set, rel)
			}
			return nil
		})
		names := make([]string, 0, len(expected))
		for n := range expected {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			want := expected[name]
			key := oc.set + "/" + name
			t.Run(key, func(t *testing.T) {
				data, err := os.ReadFile(filepath.Join(oc.dir, filepath.FromSlash(name)))
				if err != nil {
					t.Fatal(err)
				}
				var pkgs []Package
				if oc.format != "" {
					pkgs, err = ExtractFormat(oc.format, data)
				} else {
					_, pkgs, err = ExtractBytes(name, data)
				}
				diff, listed := peerDifferences[key]
				used[key] = listed
				if want.Error != "" {
					if err == nil {
						t.Fatalf("peer fails with %q; npmir returned no error (%d packages): an unreadable file must never look clean", want.Error, len(pkgs))
					}
					return
				}
				if err != nil && !diff.err {
					t.Fatalf("unexpected error: %v", err)
				}
				if err == nil && diff.err {
					t.Fatalf("the difference table says npmir errors here, and it did not")
				}
				got := pairSet(pkgs)
				wantSet := map[string]bool{}
				for _, p := range want.Packages {
					wantSet[p] = true
				}
				var extra, missing []string
				for p := range got {
					if !wantSet[p] {
						extra = append(extra, p)
					}
				}
				for p := range wantSet {
					if !got[p] {
						missing = append(missing, p)
					}
				}
				sort.Strings(extra)
				sort.Strings(missing)
				if strings.Join(extra, ",") != strings.Join(diff.extra, ",") {
					t.Errorf("extra pairs (npmir only): got %q, table lists %q", extra, diff.extra)
				}
				if strings.Join(missing, ",") != strings.Join(diff.missing, ",") {
					t.Errorf("missing pairs (peer only): got %q, table lists %q", missing, diff.missing)
				}
			})
		}
	}
	t.Run("table", func(t *testing.T) {
		for k, d := range peerDifferences {
			if d.reason == "" {
				t.Errorf("difference %s has no reason", k)
			}
			if _, ok := used[k]; !ok {
				t.Errorf("difference %s matches no fixture", k)
			}
		}
	})
}
