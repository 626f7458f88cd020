package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/runbook"
)

// The freeze stage: stop new installs of the bad versions without deleting them. Deletion breaks
// reproducible builds and destroys evidence; moving dist-tags and deprecating does neither.

func init() {
	replacePending(rollbackDistTags{})
	replacePending(deprecate{})
}

type distTagParams struct {
	Package string   `json:"package"`
	Tag     string   `json:"tag"`
	From    string   `json:"from"`
	To      string   `json:"to"` // empty: remove the tag
	Bad     []string `json:"bad"`
	// Since is when the first bad version was published: a version the tag points at by the
	// time the op runs is trusted (left alone) only if it is older than that.
	Since string `json:"since,omitempty"`
}

type rollbackDistTags struct{}

func (rollbackDistTags) Info() Info {
	return Info{Name: "npm.rollback-dist-tags", Provider: "npm",
		Summary: "move every dist-tag that points at a bad version back to the last known-good version of its line",
		Params:  []runbook.Param{{Name: "tags", Type: "strings", Doc: "only these tags (default: every tag on a bad version)"}},
	}
}

func (rollbackDistTags) Plan(_ context.Context, env *Env, step Step) (StepPlan, error) {
	if r := needNPM(env); r != "" {
		return StepPlan{Skip: r}, nil
	}
	only := stringsParam(step.With, "tags")
	var sp StepPlan
	for _, t := range env.Targets {
		tags := make([]string, 0, len(t.Packument.DistTags))
		for tag := range t.Packument.DistTags {
			tags = append(tags, tag)
		}
		slices.Sort(tags)
		moved := 0
		since := ""
		if at, ok := earliestBad(t); ok {
			since = at.Format(time.RFC3339Nano)
		}
		for _, tag := range tags {
			cur := t.Packument.DistTags[tag]
			if !t.IsBad(cur) || (len(only) > 0 && !slices.Contains(only, tag)) {
				continue
			}
			moved++
			op := Op{
				ID:    "npm/dist-tag/" + escapeID(t.Name) + "/" + tag,
				Stage: step.Stage, Step: step.ID, Kind: "npm.rollback-dist-tags",
				Key:    "npm:" + t.Name,
				Target: t.Name,
			}
			to := t.KnownGood
			if tag != "latest" {
				// A tag such as next, beta or v1 follows its own line: fall back within that
				// line (same major, same stable-or-prerelease), or remove the tag when the line
				// has nothing good; never point next at the main line's stable release.
				to = lineKnownGood(t, cur)
			}
			switch {
			case to != "":
				op.Description = fmt.Sprintf("move %s of %s from %s to %s", tag, t.Name, cur, to)
				op.Params = mustJSON(distTagParams{Package: t.Name, Tag: tag, From: cur, To: to, Bad: t.Bad, Since: since})
			case tag != "latest":
				op.Description = fmt.Sprintf("remove dist-tag %s of %s: it points at bad %s and no good version of that line precedes it", tag, t.Name, cur)
				op.Params = mustJSON(distTagParams{Package: t.Name, Tag: tag, From: cur, Bad: t.Bad, Since: since})
			default:
				op.Description = fmt.Sprintf("%s: dist-tag %s points at bad %s and no known-good version precedes it", t.Name, tag, cur)
				op.Manual = fmt.Sprintf("publish a clean version of %s (for example a patch built from the last trusted commit) and run `npm dist-tag add %s@<clean> %s`, or unpublish %s@%s if the registry still allows it (npmjs: within 72 hours); or start again with --incident NEW --known-good V", t.Name, t.Name, tag, t.Name, cur)
			}
			sp.Ops = append(sp.Ops, op)
		}
		if moved == 0 {
			sp.Notes = append(sp.Notes, fmt.Sprintf("%s: no dist-tag points at a bad version (%s)", t.Name, formatTags(t.Packument.DistTags)))
		}
	}
	return sp, nil
}

// earliestBad is when the first of the target's bad versions was published.
func earliestBad(t *Target) (time.Time, bool) {
	var first time.Time
	for _, v := range t.Bad {
		if at, ok := t.Packument.PublishedAt(v); ok && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// lineKnownGood is the known-good version for a tag that points at cur: the package's
// known-good when it is on cur's line (same major, and a prerelease if cur is one), else the
// highest good version of that line published before the first bad one, else "".
func lineKnownGood(t *Target, cur string) string {
	line := func(v string) (uint64, bool, bool) {
		sv, err := semver.StrictNewVersion(v)
		if err != nil {
			return 0, false, false
		}
		return sv.Major(), sv.Prerelease() != "", true
	}
	major, pre, ok := line(cur)
	if !ok {
		return ""
	}
	same := func(v string) bool {
		m, p, ok := line(v)
		return ok && m == major && (p == pre || !p) // a stable release may serve a prerelease line
	}
	if t.KnownGood != "" && same(t.KnownGood) {
		return t.KnownGood
	}
	cutoff, haveCutoff := earliestBad(t)
	best := ""
	for _, v := range t.Packument.SortedVersions() {
		if t.IsBad(v) || !same(v) || t.Packument.Versions[v].Deprecated != "" {
			continue
		}
		if at, ok := t.Packument.PublishedAt(v); haveCutoff && (!ok || !at.Before(cutoff)) {
			continue
		}
		best = v
	}
	return best
}

func (rollbackDistTags) Apply(ctx context.Context, env *Env, op Op) (Result, error) {
	p, err := decode[distTagParams](op)
	if err != nil {
		return Result{}, err
	}
	tags, err := env.NPM.DistTags(ctx, p.Package)
	if err != nil {
		return Result{}, fmt.Errorf("read dist-tags of %s: %w", p.Package, err)
	}
	cur, present := tags[p.Tag]
	switch {
	case cur == p.To && present == (p.To != ""):
		if p.To == "" {
			return Result{Summary: fmt.Sprintf("dist-tag %s of %s already removed", p.Tag, p.Package)}, nil
		}
		return Result{Summary: fmt.Sprintf("%s of %s already at %s", p.Tag, p.Package, p.To)}, nil
	case !present:
		return Result{Summary: fmt.Sprintf("left alone: dist-tag %s of %s was removed since the plan", p.Tag, p.Package)}, nil
	case !slices.Contains(p.Bad, cur):
		// The tag moved since the plan. A maintainer pointing it at an older, trusted
		// release is a decision to respect; a version published after the compromise began
		// may be the attacker's next one, and is not a reason to stop.
		newer, err := publishedSince(ctx, env, p, cur)
		if err != nil {
			return Result{}, err
		}
		if newer {
			return Result{Summary: fmt.Sprintf("%s of %s now points at %s, published after the compromise began; not moved", p.Tag, p.Package, cur),
				Manual: fmt.Sprintf("verify %s@%s (npmir verify %s@%s); if it is bad, contain it as well", p.Package, cur, p.Package, cur)}, nil
		}
		return Result{Summary: fmt.Sprintf("left alone: %s of %s now points at %s, an older release than the compromise", p.Tag, p.Package, cur)}, nil
	}
	env.Fault("mid")
	if p.To == "" {
		if err := env.NPM.DeleteDistTag(ctx, p.Package, p.Tag); err != nil {
			return Result{}, fmt.Errorf("remove dist-tag %s of %s: %w", p.Tag, p.Package, err)
		}
		return distTagDone(p), nil
	}
	if err := env.NPM.SetDistTag(ctx, p.Package, p.Tag, p.To); err != nil {
		return Result{}, fmt.Errorf("move %s of %s to %s: %w", p.Tag, p.Package, p.To, err)
	}
	return distTagDone(p), nil
}

// publishedSince reports whether version v was published at or after the compromise began (or
// when that cannot be told).
func publishedSince(ctx context.Context, env *Env, p distTagParams, v string) (bool, error) {
	since, err := time.Parse(time.RFC3339Nano, p.Since)
	if err != nil {
		return true, nil
	}
	pk, err := env.NPM.Packument(ctx, p.Package, false)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p.Package, err)
	}
	at, ok := pk.PublishedAt(v)
	return !ok || !at.Before(since), nil
}

func distTagDone(p distTagParams) Result {
	if p.To == "" {
		return Result{Changed: true, Summary: fmt.Sprintf("removed dist-tag %s of %s (it pointed at %s)", p.Tag, p.Package, p.From)}
	}
	return Result{Changed: true, Summary: fmt.Sprintf("moved %s of %s from %s to %s", p.Tag, p.Package, p.From, p.To)}
}

func (rollbackDistTags) Check(ctx context.Context, env *Env, op Op) (Result, bool, error) {
	p, err := decode[distTagParams](op)
	if err != nil {
		return Result{}, false, err
	}
	tags, err := env.NPM.DistTags(ctx, p.Package)
	if err != nil {
		return Result{}, false, err
	}
	cur, present := tags[p.Tag]
	return distTagDone(p), cur == p.To && present == (p.To != ""), nil
}

type deprecateParams struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Message string `json:"message"`
}

type deprecate struct{}

// DefaultDeprecationMessage is used when the runbook step gives none.
const DefaultDeprecationMessage = "npmir incident {incident}: {package}@{version} was published from a compromised maintainer account; do not install it, use {known_good}"

func (deprecate) Info() Info {
	return Info{Name: "npm.deprecate", Provider: "npm",
		Summary: "deprecate every bad version with a message naming the incident and the version to use",
		Params: []runbook.Param{{Name: "message", Type: "string",
			Doc: "template; {incident}, {package}, {version} and {known_good} are filled in"}},
	}
}

func (deprecate) Plan(_ context.Context, env *Env, step Step) (StepPlan, error) {
	if r := needNPM(env); r != "" {
		return StepPlan{Skip: r}, nil
	}
	tmpl, _ := step.With["message"].(string)
	if tmpl == "" {
		tmpl = DefaultDeprecationMessage
	}
	var sp StepPlan
	for _, t := range env.Targets {
		good := t.KnownGood
		if good == "" {
			good = "a version published before the compromise"
		}
		for _, v := range t.Bad {
			msg := strings.NewReplacer("{incident}", env.Spec.ID, "{package}", t.Name, "{version}", v, "{known_good}", good).Replace(tmpl)
			sp.Ops = append(sp.Ops, Op{
				ID:    "npm/deprecate/" + escapeID(t.Name) + "/" + v,
				Stage: step.Stage, Step: step.ID, Kind: "npm.deprecate",
				Key:         "npm:" + t.Name,
				Target:      t.Name,
				Description: fmt.Sprintf("deprecate %s@%s: %q", t.Name, v, msg),
				Params:      mustJSON(deprecateParams{Package: t.Name, Version: v, Message: msg}),
			})
		}
	}
	return sp, nil
}

func (deprecate) Apply(ctx context.Context, env *Env, op Op) (Result, error) {
	p, err := decode[deprecateParams](op)
	if err != nil {
		return Result{}, err
	}
	// Deprecate reads the packument and writes only when the message differs; "mid" fires
	// between that read and the write.
	changed, err := env.NPM.Deprecate(npmreg.WithBeforeWrite(ctx, func() { env.Fault("mid") }), p.Package, p.Version, p.Message)
	if err != nil {
		return Result{}, fmt.Errorf("deprecate %s@%s: %w", p.Package, p.Version, err)
	}
	if !changed {
		return Result{Summary: fmt.Sprintf("%s@%s already deprecated with this message", p.Package, p.Version)}, nil
	}
	return deprecateDone(p), nil
}

func deprecateDone(p deprecateParams) Result {
	return Result{Changed: true, Summary: fmt.Sprintf("deprecated %s@%s", p.Package, p.Version)}
}

func (deprecate) Check(ctx context.Context, env *Env, op Op) (Result, bool, error) {
	p, err := decode[deprecateParams](op)
	if err != nil {
		return Result{}, false, err
	}
	pk, err := env.NPM.Packument(ctx, p.Package, true)
	if err != nil {
		return Result{}, false, fmt.Errorf("read %s: %w", p.Package, err)
	}
	v, ok := pk.Versions[p.Version]
	return deprecateDone(p), ok && v.Deprecated == p.Message, nil
}

func stringsParam(with map[string]any, name string) []string {
	list, _ := with[name].([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ", ")
}
