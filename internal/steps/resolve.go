package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/npmreg"
)

// Resolve reads each target's packument and fixes its bad versions and last known-good version.
// Unknown packages and versions are usage errors naming them: the responder mistyped, and
// nothing should act on a guess.
func Resolve(ctx context.Context, env *Env) error {
	if env.NPM == nil {
		return errors.New("no npm registry configured")
	}
	env.Targets = env.Targets[:0]
	for _, t := range env.Spec.Targets {
		p, err := env.NPM.Packument(ctx, t.Name, false)
		if err != nil {
			if errors.Is(err, npmreg.ErrNotFound) {
				return &incident.UsageError{Msg: fmt.Sprintf("package %s does not exist on %s (check the name; scoped names are written @scope/name)", t.Name, env.NPM.Registry())}
			}
			return fmt.Errorf("read %s: %w", t.Name, err)
		}
		rt := &Target{Name: t.Name, Packument: p}
		if len(t.Versions) > 0 {
			for _, v := range t.Versions {
				if _, ok := p.Versions[v]; !ok {
					have := p.SortedVersions()
					if len(have) > 8 {
						have = have[len(have)-8:]
					}
					return &incident.UsageError{Msg: fmt.Sprintf("%s@%s is not on the registry (latest versions: %s)", t.Name, v, strings.Join(have, ", "))}
				}
				rt.Bad = append(rt.Bad, v)
			}
		} else {
			for v := range p.Versions {
				if at, ok := p.PublishedAt(v); ok && !at.Before(*env.Spec.Since) {
					rt.Bad = append(rt.Bad, v)
				}
			}
		}
		npmreg.SortVersions(rt.Bad)
		if kg, ok := env.Spec.KnownGood[t.Name]; ok {
			if _, exists := p.Versions[kg]; !exists {
				return &incident.UsageError{Msg: fmt.Sprintf("--known-good %s@%s is not on the registry", t.Name, kg)}
			}
			if rt.IsBad(kg) {
				return &incident.UsageError{Msg: fmt.Sprintf("--known-good %s@%s is one of the bad versions", t.Name, kg)}
			}
			rt.KnownGood, rt.KnownGoodFrom = kg, "override"
		} else if kg, ok := p.LastKnownGood(rt.Bad); ok {
			rt.KnownGood, rt.KnownGoodFrom = kg, "derived"
		}
		env.Targets = append(env.Targets, rt)
	}
	return nil
}
