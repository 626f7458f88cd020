package npmreg_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/sim"
)

func TestTrustConfigs(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ctx := context.Background()
	gh, _ := e.reg.AddTrust("demo", sim.GitHubTrust("acme/demo", "release.yml", "npm"))
	gl, _ := e.reg.AddTrust("demo", sim.TrustConfig{Type: "gitlab", Claims: map[string]any{"project_path": "grp/sub/demo", "ci_config_ref_uri": map[string]any{"file": ".gitlab-ci.yml"}}})
	alice := e.client(t, e.alice)
	got, err := alice.TrustConfigs(ctx, "demo")
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %+v", err, got)
	}
	if got[0].ID != gh || got[0].Type != "github" || got[0].Repository() != "acme/demo" || got[0].File() != "release.yml" || got[0].Environment() != "npm" {
		t.Fatalf("github config %+v", got[0])
	}
	if got[1].ID != gl || got[1].Repository() != "grp/sub/demo" || got[1].File() != ".gitlab-ci.yml" || got[1].Environment() != "" {
		t.Fatalf("gitlab config %+v", got[1])
	}
	if _, err := e.client(t, e.carol).TrustConfigs(ctx, "demo"); !errors.Is(err, npmreg.ErrAuth) {
		t.Fatalf("non-owner read trust: %v", err)
	}
	for i, want := range []bool{true, false} { // the second delete finds it gone
		changed, err := alice.DeleteTrust(ctx, "demo", gh)
		if err != nil || changed != want {
			t.Fatalf("delete #%d: %v %v", i+1, changed, err)
		}
	}
	if left := e.reg.Trust("demo"); len(left) != 1 || left[0].ID != gl {
		t.Fatalf("left %+v", left)
	}
	if empty, err := alice.TrustConfigs(ctx, "solo"); err != nil || len(empty) != 0 {
		t.Fatalf("%v %v", empty, err)
	}
}

func TestAttestations(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ctx := context.Background()
	err := e.reg.Publish(sim.Version{Name: "@acme/widget", Version: "2.0.0", Publisher: "alice", Time: t0,
		TrustedPublisher: &sim.TrustedPublisher{Repository: "acme/widget", Workflow: "release.yml"}})
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(t, "")
	atts, err := c.Attestations(ctx, "@acme/widget", "2.0.0")
	if err != nil || len(atts) != 1 || atts[0].PredicateType != "https://slsa.dev/provenance/v1" || !json.Valid(atts[0].Bundle) {
		t.Fatalf("%v %+v", err, atts)
	}
	if _, err := c.Attestations(ctx, "@acme/widget", "1.0.0"); !errors.Is(err, npmreg.ErrNotFound) {
		t.Fatalf("version without provenance: %v", err)
	}
	p, err := c.Packument(ctx, "@acme/widget", false)
	if err != nil || p.Versions["2.0.0"].NpmUser.Name != "GitHub Actions" || len(p.Versions["2.0.0"].NpmUser.TrustedPublisher) == 0 {
		t.Fatalf("trusted publish in packument: %v %+v", err, p.Versions["2.0.0"].NpmUser)
	}
}
