package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/npmir/npmir/internal/forensics"
	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/state"
)

// The verify stage: before anything is frozen or removed, judge what each suspect version
// changed against the last known-good release, and preserve the evidence. The analysis runs at
// plan time (read-only), so its verdicts decide what the freeze covers; preserving the
// packument and the tarballs are ops, recorded and resumable like every other.

func init() { replacePending(verify{}) }

type evidenceParams struct {
	Package string `json:"package"`
	Version string `json:"version,omitempty"` // empty: the packument
	URL     string `json:"url"`
}

type verify struct{}

func (verify) Info() Info {
	return Info{Name: "npm.verify", Provider: "npm", Preserves: true,
		Summary: "compare suspect versions with the last known-good, give verdicts with reasons, preserve evidence",
		Params: []runbook.Param{{Name: "suspicious", Type: "string", Enum: []string{"ask", "include", "exclude"},
			Doc: "what the freeze does with versions found since T that are only suspicious: ask (default; --yes includes them), include, or exclude"}}}
}

func (verify) Plan(ctx context.Context, env *Env, step Step) (StepPlan, error) {
	if r := needNPM(env); r != "" {
		return StepPlan{Skip: r}, nil
	}
	policy, _ := step.With["suspicious"].(string)
	switch policy {
	case "", "ask", "include", "exclude":
	default:
		return StepPlan{}, fmt.Errorf("step %s: suspicious %q: use ask, include or exclude", step.ID, policy)
	}
	targets := env.Affected()
	reports := make([]*forensics.Report, len(targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(env.Concurrency, 1))
	var mu sync.Mutex
	done := 0
	for i, t := range targets {
		g.Go(func() error {
			rep, err := forensics.Verify(gctx, env.NPM, forensics.Request{Package: t.Name, Versions: t.Bad, KnownGood: t.KnownGood, Rules: env.Rules, Now: env.Now})
			if err != nil {
				return fmt.Errorf("verify %s: %w", t.Name, err)
			}
			reports[i] = rep
			mu.Lock()
			done++
			env.progress("verifying suspect versions", done, len(targets))
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return StepPlan{}, err
	}
	var sp StepPlan
	for i, t := range targets {
		rep := reports[i]
		if env.Reports == nil {
			env.Reports = map[string]*forensics.Report{}
		}
		env.Reports[t.Name] = rep
		keep := t.Bad[:0:0]
		for _, vr := range rep.Versions {
			named := t.Named(vr.Version)
			rules := ruleIDs(vr.Findings)
			t.Verdicts = append(t.Verdicts, state.Verdict{Version: vr.Version, Verdict: string(vr.Verdict), Rules: rules})
			why := strings.Join(rules, ", ")
			switch {
			case vr.Verdict == forensics.VerdictMalicious || named:
				keep = append(keep, vr.Version)
				if vr.Verdict == forensics.VerdictClean && named {
					sp.Notes = append(sp.Notes, fmt.Sprintf("%s@%s: nothing found, frozen because you named it", t.Name, vr.Version))
				} else {
					sp.Notes = append(sp.Notes, fmt.Sprintf("%s@%s: %s (%s)", t.Name, vr.Version, vr.Verdict, why))
				}
			case vr.Verdict == forensics.VerdictSuspicious:
				include, how := decideSuspicious(env, policy, t.Name, vr.Version, why)
				if include {
					keep = append(keep, vr.Version)
				}
				sp.Notes = append(sp.Notes, fmt.Sprintf("%s@%s: suspicious (%s): %s", t.Name, vr.Version, why, how))
			default:
				sp.Notes = append(sp.Notes, fmt.Sprintf("%s@%s: published since T but clean: left alone (name it as %s@%s to freeze it anyway)", t.Name, vr.Version, t.Name, vr.Version))
			}
		}
		// The version the freeze would fall back to must not carry an incident's indicators
		// itself (forensics checks it while diffing against it).
		for _, f := range rep.Findings {
			if f.RuleID == "metadata.known-good-matches-ioc" && t.KnownGood != "" {
				if t.KnownGoodFrom == "override" {
					sp.Notes = append(sp.Notes, fmt.Sprintf("%s: your --known-good %s matches incident indicators (%s); used because you chose it", t.Name, t.KnownGood, f.Match))
					continue
				}
				sp.Notes = append(sp.Notes, fmt.Sprintf("%s: the derived known-good %s matches incident indicators (%s): not used; tags on bad versions need a person (or --known-good)", t.Name, t.KnownGood, f.Match))
				t.KnownGood, t.KnownGoodFrom = "", "rejected"
			}
		}
		if len(keep) != len(t.Bad) {
			t.Bad = keep
			if t.KnownGoodFrom == "derived" {
				t.KnownGood, t.KnownGoodFrom = "", ""
				if kg, ok := t.Packument.LastKnownGood(t.Bad); ok {
					t.KnownGood, t.KnownGoodFrom = kg, "derived"
				}
			}
		}
		if len(t.Bad) == 0 {
			continue
		}
		sp.Ops = append(sp.Ops, evidenceOp(env, step, t.Name, ""))
		for _, v := range t.Bad {
			sp.Ops = append(sp.Ops, evidenceOp(env, step, t.Name, v))
		}
	}
	return sp, nil
}

// decideSuspicious applies the step's policy to a version found since T that is only
// suspicious: include it in the freeze or not, and say how that was decided.
func decideSuspicious(env *Env, policy, pkg, version, why string) (bool, string) {
	switch {
	case policy == "include":
		return true, "frozen (runbook: suspicious: include)"
	case policy == "exclude":
		return false, "left alone (runbook: suspicious: exclude)"
	case env.IncludeSuspicious:
		return true, "frozen (--yes)"
	case env.Confirm != nil:
		ok, err := env.Confirm(fmt.Sprintf("%s@%s is suspicious (%s). Freeze it too? [y/N] ", pkg, version, why))
		if err == nil && ok {
			return true, "frozen (you said yes)"
		}
		return false, "left alone (you said no)"
	}
	return true, "included in this plan; contain asks before freezing it (or --yes includes it)"
}

func evidenceOp(env *Env, step Step, pkg, version string) Op {
	t := env.target(pkg)
	what, url := "packument of "+pkg, env.NPM.PackumentURL(pkg)
	id := "evidence/" + escapeID(pkg) + "/packument"
	if version != "" {
		what = "tarball of " + pkg + "@" + version
		id = "evidence/" + escapeID(pkg) + "/" + version
		if v := t.Packument.Versions[version]; v != nil {
			url = v.Dist.Tarball
		}
	}
	return Op{ID: id, Stage: step.Stage, Step: step.ID, Kind: "npm.verify", Key: "npm:" + pkg, Target: pkg,
		Description: "preserve the " + what + " as evidence (SHA-256 in the manifest)",
		Params:      mustJSON(evidenceParams{Package: pkg, Version: version, URL: url})}
}

func (verify) Apply(ctx context.Context, env *Env, op Op) (Result, error) {
	p, err := decode[evidenceParams](op)
	if err != nil {
		return Result{}, err
	}
	store, err := env.Evidence()
	if err != nil {
		return Result{}, err
	}
	if p.Version == "" {
		raw, err := env.NPM.RawPackument(ctx, p.Package)
		if err != nil {
			return Result{}, fmt.Errorf("read the packument of %s: %w", p.Package, err)
		}
		env.Fault("mid")
		path, sum, err := store.SavePackument(p.Package, p.URL, raw)
		if err != nil {
			return Result{}, err
		}
		return Result{Changed: true, Summary: fmt.Sprintf("preserved the packument of %s: %s (sha256 %s)", p.Package, path, sum)}, nil
	}
	body, err := env.NPM.Tarball(ctx, p.URL)
	var he *npmreg.HTTPError
	if errors.As(err, &he) && he.Status >= 400 && he.Status < 500 && he.Status != http.StatusTooManyRequests && !errors.Is(err, npmreg.ErrAuth) {
		// The registry no longer serves it (pulled by npm, unpublished): nothing to keep, and
		// no reason to hold the freeze back. A person should know the copy is missing.
		return Result{Summary: fmt.Sprintf("the registry no longer serves %s@%s (%d)", p.Package, p.Version, he.Status),
			Manual: "no copy could be preserved; ask the registry's operators for the tarball, or take it from a mirror or a CI cache, before those are purged"}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("download %s@%s: %w", p.Package, p.Version, err)
	}
	defer body.Close()
	env.Fault("mid")
	path, sum, err := store.SaveTarball(p.Package, p.Version, p.URL, body)
	if err != nil {
		return Result{}, err
	}
	return Result{Changed: true, Summary: fmt.Sprintf("preserved %s@%s: %s (sha256 %s)", p.Package, p.Version, path, sum)}, nil
}

// Check: saving is idempotent (the same bytes are stored once), so an interrupted preservation
// is simply done again; the manifest never holds a file that is not fully written.
func (verify) Check(context.Context, *Env, Op) (Result, bool, error) { return Result{}, false, nil }

func ruleIDs(fs []forensics.Finding) []string {
	var out []string
	for _, f := range fs {
		if f.Severity == forensics.SeverityInfo {
			continue
		}
		if !slices.Contains(out, f.RuleID) {
			out = append(out, f.RuleID)
		}
	}
	return out
}
