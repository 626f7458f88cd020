package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/npmreg"
)

// Resolve fixes what the incident is about, with read-only calls: in maintainer mode, every
// package the account can publish (the blast radius); then, for each package, its bad versions
// and last known-good version. Packuments are read concurrently: a worm's identity reaches
// hundreds of packages. Unknown packages and versions named by the responder are usage errors:
// nothing should act on a guess.
func Resolve(ctx context.Context, env *Env) error {
	if env.NPM == nil {
		return errors.New("no npm registry configured")
	}
	type job struct {
		name     string
		versions []string // explicit bad versions; empty: every version since Spec.Since
		named    bool     // named by the responder (an unknown name is their typo)
	}
	var jobs []job
	seen := map[string]bool{}
	for _, t := range env.Spec.Targets {
		jobs = append(jobs, job{name: t.Name, versions: t.Versions, named: true})
		seen[t.Name] = true
	}
	if m := env.Spec.Maintainer; m != "" {
		env.progress("listing packages of "+m, 0, 1)
		list, err := env.NPM.PackagesOf(ctx, m)
		if err != nil {
			return fmt.Errorf("list the packages %s can publish: %w", m, err)
		}
		env.Scope = &Scope{Maintainer: m, Source: list.Source}
		for name := range list.Packages {
			env.Scope.Packages = append(env.Scope.Packages, name)
		}
		slices.Sort(env.Scope.Packages)
		for _, name := range env.Scope.Packages {
			if !seen[name] {
				jobs = append(jobs, job{name: name})
				seen[name] = true
			}
		}
	}
	targets := make([]*Target, len(jobs))
	conc := env.Concurrency
	if conc <= 0 {
		conc = 8
	}
	var done atomic.Int64
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, j := range jobs {
		g.Go(func() error {
			defer func() {
				mu.Lock()
				env.progress("reading packuments", int(done.Add(1)), len(jobs))
				mu.Unlock()
			}()
			p, err := env.NPM.Packument(gctx, j.name, false)
			if err != nil {
				if errors.Is(err, npmreg.ErrNotFound) {
					if j.named {
						return &incident.UsageError{Msg: fmt.Sprintf("package %s does not exist on %s (check the name; scoped names are written @scope/name)", j.name, env.NPM.Registry())}
					}
					return nil // listed by the registry but gone since: nothing to freeze
				}
				return fmt.Errorf("read %s: %w", j.name, err)
			}
			t, err := resolveOne(env, p, j.name, j.versions)
			if err != nil {
				return err
			}
			if len(t.Bad) > 0 || j.named {
				// A discovered package with nothing published since T is in the blast
				// radius (the scope) but has nothing to freeze.
				targets[i] = t
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	env.Targets = env.Targets[:0]
	for _, t := range targets {
		if t != nil {
			env.Targets = append(env.Targets, t)
		}
	}
	return nil
}

func resolveOne(env *Env, p *npmreg.Packument, name string, versions []string) (*Target, error) {
	rt := &Target{Name: name, Packument: p, NamedVersions: versions}
	if len(versions) > 0 {
		for _, v := range versions {
			if _, ok := p.Versions[v]; !ok {
				have := p.SortedVersions()
				if len(have) > 8 {
					have = have[len(have)-8:]
				}
				return nil, &incident.UsageError{Msg: fmt.Sprintf("%s@%s is not on the registry (latest versions: %s)", name, v, strings.Join(have, ", "))}
			}
			rt.Bad = append(rt.Bad, v)
		}
	} else if env.Spec.Since != nil {
		for v := range p.Versions {
			if at, ok := p.PublishedAt(v); ok && !at.Before(*env.Spec.Since) {
				rt.Bad = append(rt.Bad, v)
			}
		}
	}
	npmreg.SortVersions(rt.Bad)
	if kg, ok := env.Spec.KnownGood[name]; ok {
		if _, exists := p.Versions[kg]; !exists {
			return nil, &incident.UsageError{Msg: fmt.Sprintf("--known-good %s@%s is not on the registry", name, kg)}
		}
		if rt.IsBad(kg) {
			return nil, &incident.UsageError{Msg: fmt.Sprintf("--known-good %s@%s is one of the bad versions", name, kg)}
		}
		rt.KnownGood, rt.KnownGoodFrom = kg, "override"
	} else if kg, ok := p.LastKnownGood(rt.Bad); ok {
		rt.KnownGood, rt.KnownGoodFrom = kg, "derived"
	}
	return rt, nil
}
