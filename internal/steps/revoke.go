package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/runbook"
)

// The revoke stage: cut the compromised identity's reach on the registry. Every kind here needs
// the account named (--maintainer): without it npmir cannot tell whose reach to cut, and
// guessing (the responder's own account, say) would be worse than doing nothing.

func init() {
	replacePending(removeMaintainer{})
	replacePending(require2FA{})
	replacePending(revokeTokens{})
	replacePending(reviewTrust{})
}

const needMaintainer = "no compromised account named: pass --maintainer USER to revoke its reach"

var scopeParam = runbook.Param{Name: "scope", Type: "string", Enum: []string{"affected", "all"}, Doc: "affected (packages with versions since T, the default) or all (every package the account can publish)"}

// packagesInScope returns the packages a revoke step acts on.
func packagesInScope(env *Env, step Step) ([]string, error) {
	scope, _ := step.With["scope"].(string)
	switch scope {
	case "", "affected":
		var out []string
		for _, t := range env.Affected() {
			out = append(out, t.Name)
		}
		return out, nil
	case "all":
		out := []string{}
		for _, t := range env.Targets {
			out = append(out, t.Name)
		}
		if env.Scope != nil {
			out = append(out, env.Scope.Packages...)
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	return nil, fmt.Errorf("step %s: scope %q: use affected or all", step.ID, scope)
}

// unsupported reports a registry that does not serve a route npm's own client uses (Verdaccio
// serves no owner or access routes): the op becomes a manual action with the npm command.
func unsupported(err error) bool {
	var he *npmreg.HTTPError
	if !errors.As(err, &he) {
		return false
	}
	switch he.Status {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnprocessableEntity, http.StatusNotImplemented:
		return true
	}
	return false
}

// ---- npm.remove-maintainer

type ownerParams struct {
	Package string `json:"package"`
	User    string `json:"user"`
}

type removeMaintainer struct{}

func (removeMaintainer) Info() Info {
	return Info{Name: "npm.remove-maintainer", Provider: "npm",
		Summary: "remove the compromised account from each affected package's owners (never the last owner)",
		Params:  []runbook.Param{scopeParam}}
}

func (removeMaintainer) Plan(_ context.Context, env *Env, step Step) (StepPlan, error) {
	if r := needNPM(env); r != "" {
		return StepPlan{Skip: r}, nil
	}
	user := env.Spec.Maintainer
	if user == "" {
		return StepPlan{Skip: needMaintainer}, nil
	}
	pkgs, err := packagesInScope(env, step)
	if err != nil {
		return StepPlan{}, err
	}
	var sp StepPlan
	for _, name := range pkgs {
		op := Op{ID: "npm/owner/" + escapeID(name) + "/" + user, Stage: step.Stage, Step: step.ID, Kind: "npm.remove-maintainer",
			Key: "npm:" + name, Target: name, Description: fmt.Sprintf("remove %s from the owners of %s", user, name),
			Params: mustJSON(ownerParams{Package: name, User: user})}
		// The last-owner case is known from the packument already read: say so in the plan,
		// not only when the op runs. Apply still checks against a fresh read.
		if t := env.target(name); t != nil && len(t.Packument.Maintainers) == 1 && t.Packument.Maintainers[0].Name == user {
			op.Manual = (&npmreg.LastOwnerError{Package: name, User: user}).Error()
		}
		sp.Ops = append(sp.Ops, op)
	}
	return sp, nil
}

func (removeMaintainer) Apply(ctx context.Context, env *Env, op Op) (Result, error) {
	p, err := decode[ownerParams](op)
	if err != nil {
		return Result{}, err
	}
	env.Fault("mid")
	changed, err := env.NPM.RemoveOwner(ctx, p.Package, p.User)
	switch {
	case errors.Is(err, npmreg.ErrLastOwner):
		return Result{Summary: fmt.Sprintf("%s kept as the only owner of %s", p.User, p.Package), Manual: err.Error()}, nil
	case errors.Is(err, npmreg.ErrOwnersUnknown), unsupported(err):
		return Result{Summary: fmt.Sprintf("the registry cannot change the owners of %s here", p.Package),
			Manual: fmt.Sprintf("run `npm owner rm %s %s` against the registry that holds the package, or remove the user in its admin UI", p.User, p.Package)}, nil
	case err != nil:
		return Result{}, fmt.Errorf("remove %s from the owners of %s: %w", p.User, p.Package, err)
	case !changed:
		return Result{Summary: fmt.Sprintf("%s is not an owner of %s", p.User, p.Package)}, nil
	}
	return ownerRemoved(p), nil
}

func ownerRemoved(p ownerParams) Result {
	return Result{Changed: true, Summary: fmt.Sprintf("removed %s from the owners of %s", p.User, p.Package)}
}

func (removeMaintainer) Check(ctx context.Context, env *Env, op Op) (Result, bool, error) {
	p, err := decode[ownerParams](op)
	if err != nil {
		return Result{}, false, err
	}
	owners, err := env.NPM.Owners(ctx, p.Package)
	if err != nil {
		return Result{}, false, err
	}
	return ownerRemoved(p), len(owners) > 0 && !slices.ContainsFunc(owners, func(o npmreg.Person) bool { return o.Name == p.User }), nil
}

// ---- npm.require-2fa

type accessParams struct {
	Package string `json:"package"`
}

type require2FA struct{}

func (require2FA) Info() Info {
	return Info{Name: "npm.require-2fa", Provider: "npm",
		Summary: "require 2FA to publish and refuse tokens that bypass it (npm access set mfa=publish)",
		Params:  []runbook.Param{scopeParam}}
}

func (require2FA) Plan(_ context.Context, env *Env, step Step) (StepPlan, error) {
	if r := needNPM(env); r != "" {
		return StepPlan{Skip: r}, nil
	}
	if env.Spec.Maintainer == "" {
		return StepPlan{Skip: needMaintainer}, nil
	}
	pkgs, err := packagesInScope(env, step)
	if err != nil {
		return StepPlan{}, err
	}
	var sp StepPlan
	for _, name := range pkgs {
		sp.Ops = append(sp.Ops, Op{ID: "npm/access/" + escapeID(name) + "/mfa-publish", Stage: step.Stage, Step: step.ID, Kind: "npm.require-2fa",
			Key: "npm:" + name, Target: name, Description: fmt.Sprintf("require 2FA to publish %s; tokens may not bypass it", name),
			Params: mustJSON(accessParams{Package: name})})
	}
	return sp, nil
}

func (require2FA) Apply(ctx context.Context, env *Env, op Op) (Result, error) {
	p, err := decode[accessParams](op)
	if err != nil {
		return Result{}, err
	}
	env.Fault("mid")
	err = env.NPM.SetAccess(ctx, p.Package, npmreg.MFAPublish)
	if unsupported(err) {
		return Result{Summary: fmt.Sprintf("the registry has no access settings for %s", p.Package),
			Manual: fmt.Sprintf("run `npm access set mfa=publish %s` against the registry that holds it, or restrict publishing in its admin UI", p.Package)}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("require 2FA for %s: %w", p.Package, err)
	}
	return mfaSet(p), nil
}

func mfaSet(p accessParams) Result {
	return Result{Changed: true, Summary: fmt.Sprintf("%s now requires 2FA to publish (mfa=publish, no token bypass)", p.Package)}
}

// Check: the registry has no route to read the access settings back, and setting them again
// is harmless, so an interrupted op is simply applied again.
func (require2FA) Check(context.Context, *Env, Op) (Result, bool, error) {
	return Result{}, false, nil
}

// ---- npm.revoke-tokens

type tokenParams struct {
	Key     string `json:"key"`
	Listed  string `json:"listed"` // the listed prefix or masked form, never a secret
	Created string `json:"created,omitempty"`
	User    string `json:"user"`
}

type revokeTokens struct{}

func (revokeTokens) Info() Info {
	return Info{Name: "npm.revoke-tokens", Provider: "npm",
		Summary: "revoke the compromised account's npm tokens and prove each is refused afterwards"}
}

func (revokeTokens) Plan(ctx context.Context, env *Env, step Step) (StepPlan, error) {
	if r := needNPM(env); r != "" {
		return StepPlan{Skip: r}, nil
	}
	user := env.Spec.Maintainer
	if user == "" {
		return StepPlan{Skip: needMaintainer}, nil
	}
	if !env.NPM.HasToken() {
		return StepPlan{Skip: "npmir has no registry token: it can list and revoke only the tokens of the account it is logged in as"}, nil
	}
	me, err := env.NPM.Whoami(ctx, "")
	if err != nil {
		return StepPlan{}, fmt.Errorf("who is npmir logged in as: %w", err)
	}
	if me != user {
		// npm lists and revokes only the caller's own tokens: revoking here would revoke the
		// responder's tokens, not the attacker's.
		return StepPlan{Skip: fmt.Sprintf("npmir is logged in as %s, not the compromised account %s: the registry lists and revokes only the caller's own tokens. Reset %s's password, log in as %s and run this step again", me, user, user, user)}, nil
	}
	tokens, err := env.NPM.Tokens(ctx)
	if err != nil {
		return StepPlan{}, fmt.Errorf("list the tokens of %s: %w", user, err)
	}
	var sp StepPlan
	selfListed := false
	for _, tk := range tokens {
		if npmreg.TokenMatches(tk.Token, env.NPM.Token()) {
			selfListed = true
			sp.Notes = append(sp.Notes, fmt.Sprintf("token %s is the one npmir is using: revoke it yourself when the incident is over (npm token revoke %s)", tk.Token, tk.Key))
			continue
		}
		if env.TokensCreatedAfter != nil && !tk.Created.IsZero() && !tk.Created.After(*env.TokensCreatedAfter) {
			continue
		}
		created := ""
		if !tk.Created.IsZero() {
			created = tk.Created.UTC().Format("2006-01-02T15:04:05Z")
		}
		desc := fmt.Sprintf("revoke %s's token %s", user, tk.Token)
		if created != "" {
			desc += " created " + created
		}
		// npmjs token keys are 128 hex digits: 16 identify one in a readable id.
		sp.Ops = append(sp.Ops, Op{ID: "npm/token/" + escapeID(tk.Key[:min(16, len(tk.Key))]), Stage: step.Stage, Step: step.ID, Kind: "npm.revoke-tokens",
			Key: "npm-tokens", Target: user, Description: desc,
			Params: mustJSON(tokenParams{Key: tk.Key, Listed: tk.Token, Created: created, User: user})})
	}
	if !selfListed {
		sp.Notes = append(sp.Notes, "the token npmir is using is not in the account's token list: it was issued by a login (a session). Such sessions cannot be revoked through the tokens API and may still be live: log out where it was issued (npm logout), and change the account's password to end every session")
	}
	if len(env.LeakedTokens) > 0 {
		sp.Ops = append(sp.Ops, Op{ID: "npm/tokens/verify-refused/" + user, Stage: step.Stage, Step: step.ID, Kind: "npm.revoke-tokens",
			Key: "npm-tokens", Target: user, Description: fmt.Sprintf("prove the %d leaked token(s) are refused by the registry", len(env.LeakedTokens)),
			Params: mustJSON(tokenParams{User: user})})
	}
	return sp, nil
}

func (revokeTokens) Apply(ctx context.Context, env *Env, op Op) (Result, error) {
	p, err := decode[tokenParams](op)
	if err != nil {
		return Result{}, err
	}
	if p.Key == "" {
		return verifyLeaked(ctx, env)
	}
	// The plan checked who npmir is; a resume may run with another token. The registry lists
	// and revokes only the caller's tokens, so under another account a DELETE answers 404 and
	// would read as "already revoked": a false all-clear.
	if err := env.loggedInAs(ctx, p.User); err != nil {
		return Result{}, err
	}
	if npmreg.TokenMatches(p.Listed, env.NPM.Token()) {
		return Result{Summary: fmt.Sprintf("token %s is the one npmir is using now", p.Listed),
			Manual: fmt.Sprintf("revoke it yourself once the incident is over: npm token revoke %s", p.Key)}, nil
	}
	env.Fault("mid")
	changed, err := env.NPM.RevokeToken(ctx, p.Key)
	if err != nil {
		return Result{}, fmt.Errorf("revoke token %s: %w", p.Listed, err)
	}
	// Where npmir holds the token's value, prove the registry now refuses it: older Verdaccio
	// deleted only the record and kept accepting the token (verdaccio#1702).
	for _, leaked := range env.LeakedTokens {
		if npmreg.TokenMatches(p.Listed, leaked) {
			if _, works, err := env.NPM.TokenWorks(ctx, leaked); err != nil {
				return Result{}, fmt.Errorf("check that token %s is refused: %w", p.Listed, err)
			} else if works {
				return Result{}, fmt.Errorf("token %s was revoked but the registry still accepts it: change the account's password and contact the registry's operators", p.Listed)
			}
			return Result{Changed: changed, Summary: fmt.Sprintf("revoked token %s of %s; the registry now refuses it", p.Listed, p.User)}, nil
		}
	}
	if !changed {
		return Result{Summary: fmt.Sprintf("token %s of %s was already revoked", p.Listed, p.User)}, nil
	}
	return tokenRevoked(p), nil
}

func tokenRevoked(p tokenParams) Result {
	return Result{Changed: true, Summary: fmt.Sprintf("revoked token %s of %s", p.Listed, p.User)}
}

func verifyLeaked(ctx context.Context, env *Env) (Result, error) {
	var live []string
	for i, tok := range env.LeakedTokens {
		user, works, err := env.NPM.TokenWorks(ctx, tok)
		if err != nil {
			return Result{}, fmt.Errorf("check leaked token #%d: %w", i+1, err)
		}
		if works {
			live = append(live, fmt.Sprintf("#%d (authenticates as %s)", i+1, user))
		}
	}
	if len(live) > 0 {
		return Result{Summary: fmt.Sprintf("%d of %d leaked token(s) still work", len(live), len(env.LeakedTokens)),
			Manual: fmt.Sprintf("leaked token(s) %s are not in the account's token list (login sessions) or survived revocation: change the account's password to end its sessions, then run npmir again to check", strings.Join(live, ", "))}, nil
	}
	return Result{Summary: fmt.Sprintf("all %d leaked token(s) are refused by the registry", len(env.LeakedTokens))}, nil
}

func (revokeTokens) Check(ctx context.Context, env *Env, op Op) (Result, bool, error) {
	p, err := decode[tokenParams](op)
	if err != nil {
		return Result{}, false, err
	}
	if p.Key == "" {
		return Result{}, false, nil // a read-only check: just run it again
	}
	if err := env.loggedInAs(ctx, p.User); err != nil {
		return Result{}, false, err
	}
	tokens, err := env.NPM.Tokens(ctx)
	if err != nil {
		return Result{}, false, err
	}
	gone := !slices.ContainsFunc(tokens, func(t npmreg.Token) bool { return t.Key == p.Key })
	return tokenRevoked(p), gone, nil
}

// ---- npm.review-trusted-publishers

type trustParams struct {
	Package    string `json:"package"`
	ID         string `json:"id"`
	Repository string `json:"repository"`
	File       string `json:"file"`
}

type reviewTrust struct{}

func (reviewTrust) Info() Info {
	return Info{Name: "npm.review-trusted-publishers", Provider: "npm",
		Summary: "list trusted-publisher (OIDC) configurations; remove those not in the allowlist",
		Params: []runbook.Param{scopeParam, {Name: "allow", Type: "strings",
			Doc: "configurations to keep: owner/repo or owner/repo:workflow.yml (npm.trusted_publishers_allow in config adds more)"}}}
}

func (reviewTrust) Plan(ctx context.Context, env *Env, step Step) (StepPlan, error) {
	if r := needNPM(env); r != "" {
		return StepPlan{Skip: r}, nil
	}
	if env.Spec.Maintainer == "" {
		return StepPlan{Skip: needMaintainer}, nil
	}
	pkgs, err := packagesInScope(env, step)
	if err != nil {
		return StepPlan{}, err
	}
	allow := append(stringsParam(step.With, "allow"), env.TrustAllow...)
	type found struct {
		cfgs []npmreg.TrustConfig
		err  error
	}
	results := make([]found, len(pkgs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(env.Concurrency, 1))
	var unsupportedSeen atomic.Bool
	for i, name := range pkgs {
		g.Go(func() error {
			cfgs, err := env.NPM.TrustConfigs(gctx, name)
			if unsupported(err) {
				unsupportedSeen.Store(true)
				return nil
			}
			results[i] = found{cfgs, err}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return StepPlan{}, fmt.Errorf("list trusted publishers: %w", err)
	}
	var sp StepPlan
	if unsupportedSeen.Load() {
		sp.Notes = append(sp.Notes, "the registry does not serve trusted-publisher settings for some packages; review them where the packages are published")
	}
	for i, name := range pkgs {
		for _, c := range results[i].cfgs {
			where := c.Repository()
			if f := c.File(); f != "" {
				where += ":" + f
			}
			if slices.Contains(allow, c.Repository()) || slices.Contains(allow, where) {
				sp.Notes = append(sp.Notes, fmt.Sprintf("%s: trusted publisher %s kept (allowed)", name, where))
				continue
			}
			if len(allow) == 0 {
				sp.Notes = append(sp.Notes, fmt.Sprintf("%s: trusted publisher %s (%s) is configured; list the ones to keep in this step's allow to remove the others", name, where, c.Type))
				continue
			}
			sp.Ops = append(sp.Ops, Op{ID: "npm/trust/" + escapeID(name) + "/" + c.ID, Stage: step.Stage, Step: step.ID, Kind: "npm.review-trusted-publishers",
				Key: "npm:" + name, Target: name, Description: fmt.Sprintf("remove trusted publisher %s (%s) from %s: not in the allowlist", where, c.Type, name),
				Params: mustJSON(trustParams{Package: name, ID: c.ID, Repository: c.Repository(), File: c.File()})})
		}
	}
	return sp, nil
}

func (reviewTrust) Apply(ctx context.Context, env *Env, op Op) (Result, error) {
	p, err := decode[trustParams](op)
	if err != nil {
		return Result{}, err
	}
	env.Fault("mid")
	changed, err := env.NPM.DeleteTrust(ctx, p.Package, p.ID)
	if err != nil {
		return Result{}, fmt.Errorf("remove trusted publisher %s from %s: %w", p.Repository, p.Package, err)
	}
	if !changed {
		return Result{Summary: fmt.Sprintf("trusted publisher %s of %s was already removed", p.Repository, p.Package)}, nil
	}
	return trustRemoved(p), nil
}

func trustRemoved(p trustParams) Result {
	return Result{Changed: true, Summary: fmt.Sprintf("removed trusted publisher %s from %s", p.Repository, p.Package)}
}

func (reviewTrust) Check(ctx context.Context, env *Env, op Op) (Result, bool, error) {
	p, err := decode[trustParams](op)
	if err != nil {
		return Result{}, false, err
	}
	cfgs, err := env.NPM.TrustConfigs(ctx, p.Package)
	if err != nil {
		return Result{}, false, err
	}
	return trustRemoved(p), !slices.ContainsFunc(cfgs, func(c npmreg.TrustConfig) bool { return c.ID == p.ID }), nil
}

// target finds a resolved target by name.
func (env *Env) target(name string) *Target {
	for _, t := range env.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// loggedInAs fails unless npmir's token authenticates as user (asked once per run).
func (env *Env) loggedInAs(ctx context.Context, user string) error {
	env.whoamiOnce.Do(func() { env.whoami, env.whoamiErr = env.NPM.Whoami(ctx, "") })
	if env.whoamiErr != nil {
		return fmt.Errorf("who is npmir logged in as: %w", env.whoamiErr)
	}
	if env.whoami != user {
		return fmt.Errorf("%w: npmir is logged in as %q, not the compromised account %s; the registry lists and revokes only the caller's own tokens, so run this with %s's token", npmreg.ErrAuth, env.whoami, user, user)
	}
	return nil
}
