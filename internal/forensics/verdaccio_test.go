package forensics

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/state"
	"github.com/npmir/npmir/internal/testenv/npmpkg"
	"github.com/npmir/npmir/internal/testenv/verdaccio"
)

// TestVerifyThroughVerdaccio publishes the imitations and the clean releases to a real Verdaccio
// and verifies them with the real registry client, preserving evidence; a second run (a resumed
// verify) must not duplicate any of it.
func TestVerifyThroughVerdaccio(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Verdaccio")
	}
	root, err := verdaccio.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verdaccio.Binary(root); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := verdaccio.Start(ctx, verdaccio.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	type pair struct {
		good, suspect npmpkg.Package
		verdict       Verdict
		ids           []string
	}
	g := func(name, v string) npmpkg.Package { return goodPackage(name, v) }
	pairs := []pair{
		{g("posthog-node", "5.11.2"), shaiHulud2Like(g("posthog-node", "5.11.2"), "5.11.3", 2<<20), VerdictMalicious,
			[]string{"shai-hulud-2.preinstall-setup-bun", "shai-hulud-2.payload-files", "shai-hulud-2.workflows", "content.high-entropy"}},
		{g("debug", "4.4.1"), chalkDebugLike(g("debug", "4.4.1"), "4.4.2"), VerdictMalicious, []string{"chalk-debug.drainer-functions"}},
		{g("nx", "20.8.2"), nxLike(g("nx", "20.8.2"), "20.9.0"), VerdictMalicious, []string{"nx.postinstall-telemetry", "nx.payload-strings"}},
		{g("@acme/typo", "1.0.0"), typoFix(g("@acme/typo", "1.0.0"), "1.0.1"), VerdictClean, nil},
		{g("@acme/deps", "1.0.0"), dependencyBump(g("@acme/deps", "1.0.0"), "1.0.1"), VerdictClean, []string{"diff.dependency-changed"}},
		{g("@acme/readme", "1.0.0"), readmeChange(g("@acme/readme", "1.0.0"), "1.0.1"), VerdictClean, nil},
	}
	for _, p := range pairs {
		for _, pkg := range []npmpkg.Package{p.good, p.suspect} {
			if err := s.Publish(ctx, pkg, "latest"); err != nil {
				t.Fatalf("%v\n%s", err, s.Log())
			}
		}
	}
	// A version whose published digests are not those of its bytes.
	good := g("left-pad", "1.3.0")
	if err := s.Publish(ctx, good, "latest"); err != nil {
		t.Fatal(err)
	}
	tampered := typoFix(good, "1.3.1")
	if err := publishWithDigestsOf(ctx, s, tampered, readmeChange(good, "1.3.1").Tarball()); err != nil {
		t.Fatal(err)
	}

	client, err := npmreg.New(npmreg.Options{Registry: s.URL, Token: s.Token})
	if err != nil {
		t.Fatal(err)
	}
	incident := t.TempDir()
	ev, err := state.OpenEvidence(incident)
	if err != nil {
		t.Fatal(err)
	}
	run := func() []*Report {
		var reps []*Report
		for _, p := range pairs {
			rep, err := Verify(ctx, client, Request{Package: p.suspect.Name, Versions: []string{p.suspect.Version}, Evidence: ev})
			if err != nil {
				t.Fatalf("verify %s: %v", p.suspect.Name, err)
			}
			reps = append(reps, rep)
			if rep.KnownGood != p.good.Version {
				t.Errorf("%s: known-good %q, want %s", p.suspect.Name, rep.KnownGood, p.good.Version)
			}
			vr := rep.Versions[0]
			if vr.Verdict != p.verdict {
				t.Errorf("%s@%s: verdict %s, want %s:%s", p.suspect.Name, p.suspect.Version, vr.Verdict, p.verdict, describe(vr.Findings))
			}
			ids := ruleIDs(vr.Findings)
			for _, id := range p.ids {
				if !ids[id] {
					t.Errorf("%s@%s: missing %s:%s", p.suspect.Name, p.suspect.Version, id, describe(vr.Findings))
				}
			}
			if !vr.Integrity.OK {
				t.Errorf("%s: integrity %+v", p.suspect.Name, vr.Integrity)
			}
		}
		rep, err := Verify(ctx, client, Request{Package: "left-pad", Versions: []string{"1.3.1"}, Evidence: ev})
		if err != nil {
			t.Fatal(err)
		}
		if vr := rep.Versions[0]; !ruleIDs(vr.Findings)["integrity.sri-mismatch"] || vr.Integrity.OK {
			t.Errorf("left-pad@1.3.1: integrity %+v:%s", vr.Integrity, describe(vr.Findings))
		}
		return append(reps, rep)
	}
	first := run()
	entries := ev.Entries()
	if len(entries) != 2*len(first) { // a packument and a tarball per package
		t.Errorf("%d evidence entries for %d packages", len(entries), len(first))
	}
	run() // resumed: nothing new may be written
	if again := ev.Entries(); len(again) != len(entries) {
		t.Errorf("a second verify grew the evidence from %d to %d entries", len(entries), len(again))
	}
	if probs, err := ev.Verify(); err != nil || len(probs) != 0 {
		t.Fatalf("evidence verify: %v %v", probs, err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(ev.Dir(), filepath.FromSlash(e.Path)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != e.SHA256 || strings.Contains(string(data), s.Token) || strings.Contains(e.SourceURL, s.Token) {
			t.Errorf("%s: hash or token problem", e.Path)
		}
		if e.Kind == state.EvidenceTarball && !strings.HasPrefix(e.SourceURL, s.URL) {
			t.Errorf("%s: source %q", e.Path, e.SourceURL)
		}
	}
	manifest, _ := os.ReadFile(filepath.Join(ev.Dir(), "manifest.json"))
	if bytes.Contains(manifest, []byte(s.Token)) {
		t.Error("the manifest holds the token")
	}
	var out bytes.Buffer
	if err := WriteJSON(&out, first...); err != nil || bytes.Contains(out.Bytes(), []byte(s.Token)) {
		t.Errorf("json report: %v (or it holds the token)", err)
	}
}

// publishWithDigestsOf publishes p with p's tarball attached but dist.integrity computed over
// other bytes, as a tampered mirror or registry would serve it. (Verdaccio checks shasum on
// publish, so only the sha512 can be made to lie here; the fake registry tests both.)
func publishWithDigestsOf(ctx context.Context, s *verdaccio.Server, p npmpkg.Package, other []byte) error {
	doc := p.PublishDocument(s.URL, "latest")
	integrity, _ := npmpkg.Integrity(other)
	man := doc["versions"].(map[string]any)[p.Version].(map[string]any)
	dist := man["dist"].(map[string]any)
	dist["integrity"] = integrity
	if err := s.PublishDocument(ctx, p.Name, doc); err != nil {
		return fmt.Errorf("publish %s@%s with foreign digests: %w", p.Name, p.Version, err)
	}
	return nil
}

// The real client and the real evidence store are what the CLI passes.
var (
	_ Source       = (*npmreg.Client)(nil)
	_ EvidenceSink = (*state.EvidenceStore)(nil)
)
