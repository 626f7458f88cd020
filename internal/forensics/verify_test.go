package forensics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/testenv/npmpkg"
)

// harmlessFile is the file whose SHA-256 proves the hash rules: a test-only rule lists its hash.
var harmlessFile = []byte("npmir test fixture: a harmless file standing in for a known payload\n")

func TestVerifyImitations(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256(harmlessFile)
	rulesFile := filepath.Join(t.TempDir(), "extra.yaml")
	extra := "schema_version: 1\nrules_version: test-1\nrules:\n  - id: test.harmless-sha256\n    kind: sha256\n    severity: high\n    values: [" + hex.EncodeToString(sum[:]) + "]\n    source: npmir tests (hash of a harmless file)\n"
	if err := os.WriteFile(rulesFile, []byte(extra), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := LoadRules(rulesFile)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		build   func(good npmpkg.Package) npmpkg.Package
		verdict Verdict
		ids     []string // must all be present
		absent  []string // must not be present
	}{
		{"shai-hulud-2-like", func(g npmpkg.Package) npmpkg.Package { return shaiHulud2Like(g, "5.11.3", 64<<10) }, VerdictMalicious,
			[]string{"shai-hulud-2.preinstall-setup-bun", "shai-hulud-2.payload-files", "shai-hulud-2.workflows", "shai-hulud-2.self-hosted-runner", "diff.lifecycle-script-added", "content.high-entropy"}, nil},
		{"chalk-debug-like", func(g npmpkg.Package) npmpkg.Package { return chalkDebugLike(g, "5.11.3") }, VerdictMalicious,
			[]string{"chalk-debug.drainer-functions"}, []string{"diff.lifecycle-script-added"}},
		{"nx-like", func(g npmpkg.Package) npmpkg.Package { return nxLike(g, "5.11.3") }, VerdictMalicious,
			[]string{"nx.postinstall-telemetry", "nx.payload-strings", "diff.lifecycle-script-added"}, nil},
		{"hash-rule", func(g npmpkg.Package) npmpkg.Package {
			return withChange(g, "5.11.3", map[string][]byte{"lib/data.txt": harmlessFile}, nil)
		}, VerdictMalicious, []string{"test.harmless-sha256"}, nil},
		{"typo-fix", func(g npmpkg.Package) npmpkg.Package { return typoFix(g, "5.11.3") }, VerdictClean, nil, []string{"test.harmless-sha256"}},
		{"dependency-bump", func(g npmpkg.Package) npmpkg.Package { return dependencyBump(g, "5.11.3") }, VerdictClean, []string{"diff.dependency-changed"}, nil},
		{"readme-change", func(g npmpkg.Package) npmpkg.Package { return readmeChange(g, "5.11.3") }, VerdictClean, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := newFakeRegistry()
			good := goodPackage("posthog-node", "5.11.2")
			reg.add(goodPackage("posthog-node", "5.11.1"), day0)
			reg.add(good, day0.Add(24*time.Hour))
			bad := tc.build(good)
			reg.add(bad, day0.Add(72*time.Hour))
			rep, err := Verify(context.Background(), reg, Request{Package: "posthog-node", Versions: []string{bad.Version}, Rules: rules})
			if err != nil {
				t.Fatal(err)
			}
			if rep.KnownGood != "5.11.2" || rep.KnownGoodFrom != "derived" {
				t.Fatalf("known-good %q (%s), want 5.11.2 derived", rep.KnownGood, rep.KnownGoodFrom)
			}
			if len(rep.Versions) != 1 {
				t.Fatalf("%d version reports", len(rep.Versions))
			}
			vr := rep.Versions[0]
			if vr.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s; findings:%s", vr.Verdict, tc.verdict, describe(vr.Findings))
			}
			ids := ruleIDs(vr.Findings)
			for _, id := range tc.ids {
				if !ids[id] {
					t.Errorf("missing rule %s; findings:%s", id, describe(vr.Findings))
				}
			}
			for _, id := range tc.absent {
				if ids[id] {
					t.Errorf("unexpected rule %s", id)
				}
			}
			if !vr.Integrity.OK || !vr.Tarball.Complete {
				t.Errorf("integrity %+v, complete %v", vr.Integrity, vr.Tarball.Complete)
			}
			for _, f := range vr.Findings {
				if f.Category == "ioc" && f.Source == "" {
					t.Errorf("finding %s has no source", f.RuleID)
				}
			}
		})
	}
}

func TestVerifyDiffShowsWhatChanged(t *testing.T) {
	t.Parallel()
	reg := newFakeRegistry()
	good := goodPackage("debug", "4.4.1")
	reg.add(good, day0)
	bad := chalkDebugLike(good, "4.4.2")
	bad.Files["extra.bin"] = []byte{0, 1, 2, 3, 0, 0, 7}
	delete(bad.Files, "LICENSE")
	bad.Manifest["bin"] = map[string]any{"debug": "cli.js"}
	bad.Manifest["dependencies"] = map[string]any{"ms": "^2.1.2", "flatmap-stream": "0.1.1"}
	reg.add(bad, day0.Add(time.Hour*48))
	rep, err := Verify(context.Background(), reg, Request{Package: "debug", Versions: []string{"4.4.2"}})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Versions[0].Diff
	if d == nil || d.Base != "4.4.1" {
		t.Fatalf("diff %+v", d)
	}
	if len(d.Added) != 1 || d.Added[0].Path != "extra.bin" || len(d.Added[0].Flags) != 1 || d.Added[0].Flags[0] != "binary" {
		t.Errorf("added %+v", d.Added)
	}
	if len(d.Removed) != 1 || d.Removed[0].Path != "LICENSE" {
		t.Errorf("removed %+v", d.Removed)
	}
	var idx *FileChange
	for i := range d.Changed {
		if d.Changed[i].Path == "index.js" {
			idx = &d.Changed[i]
		}
	}
	if idx == nil || !strings.Contains(idx.UnifiedDiff, "+const names = ['checkethereumw'") || !strings.HasPrefix(idx.UnifiedDiff, "--- a/index.js\n+++ b/index.js\n") {
		t.Fatalf("index.js change %+v", idx)
	}
	if idx.OldSHA256 == idx.NewSHA256 || idx.NewSize <= idx.OldSize {
		t.Errorf("sizes/hashes %+v", idx)
	}
	pj := d.PackageJSON
	if pj == nil || pj.Bin == nil || len(pj.Dependencies) != 1 || pj.Dependencies[0].Name != "flatmap-stream" || pj.Dependencies[0].Change != Added {
		t.Fatalf("package.json diff %+v", pj)
	}
	ids := ruleIDs(rep.Versions[0].Findings)
	for _, id := range []string{"event-stream.flatmap-stream", "diff.dependency-added-in-patch", "diff.bin-changed", "content.binary", "chalk-debug.drainer-functions"} {
		if !ids[id] {
			t.Errorf("missing %s:%s", id, describe(rep.Versions[0].Findings))
		}
	}
}

func TestVerifyIntegrityMismatch(t *testing.T) {
	t.Parallel()
	reg := newFakeRegistry()
	good := goodPackage("left-pad", "1.3.0")
	reg.add(good, day0)
	clean := typoFix(good, "1.3.1")
	man := reg.add(clean, day0.Add(48*time.Hour))
	// The registry serves other bytes than the ones the manifest's digests were computed over.
	other := readmeChange(good, "1.3.1").Tarball()
	reg.tarballs[man.Dist.Tarball] = other
	rep, err := Verify(context.Background(), reg, Request{Package: "left-pad", Versions: []string{"1.3.1"}})
	if err != nil {
		t.Fatal(err)
	}
	vr := rep.Versions[0]
	ids := ruleIDs(vr.Findings)
	if !ids["integrity.sri-mismatch"] || !ids["integrity.shasum-mismatch"] || vr.Integrity.OK || vr.Verdict != VerdictMalicious {
		t.Fatalf("verdict %s integrity %+v findings:%s", vr.Verdict, vr.Integrity, describe(vr.Findings))
	}
	wantSRI, _ := npmpkg.Integrity(other)
	if vr.Integrity.Actual != wantSRI {
		t.Errorf("actual %s, want %s", vr.Integrity.Actual, wantSRI)
	}
}

func TestVerifyMetadataAnomalies(t *testing.T) {
	t.Parallel()
	reg := newFakeRegistry()
	good := goodPackage("@ctrl/tinycolor", "4.1.0")
	for i, v := range []string{"4.0.0", "4.0.1", "4.1.0"} {
		man := reg.add(withChange(good, v, nil, nil), day0.Add(time.Duration(i)*30*24*time.Hour))
		man.NpmUser = &npmreg.Person{Name: "maintainer", TrustedPublisher: json.RawMessage(`{"id":"github","oidcConfigId":"x"}`)}
		man.NpmVersion, man.NodeVersion = "10.9.0", "22.11.0"
		man.Dist.Attestations = json.RawMessage(`{"url":"https://registry.test/-/npm/v1/attestations/x","provenance":{"predicateType":"https://slsa.dev/provenance/v1"}}`)
	}
	t0 := day0.Add(100 * 24 * time.Hour)
	for i, v := range []string{"4.1.1", "4.1.2"} {
		man := reg.add(typoFix(good, v), t0.Add(time.Duration(i)*2*time.Minute))
		man.NpmUser = &npmreg.Person{Name: "someone-else"}
		man.NpmVersion, man.NodeVersion = "11.6.0", "24.1.0"
	}
	// A version with a publish time but no manifest: it was unpublished.
	reg.packuments["@ctrl/tinycolor"].Time["4.1.3"] = t0.Add(3 * time.Minute).Format(time.RFC3339)
	peers := []Publish{{Package: "@ctrl/deluge", Version: "7.2.2", Time: t0.Add(time.Minute)}}
	rep, err := Verify(context.Background(), reg, Request{Package: "@ctrl/tinycolor", Since: t0, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Versions) != 2 || rep.KnownGood != "4.1.0" {
		t.Fatalf("versions %d known-good %s", len(rep.Versions), rep.KnownGood)
	}
	for _, vr := range rep.Versions {
		ids := ruleIDs(vr.Findings)
		for _, id := range []string{"metadata.npm-user-new", "metadata.provenance-dropped", "metadata.trusted-publisher-dropped", "metadata.npm-version-changed", "metadata.node-version-changed", "metadata.publish-burst"} {
			if !ids[id] {
				t.Errorf("%s: missing %s:%s", vr.Version, id, describe(vr.Findings))
			}
		}
		if vr.Verdict != VerdictSuspicious {
			t.Errorf("%s: verdict %s, want suspicious (metadata alone is not proof)", vr.Version, vr.Verdict)
		}
	}
	if !ruleIDs(rep.Findings)["metadata.unpublished-version"] {
		t.Errorf("package findings:%s", describe(rep.Findings))
	}
}

func TestVerifyRequestErrors(t *testing.T) {
	t.Parallel()
	reg := newFakeRegistry()
	reg.add(goodPackage("demo", "1.0.0"), day0)
	reg.add(goodPackage("demo", "1.0.1"), day0.Add(time.Hour))
	reg.packuments["demo"].Time["1.0.2"] = day0.Add(2 * time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{}, "no package"},
		{Request{Package: "missing", Versions: []string{"1.0.0"}}, "missing: read packument"},
		{Request{Package: "demo", Versions: []string{"9.9.9"}}, "demo@9.9.9: no such version"},
		{Request{Package: "demo", Versions: []string{"1.0.2"}}, "unpublished"},
		{Request{Package: "demo"}, "--since"},
		{Request{Package: "demo", Versions: []string{"1.0.1"}, KnownGood: "0.1.0"}, "known-good version 0.1.0 does not exist"},
		{Request{Package: "demo", Versions: []string{"1.0.1"}, KnownGood: "1.0.1"}, "also in the suspect set"},
	} {
		_, err := Verify(context.Background(), reg, tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.req, err, tc.want)
		}
	}
	// An override is honoured and said so.
	rep, err := Verify(context.Background(), reg, Request{Package: "demo", Versions: []string{"1.0.1"}, KnownGood: "1.0.0"})
	if err != nil || rep.KnownGoodFrom != "override" {
		t.Fatalf("override: %v %+v", err, rep)
	}
}

func TestVerifyMissingTarballIsAFinding(t *testing.T) {
	t.Parallel()
	reg := newFakeRegistry()
	reg.add(goodPackage("demo", "1.0.0"), day0)
	man := reg.add(goodPackage("demo", "1.0.1"), day0.Add(time.Hour))
	delete(reg.tarballs, man.Dist.Tarball)
	rep, err := Verify(context.Background(), reg, Request{Package: "demo", Versions: []string{"1.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if vr := rep.Versions[0]; !ruleIDs(vr.Findings)["archive.fetch-failed"] || vr.Verdict != VerdictSuspicious {
		t.Fatalf("verdict %s:%s", vr.Verdict, describe(vr.Findings))
	}
}

func TestVerifyFlagsACompromisedKnownGood(t *testing.T) {
	t.Parallel()
	reg := newFakeRegistry()
	good := goodPackage("nx", "20.8.0")
	reg.add(good, day0)
	reg.add(nxLike(good, "20.8.1"), day0.Add(time.Hour)) // not named as suspect, but bad
	reg.add(nxLike(good, "20.9.0"), day0.Add(2*time.Hour))
	rep, err := Verify(context.Background(), reg, Request{Package: "nx", Versions: []string{"20.9.0"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.KnownGood != "20.8.1" || !ruleIDs(rep.Findings)["metadata.known-good-matches-ioc"] {
		t.Fatalf("known-good %s findings:%s", rep.KnownGood, describe(rep.Findings))
	}
}

// TestVerifyManifestConfusion: the registry's manifest hides the install script that the tarball's
// package.json (what npm runs) carries; the script rules read both.
func TestVerifyManifestConfusion(t *testing.T) {
	t.Parallel()
	reg := newFakeRegistry()
	good := goodPackage("posthog-node", "5.11.2")
	reg.add(good, day0)
	man := reg.add(shaiHulud2Like(good, "5.11.3", 1024), day0.Add(time.Hour))
	man.Scripts = map[string]string{"test": "node test.js"}
	man.OptionalDependencies = map[string]string{"fsevents": "2"}
	man.Dependencies = map[string]string{"ms": "^2.1.2", "fsevents": "2"} // folded as npm does: reported once, not twice
	rep, err := Verify(context.Background(), reg, Request{Package: "posthog-node", Versions: []string{"5.11.3"}})
	if err != nil {
		t.Fatal(err)
	}
	vr := rep.Versions[0]
	var mismatches []string
	for _, f := range vr.Findings {
		if f.RuleID == "metadata.manifest-mismatch" {
			mismatches = append(mismatches, f.Match)
		}
	}
	if strings.Join(mismatches, ",") != "fsevents,preinstall" {
		t.Errorf("mismatches %v:%s", mismatches, describe(vr.Findings))
	}
	if !ruleIDs(vr.Findings)["shai-hulud-2.preinstall-setup-bun"] {
		t.Errorf("the tarball's preinstall was not judged:%s", describe(vr.Findings))
	}
}
