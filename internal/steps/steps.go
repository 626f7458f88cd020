// Package steps holds the step kinds a runbook can use (`uses: npm.deprecate`), one file per
// stage. A kind turns one runbook step into concrete Ops against live read-only provider calls,
// applies an Op idempotently, and checks whether an Op has landed (the resume path). Kinds
// compose providers (npmreg, github, mirror, notify); they never import the engine.
package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/npmir/npmir/internal/forensics"
	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/state"
)

// Op is one concrete mutation (or manual action) with a stable id: the same incident planned
// twice yields the same ids, which is what lets a resume match work already done.
type Op struct {
	ID          string          `json:"id"`
	Stage       string          `json:"stage"`
	Step        string          `json:"step"`
	Kind        string          `json:"kind"`
	Key         string          `json:"key"` // ops sharing a key run one after another, in plan order
	Description string          `json:"description"`
	Target      string          `json:"target"`
	Params      json.RawMessage `json:"params,omitempty"`
	// Manual, when set, marks an action npmir cannot take: it says what a person must do.
	Manual string `json:"manual,omitempty"`
}

// Result is what applying an op did.
type Result struct {
	Changed bool   `json:"changed"`
	Summary string `json:"summary"`
	// Manual, when set, says the op could not be done here and what a person must do (the
	// registry does not serve the route, or it would remove a package's last owner).
	Manual string `json:"manual,omitempty"`
}

// StepPlan is one step expanded: its ops, notes for the responder, or why it is skipped.
type StepPlan struct {
	Ops   []Op
	Notes []string
	Skip  string
}

// Info describes a kind for validation and `npmir runbook show`.
type Info struct {
	Name     string
	Summary  string
	Provider string // npm, github, mirror, notify, local
	Params   []runbook.Param
	// Preserves: the kind saves evidence. Removes: the kind deletes or hides artifacts, so a
	// preserving step must run before it (runbook validation enforces the order).
	Preserves, Removes bool
}

// Kind is a step kind.
type Kind interface {
	Info() Info
	Plan(ctx context.Context, env *Env, step Step) (StepPlan, error)
	// Apply performs op. It must be idempotent: applying what is already in place is a no-op
	// reported with Changed=false.
	Apply(ctx context.Context, env *Env, op Op) (Result, error)
	// Check reports whether op has landed, and the result to record when it has (the same
	// result Apply would have returned), so an op interrupted after its write is not repeated.
	Check(ctx context.Context, env *Env, op Op) (Result, bool, error)
}

// Step is a runbook step with its stage.
type Step struct {
	Stage string
	runbook.Step
}

// Env is everything a kind may use. Providers left nil are not configured.
type Env struct {
	Spec *incident.Spec
	NPM  *npmreg.Client
	// Targets are the resolved packages (filled by Resolve before planning).
	Targets []*Target
	// Fault is the fault-injection hook (NPMIR_FAULT); kinds call it at "mid" between an op's
	// read and its write. Never nil.
	Fault func(point string)
	Now   func() time.Time
	// IncidentDir is the incident folder (state, audit, evidence).
	IncidentDir string
	DryRun      bool
	// Progress, when set, is told how far a long read-only phase (resolving hundreds of
	// packages) has come. Never required.
	Progress func(phase string, done, total int)
	// LeakedTokens are token values the responder knows leaked (from --leaked-token-env): after
	// revocation npmir proves each is refused. Secret: never stored or printed.
	LeakedTokens []string
	// TokensCreatedAfter limits revocation to tokens created after this time (nil: all).
	TokensCreatedAfter *time.Time
	// Concurrency bounds the concurrent reads of planning.
	Concurrency int
	// TrustAllow lists the trusted-publisher configurations to keep ("owner/repo" or
	// "owner/repo:workflow.yml"); the rest are removed by npm.review-trusted-publishers.
	TrustAllow []string
	// Scope is what the blast-radius listing found (maintainer mode), nil otherwise.
	Scope *Scope
	// Rules are the forensics rules (embedded, plus --rules); nil means the embedded ones.
	Rules *forensics.RuleSet
	// Reports are verify's reports by package, filled when the verify step plans.
	Reports map[string]*forensics.Report

	evidenceOnce sync.Once
	evidence     *state.EvidenceStore
	evidenceErr  error
	whoamiOnce   sync.Once
	whoami       string
	whoamiErr    error
	// IncludeSuspicious freezes versions found since T that verify finds only suspicious
	// (--yes); otherwise Confirm asks, when a terminal is there.
	IncludeSuspicious bool
	Confirm           func(question string) (bool, error)
}

// Scope is every package a maintainer can publish, and which of them have versions since T.
type Scope struct {
	Maintainer string
	Source     string // org, user or search (see npmreg.PackageList)
	Packages   []string
}

func (env *Env) progress(phase string, done, total int) {
	if env.Progress != nil {
		env.Progress(phase, done, total)
	}
}

// Affected returns the targets with at least one bad version.
func (env *Env) Affected() []*Target {
	var out []*Target
	for _, t := range env.Targets {
		if len(t.Bad) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Target is a package under containment, resolved against the registry.
type Target struct {
	Name string
	Bad  []string // bad versions, ascending
	// NamedVersions are the versions the responder named (name@version): always frozen,
	// whatever verify finds; versions found by --since are frozen only if verify agrees.
	NamedVersions []string
	// Verdicts are verify's judgements, per suspect version.
	Verdicts  []state.Verdict
	KnownGood string // "" when none exists
	// KnownGoodFrom says where KnownGood came from: "override" or "derived".
	KnownGoodFrom string
	Packument     *npmreg.Packument
}

// Named reports whether the responder named version v explicitly.
func (t *Target) Named(v string) bool { return slices.Contains(t.NamedVersions, v) }

// IsBad reports whether v is one of the target's bad versions.
func (t *Target) IsBad(v string) bool { return slices.Contains(t.Bad, v) }

var registry = map[string]Kind{}

func register(k Kind) { registry[k.Info().Name] = k }

// Lookup returns a kind by name.
func Lookup(name string) (Kind, bool) {
	k, ok := registry[name]
	return k, ok
}

// Kinds lists every kind, sorted by name.
func Kinds() []Kind {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Kind, len(names))
	for i, n := range names {
		out[i] = registry[n]
	}
	return out
}

// RunbookLookup adapts the registry for runbook validation.
func RunbookLookup(uses string) (runbook.KindInfo, bool) {
	k, ok := registry[uses]
	if !ok {
		return runbook.KindInfo{}, false
	}
	i := k.Info()
	return runbook.KindInfo{Params: i.Params, Preserves: i.Preserves, Removes: i.Removes}, true
}

// pending is a kind planned for a later npmir release: it shows in the plan as skipped with its
// reason instead of silently disappearing.
type pending struct {
	info  Info
	issue string
}

func (p pending) Info() Info { return p.info }
func (p pending) Plan(context.Context, *Env, Step) (StepPlan, error) {
	return StepPlan{Skip: "not available yet in this npmir version (" + p.issue + "); do this step by hand"}, nil
}
func (p pending) Apply(context.Context, *Env, Op) (Result, error) {
	return Result{}, fmt.Errorf("%s is not available yet", p.info.Name)
}
func (p pending) Check(context.Context, *Env, Op) (Result, bool, error) { return Result{}, false, nil }

func init() {
	for _, k := range []pending{
		{Info{Name: "github.disable-release-workflows", Provider: "github", Summary: "disable the workflows that can publish to npm and cancel their running jobs"}, "GitHub Actions adapter"},
		{Info{Name: "github.remove-rogue-runners", Provider: "github", Summary: "remove self-hosted runners the worm registered (SHA1HULUD) and injected workflows"}, "GitHub Actions adapter"},
		{Info{Name: "github.rotate-secrets", Provider: "github", Summary: "delete the npm tokens stored as CI secrets so they can be re-issued"}, "GitHub Actions adapter"},
		{Info{Name: "mirror.quarantine", Provider: "mirror", Removes: true, Summary: "quarantine the bad versions cached in Artifactory, Nexus or Verdaccio mirrors"}, "mirror adapters"},
		{Info{Name: "npm.remove-maintainer", Provider: "npm", Summary: "remove the compromised account from each affected package's owners"}, "npm revoke stage"},
		{Info{Name: "npm.require-2fa", Provider: "npm", Summary: "require 2FA for publishing and refuse tokens that bypass it"}, "npm revoke stage"},
		{Info{Name: "npm.revoke-tokens", Provider: "npm", Summary: "revoke the identity's npm tokens and prove they are refused"}, "npm revoke stage"},
		{Info{Name: "npm.review-trusted-publishers", Provider: "npm", Summary: "list trusted-publisher (OIDC) configurations and remove those not allowed"}, "npm revoke stage"},
		{Info{Name: "npm.verify", Provider: "npm", Summary: "compare suspect versions with the last known-good and preserve evidence"}, "verify stage"},
		{Info{Name: "inventory.scan", Provider: "local", Summary: "find every lockfile and SBOM that pins a bad version", Params: []runbook.Param{{Name: "paths", Type: "strings", Doc: "folders or files to scan"}}}, "inventory stage"},
		{Info{Name: "rebuild.pin-known-good", Provider: "local", Summary: "propose overrides/resolutions pinning the known-good version"}, "rebuild stage"},
		{Info{Name: "notify.advisory", Provider: "notify", Summary: "publish an advisory to downstream teams"}, "notify stage"},
	} {
		// Init order across files is by file name: a real kind registered earlier wins.
		if _, ok := registry[k.info.Name]; !ok {
			register(k)
		}
	}
}

// replacePending lets a real kind take over a name first registered as pending.
func replacePending(k Kind) { registry[k.Info().Name] = k }

// escapeID keeps op ids one path-like token per part: a scoped name's slash is encoded, as the
// registry encodes it, so ids stay stable and unambiguous.
func escapeID(s string) string { return strings.ReplaceAll(s, "/", "%2f") }

// decode reads an op's parameters (written by the kind's Plan with mustJSON).
func decode[T any](op Op) (T, error) {
	var p T
	err := json.Unmarshal(op.Params, &p)
	return p, err
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func needNPM(env *Env) string {
	if env.NPM == nil {
		return "provider not configured: npm registry"
	}
	return ""
}

// Evidence returns the incident's evidence store, opened once: every op of a run must share one
// store, since a store orders its manifest writes only among its own callers (two stores on one
// folder would each rewrite manifest.json from their own view and lose each other's entries).
func (env *Env) Evidence() (*state.EvidenceStore, error) {
	env.evidenceOnce.Do(func() { env.evidence, env.evidenceErr = state.OpenEvidence(env.IncidentDir) })
	return env.evidence, env.evidenceErr
}

// Register adds a kind (tests register fakes; a real kind registers itself in init).
func Register(k Kind) { registry[k.Info().Name] = k }
