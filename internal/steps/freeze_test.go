package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/sim"
)

// simEnv seeds a simulated registry with versions published an hour apart, in order.
func simEnv(t *testing.T, pkg string, versions []struct{ v, tag string }) (*Env, *sim.Registry, string) {
	t.Helper()
	reg := sim.NewRegistry(sim.Options{Seed: 1})
	tok := reg.AddUser("maint", "maint@example.com")
	t0 := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	for i, v := range versions {
		if err := reg.Publish(sim.Version{Name: pkg, Version: v.v, Tag: v.tag, Publisher: "maint", Time: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	reg.Start()
	t.Cleanup(reg.Close)
	c, err := npmreg.New(npmreg.Options{Registry: reg.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return &Env{NPM: c, Fault: func(string) {}, Concurrency: 4}, reg, tok
}

func planFreeze(t *testing.T, env *Env, specs ...string) []Op {
	t.Helper()
	spec, err := incident.Build(incident.Options{Specs: specs})
	if err != nil {
		t.Fatal(err)
	}
	env.Spec = spec
	if err := Resolve(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	sp, err := rollbackDistTags{}.Plan(context.Background(), env, Step{Stage: "freeze", Step: runbook.Step{ID: "tags"}})
	if err != nil {
		t.Fatal(err)
	}
	return sp.Ops
}

// Each tag falls back within its own line: latest to the stable known-good, next to the last
// good prerelease, and a tag whose line has nothing good is removed, never pointed at the main
// line's release.
func TestRollbackFollowsEachTagsLine(t *testing.T) {
	t.Parallel()
	env, reg, _ := simEnv(t, "lines", []struct{ v, tag string }{
		{"0.9.0", "legacy"}, {"1.0.0", "latest"}, {"1.1.0", "latest"}, {"2.0.0-beta.1", "next"},
		{"0.9.1", "legacy"}, {"1.1.1", "latest"}, {"2.0.0-beta.2", "next"},
	})
	// 0.9.0 is deprecated, so the legacy line has nothing good left.
	if _, err := env.NPM.Deprecate(context.Background(), "lines", "0.9.0", "old"); err != nil {
		t.Fatal(err)
	}
	ops := planFreeze(t, env, "lines@1.1.1,2.0.0-beta.2,0.9.1")
	got := map[string]string{}
	for _, op := range ops {
		got[op.ID] = op.Description
		if _, err := (rollbackDistTags{}).Apply(context.Background(), env, op); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(got["npm/dist-tag/lines/latest"], "to 1.1.0") || !strings.Contains(got["npm/dist-tag/lines/next"], "to 2.0.0-beta.1") || !strings.Contains(got["npm/dist-tag/lines/legacy"], "remove dist-tag legacy") {
		t.Fatalf("plan %v", got)
	}
	tags := reg.DistTags("lines")
	if tags["latest"] != "1.1.0" || tags["next"] != "2.0.0-beta.1" || tags["legacy"] != "" {
		t.Errorf("tags after apply: %v", tags)
	}
	for _, op := range ops {
		if _, landed, err := (rollbackDistTags{}).Check(context.Background(), env, op); err != nil || !landed {
			t.Errorf("%s: check says not landed (%v)", op.ID, err)
		}
	}
}

// A tag moved after the plan to a version published after the compromise began is not
// trusted: the op needs a person. Moved back to an older release by a maintainer: respected.
func TestRollbackDistrustsATagMovedToANewerVersion(t *testing.T) {
	t.Parallel()
	env, reg, _ := simEnv(t, "moved", []struct{ v, tag string }{{"1.0.0", "latest"}, {"1.1.0", "latest"}, {"1.1.1", "latest"}})
	ops := planFreeze(t, env, "moved@1.1.1")
	if len(ops) != 1 {
		t.Fatalf("ops %v", ops)
	}
	// The worm publishes again before the op runs.
	if err := reg.Publish(sim.Version{Name: "moved", Version: "1.1.2", Publisher: "maint", Time: time.Date(2025, 9, 2, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	res, err := rollbackDistTags{}.Apply(context.Background(), env, ops[0])
	if err != nil || res.Manual == "" || !strings.Contains(res.Summary, "published after the compromise began") {
		t.Fatalf("newer version on the tag: %+v %v", res, err)
	}
	if err := env.NPM.SetDistTag(context.Background(), "moved", "latest", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	res, err = rollbackDistTags{}.Apply(context.Background(), env, ops[0])
	if err != nil || res.Manual != "" || !strings.Contains(res.Summary, "left alone") || reg.DistTags("moved")["latest"] != "1.0.0" {
		t.Fatalf("older release on the tag: %+v %v", res, err)
	}
}

// Token revocation re-checks who npmir is when it runs: a resume under another account would
// otherwise read the registry's 404 as "already revoked".
func TestRevokeTokensRefusesAnotherIdentityAtApply(t *testing.T) {
	t.Parallel()
	env, reg, _ := simEnv(t, "tok-pkg", []struct{ v, tag string }{{"1.0.0", "latest"}})
	other := reg.AddUser("responder", "r@example.com")
	c, _ := npmreg.New(npmreg.Options{Registry: reg.URL, Token: other})
	env.NPM = c
	op := Op{ID: "npm/token/x", Kind: "npm.revoke-tokens", Params: mustJSON(tokenParams{Key: "abc", Listed: "npm_abc…", User: "maint"})}
	_, err := revokeTokens{}.Apply(context.Background(), env, op)
	if !errors.Is(err, npmreg.ErrAuth) || !strings.Contains(err.Error(), `logged in as "responder"`) {
		t.Fatalf("apply under another account: %v", err)
	}
	if _, _, err := (revokeTokens{}).Check(context.Background(), env, op); !errors.Is(err, npmreg.ErrAuth) {
		t.Fatalf("check under another account: %v", err)
	}
}
