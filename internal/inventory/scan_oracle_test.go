package inventory

import (
	"context"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// corpusTruth maps every fixture file to the set of pairs it holds,
// according to the peer adjusted by the difference table, and lists the
// files the peer cannot read.
type corpusTruth struct {
	files   []string                   // every fixture file, as passed to Scan
	pairs   map[string]map[string]bool // file -> normalised name@version
	invalid map[string]bool
	formats map[string]Format // file -> format of its folder ("" for real/ and sbom/)
}

func loadCorpusTruth(t testing.TB) corpusTruth {
	ct := corpusTruth{pairs: map[string]map[string]bool{}, invalid: map[string]bool{}, formats: map[string]Format{}}
	for _, oc := range oracleCases(t) {
		expected := loadExpected(t, oc.expected)
		for name, want := range expected {
			path := filepath.Join(oc.dir, filepath.FromSlash(name))
			ct.files = append(ct.files, path)
			ct.formats[path] = oc.format
			if want.Error != "" {
				ct.invalid[path] = true
				continue
			}
			diff := peerDifferences[oc.set+"/"+name]
			if diff.err {
				ct.invalid[path] = true
				continue
			}
			set := map[string]bool{}
			for _, p := range append(append([]string(nil), want.Packages...), diff.extra...) {
				set[normPair(p)] = true
			}
			for _, p := range diff.missing {
				delete(set, normPair(p))
			}
			ct.pairs[path] = set
		}
	}
	sort.Strings(ct.files)
	return ct
}

func normPair(p string) string {
	n, v, _ := splitNameAt(p)
	return n + "@" + normVersion(v)
}

// samplePairs draws every k-th exact pair of the corpus (sorted, so the
// sample is stable), plus every pair held by more than one file: those are
// the ones where reporting "exactly the files" can go wrong.
func (ct corpusTruth) samplePairs(k int) []Target {
	count := map[string]int{}
	for _, set := range ct.pairs {
		for p := range set {
			count[p]++
		}
	}
	all := make([]string, 0, len(count))
	for p := range count {
		all = append(all, p)
	}
	sort.Strings(all)
	var out []Target
	for i, p := range all {
		n, v, _ := splitNameAt(p)
		if v == "" || !isExactVersion(v) {
			continue // git/file pins have no version to target
		}
		if i%k == 0 || count[p] > 1 {
			out = append(out, Target{Name: n, Version: v})
		}
	}
	return out
}

func (ct corpusTruth) filesWith(pair string) []string {
	var out []string
	for f, set := range ct.pairs {
		if set[pair] {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

func reportedFiles(res *Result, target string) []string {
	seen := map[string]bool{}
	for _, f := range res.Findings {
		if f.Target == target && (f.Kind == Locked || f.Kind == Listed) {
			seen[f.File] = true
		}
	}
	var out []string
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// TestOracleScanFiles: for pairs drawn from the expected sets, the files
// Scan reports are exactly the files that hold the pair, and every file the
// peer cannot read is an error entry.
func TestOracleScanFiles(t *testing.T) {
	t.Parallel()
	ct := loadCorpusTruth(t)
	sample := ct.samplePairs(7)
	if len(sample) < 200 {
		t.Fatalf("sample too small: %d pairs", len(sample))
	}

	// A file the prefilter rules out (it never mentions a target name) is
	// clean for those targets whatever else is wrong in it, and gets only a
	// structural check; a file that mentions one is parsed, and every file
	// is parsed with NoPrefilter.
	mentions := func(f string, targets []Target) bool {
		return newMatcher(NewTargets(targets...)).mentions(mustRead(t, f), true)
	}
	check := func(t *testing.T, res *Result, targets []Target, full bool) {
		t.Helper()
		for _, tg := range targets {
			want := ct.filesWith(tg.String())
			var got []string
			for _, f := range reportedFiles(res, tg.String()) {
				// What a partly readable file yields is reported (beside
				// its error entry), but the peer gives no set to compare.
				if !ct.invalid[f] {
					got = append(got, f)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: Scan reports\n  %s\nthe fixtures hold it in\n  %s", tg, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
		errs := map[string]bool{}
		for _, e := range res.Errors {
			errs[e.Path] = true
		}
		for f := range ct.invalid {
			if !errs[f] && (full || mentions(f, targets)) {
				t.Errorf("%s: the peer cannot read it, and Scan did not report an error", f)
			}
		}
		for f := range errs {
			if !ct.invalid[f] {
				t.Errorf("%s: unexpected error entry", f)
			}
		}
	}

	t.Run("all-sampled-targets-at-once", func(t *testing.T) {
		t.Parallel()
		res, err := Scan(context.Background(), Options{Paths: ct.files, Targets: NewTargets(sample...)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Files) != len(ct.files) {
			t.Errorf("scanned %d files, want %d", len(res.Files), len(ct.files))
		}
		check(t, res, sample, false)
	})
	t.Run("no-prefilter", func(t *testing.T) {
		t.Parallel()
		res, err := Scan(context.Background(), Options{Paths: ct.files, Targets: NewTargets(sample[0]), NoPrefilter: true})
		if err != nil {
			t.Fatal(err)
		}
		check(t, res, sample[:1], true)
	})
	// One target at a time exercises the prefilter, which rules most files
	// out without parsing them.
	t.Run("one-target-per-scan", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < len(sample); i += 23 {
			tg := sample[i]
			res, err := Scan(context.Background(), Options{Paths: ct.files, Targets: NewTargets(tg), Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			check(t, res, []Target{tg}, false)
		}
	})
	// The same through directory walks: real/ and the SBOMs carry the names
	// a walk recognises.
	t.Run("walk", func(t *testing.T) {
		t.Parallel()
		root := sharedFixtures(t)
		dirs := []string{filepath.Join(root, "lockfiles", "real"), filepath.Join(root, "sbom")}
		res, err := Scan(context.Background(), Options{Paths: dirs, Targets: NewTargets(sample...)})
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range sample {
			var want []string
			for _, f := range ct.filesWith(tg.String()) {
				if strings.Contains(f, string(filepath.Separator)+"real"+string(filepath.Separator)) || strings.Contains(f, "cyclonedx") {
					want = append(want, f)
				}
			}
			got := reportedFiles(res, tg.String())
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s: walk reports %q, want %q", tg, got, want)
			}
		}
	})
}

// TestSniffFixtures: a fixture given by path, whatever its name, is read in
// the format of its folder.
func TestSniffFixtures(t *testing.T) {
	t.Parallel()
	ct := loadCorpusTruth(t)
	for _, f := range ct.files {
		want := ct.formats[f]
		if want == "" || ct.invalid[f] {
			continue
		}
		data := mustRead(t, f)
		if got := Sniff(data); got != want {
			t.Errorf("%s: sniffed %q, want %q", f, got, want)
		}
	}
	filepath.WalkDir(filepath.Join(sharedFixtures(t), "lockfiles", "real"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if got, want := Sniff(mustRead(t, p)), FormatForName(p); got != want {
				t.Errorf("%s: sniffed %q, the name says %q", p, got, want)
			}
		}
		return nil
	})
}
