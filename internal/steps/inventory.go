package steps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/npmir/npmir/internal/inventory"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/state"
)

// The inventory stage: find every consumer of the bad versions (after verify narrowed them) in
// the lockfiles, SBOMs and manifests under the folders the runbook names. It changes nothing
// remote; each op writes one report under the incident folder, which is also how a resumed run
// knows the scan is done.

func init() { replacePending(inventoryScan{}) }

type inventoryParams struct {
	// Path is the folder or file as the runbook wrote it; Abs is where it resolved when the
	// plan was made, so a resume started from another folder scans the same files.
	Path string `json:"path"`
	Abs  string `json:"abs"`
	// Targets are the exact bad versions, name@version.
	Targets []string `json:"targets"`
	// Report is the JSON document's path, relative to the incident folder.
	Report string `json:"report"`
}

type inventoryScan struct{}

func (inventoryScan) Info() Info {
	return Info{Name: "inventory.scan", Provider: "local",
		Summary: "find every lockfile and SBOM that pins a bad version",
		Params:  []runbook.Param{{Name: "paths", Type: "strings", Doc: "folders or files to scan (relative to where npmir runs)"}},
	}
}

func (inventoryScan) Plan(_ context.Context, env *Env, step Step) (StepPlan, error) {
	paths := stringsParam(step.With, "paths")
	if len(paths) == 0 {
		// Scanning the current folder by surprise would report on whatever the responder
		// happens to stand in.
		return StepPlan{Skip: "no paths to scan: add with: paths: [...] to the runbook step, or run `npmir inventory --incident " + incidentID(env) + " PATH`"}, nil
	}
	var targets []string
	for _, t := range env.Affected() {
		for _, v := range t.Bad {
			targets = append(targets, t.Name+"@"+v)
		}
	}
	if len(targets) == 0 {
		return StepPlan{Skip: "no bad version to look for (verify found no suspect version bad)"}, nil
	}
	var sp StepPlan
	seen := map[string]string{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return StepPlan{}, fmt.Errorf("path %s: %w", p, err)
		}
		if first, ok := seen[abs]; ok {
			sp.Notes = append(sp.Notes, fmt.Sprintf("%s is the same folder as %s: scanned once", p, first))
			continue
		}
		seen[abs] = p
		if _, err := os.Stat(abs); err != nil {
			sp.Notes = append(sp.Notes, fmt.Sprintf("%s: %v; the scan fails unless it exists when the stage runs", p, errors.Unwrap(err)))
		}
		sp.Ops = append(sp.Ops, Op{
			ID:    "inventory/" + escapeID(p),
			Stage: step.Stage, Step: step.ID, Kind: "inventory.scan",
			Key:         "inventory:" + abs,
			Target:      p,
			Description: fmt.Sprintf("scan %s for consumers of %d bad version(s)", p, len(targets)),
			Params:      mustJSON(inventoryParams{Path: p, Abs: abs, Targets: targets, Report: filepath.Join("inventory", reportName(p, abs))}),
		})
	}
	return sp, nil
}

func (inventoryScan) Apply(ctx context.Context, env *Env, op Op) (Result, error) {
	p, err := decode[inventoryParams](op)
	if err != nil {
		return Result{}, err
	}
	if env.IncidentDir == "" {
		return Result{}, errors.New("no incident folder to write the inventory report to")
	}
	if _, err := os.Stat(p.Abs); err != nil {
		return Result{}, fmt.Errorf("scan %s: %w (fix the paths of the runbook step, or run `npmir inventory --incident %s PATH`)", p.Path, err, incidentID(env))
	}
	res, err := inventory.Scan(ctx, inventory.Options{Paths: []string{p.Abs}, Targets: targetSet(p.Targets)})
	if err != nil {
		return Result{}, fmt.Errorf("scan %s: %w", p.Path, err)
	}
	if env.Fault != nil {
		env.Fault("mid")
	}
	var doc bytes.Buffer
	if err := inventory.WriteJSON(&doc, res); err != nil {
		return Result{}, err
	}
	path := filepath.Join(env.IncidentDir, p.Report)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Result{}, fmt.Errorf("inventory report: %w", err)
	}
	// Atomic: Check reads this file to decide the op is done, so it must never be half there.
	if err := state.WriteFileAtomic(path, doc.Bytes(), 0o600); err != nil {
		return Result{}, fmt.Errorf("write inventory report %s: %w", path, err)
	}
	return inventoryResult(p, res, incidentID(env)), nil
}

// Check finds the report of an earlier apply, so a resumed run does not scan again. A report
// for other targets (or one that does not parse) does not count.
func (inventoryScan) Check(_ context.Context, env *Env, op Op) (Result, bool, error) {
	p, err := decode[inventoryParams](op)
	if err != nil {
		return Result{}, false, err
	}
	f, err := os.Open(filepath.Join(env.IncidentDir, p.Report))
	if err != nil {
		return Result{}, false, nil
	}
	defer f.Close()
	res, err := inventory.ReadJSON(f)
	if err != nil {
		return Result{}, false, nil
	}
	var got []string
	for _, t := range res.Targets {
		got = append(got, t.String())
	}
	want := targetSet(p.Targets).Exact()
	var wantS []string
	for _, t := range want {
		wantS = append(wantS, t.String())
	}
	if !slices.Equal(got, wantS) || len(res.Ranges) > 0 {
		return Result{}, false, nil
	}
	return inventoryResult(p, res, incidentID(env)), true, nil
}

// inventoryResult summarises a report for the state file and the responder: how many files pin
// a bad version, how many admit one by range, how many could not be read, and the first few of
// each. An unreadable file is a manual action: the inventory is not complete until a person has
// looked at it, and saying "done" would read as clean.
func inventoryResult(p inventoryParams, res *inventory.Result, incident string) Result {
	pinned, exposed := map[string]bool{}, map[string]bool{}
	for _, f := range res.Findings {
		if f.Kind == inventory.Exposed {
			exposed[f.File] = true
		} else {
			pinned[f.File] = true
		}
	}
	unread := map[string]bool{}
	for _, e := range res.Errors {
		unread[e.Path] = true
	}
	var b strings.Builder
	if len(unread) > 0 {
		fmt.Fprintf(&b, "%d file(s) could not be read: the inventory is incomplete. ", len(unread))
	}
	fmt.Fprintf(&b, "%s: %d file(s) scanned; %d pin a bad version%s; %d exposed by range%s; %d could not be read%s; report %s",
		p.Path, len(res.Files), len(pinned), p.few(pinned), len(exposed), p.few(exposed), len(unread), p.few(unread), p.Report)
	r := Result{Summary: b.String()}
	switch {
	case len(unread) > 0:
		r.Manual = fmt.Sprintf("open or repair the unreadable files%s (a file nobody read may pin a bad version), then run `npmir inventory --incident %s %s`", p.few(unread), incident, p.Path)
	case len(res.Files) == 0:
		r.Summary = fmt.Sprintf("%s: no lockfile, SBOM or package.json found, so nothing was checked; report %s", p.Path, p.Report)
		r.Manual = "check the paths of the runbook step: a folder with nothing to scan is not a clean one"
	}
	return r
}

// few lists the first files of a set, relative to the scanned path as the runbook wrote it.
func (p inventoryParams) few(set map[string]bool) string {
	files := make([]string, 0, len(set))
	for f := range set {
		if rel, err := filepath.Rel(p.Abs, f); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			f = filepath.Join(p.Path, rel)
		}
		files = append(files, f)
	}
	return inventory.Abbreviate(files, 3)
}

func targetSet(specs []string) *inventory.Targets {
	set := inventory.NewTargets()
	for _, s := range specs {
		if at := strings.LastIndexByte(s, '@'); at > 0 {
			set.Add(inventory.Target{Name: s[:at], Version: s[at+1:]})
		}
	}
	return set
}

// reportName is a file name for one scanned path: readable, and unique per resolved path.
func reportName(path, abs string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, path)
	name = strings.Trim(name, "._")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	sum := sha256.Sum256([]byte(abs))
	if name == "" {
		name = "root"
	}
	return name + "-" + hex.EncodeToString(sum[:4]) + ".json"
}

func incidentID(env *Env) string {
	if env.Spec != nil && env.Spec.ID != "" {
		return env.Spec.ID
	}
	return "ID"
}
