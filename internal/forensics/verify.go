package forensics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
)

// ReportSchemaVersion is the version of the Report JSON shape.
const ReportSchemaVersion = 1

// Verify fetches the package's packument and the tarballs of the suspect versions and of the last
// known-good version, reads them safely, diffs each suspect against the known-good one, applies the
// rules and gives each suspect a verdict. Problems with a version's content (a bad archive, an
// integrity mismatch, a missing tarball) are findings; the error is for what stops the whole
// verification (bad request, registry unreachable, cancelled context, evidence not writable), after
// which re-running the same request resumes cleanly because evidence saving is idempotent.
func Verify(ctx context.Context, src Source, req Request) (*Report, error) {
	if req.Package == "" {
		return nil, errors.New("verify: no package named")
	}
	rules := req.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	lim := req.Limits.withDefaults()
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	p, err := src.Packument(ctx, req.Package, false)
	if err != nil {
		return nil, fmt.Errorf("verify %s: read packument: %w", req.Package, err)
	}
	rep := &Report{SchemaVersion: ReportSchemaVersion, Package: req.Package, GeneratedAt: now().UTC(), RulesVersion: rules.Version, Versions: []VersionReport{}, Findings: []Finding{}}

	for _, v := range req.Versions {
		if _, ok := p.Versions[v]; ok {
			continue
		}
		if _, ok := p.Time[v]; ok {
			return nil, fmt.Errorf("verify %s@%s: the version was unpublished; its tarball is gone from the registry (look for a mirror copy)", req.Package, v)
		}
		return nil, fmt.Errorf("verify %s@%s: no such version on the registry (versions: %s)", req.Package, v, summarize(p.SortedVersions()))
	}
	if len(req.Versions) == 0 && req.Since.IsZero() {
		return nil, fmt.Errorf("verify %s: name suspect versions or a --since time", req.Package)
	}
	suspects := suspectVersions(p, req.Versions, req.Since)
	isSuspect := map[string]bool{}
	for _, v := range suspects {
		isSuspect[v] = true
	}

	switch {
	case req.KnownGood != "":
		if p.Versions[req.KnownGood] == nil {
			return nil, fmt.Errorf("verify %s: known-good version %s does not exist on the registry", req.Package, req.KnownGood)
		}
		if isSuspect[req.KnownGood] {
			return nil, fmt.Errorf("verify %s: known-good version %s is also in the suspect set", req.Package, req.KnownGood)
		}
		rep.KnownGood, rep.KnownGoodFrom = req.KnownGood, "override"
	default:
		if kg, ok := LastKnownGood(p, suspects); ok && len(suspects) > 0 {
			rep.KnownGood, rep.KnownGoodFrom = kg, "derived"
		} else {
			rep.KnownGoodFrom = "none"
		}
	}
	rep.Findings = append(rep.Findings, packageFindings(p, rules)...)

	if req.Evidence != nil && len(suspects) > 0 {
		raw, url, err := rawPackument(ctx, src, p, lim)
		if err != nil {
			return nil, fmt.Errorf("verify %s: read packument for evidence: %w", req.Package, err)
		}
		path, sum, err := req.Evidence.SavePackument(req.Package, url, raw)
		if err != nil {
			return nil, fmt.Errorf("verify %s: save packument evidence: %w", req.Package, err)
		}
		rep.Evidence = append(rep.Evidence, EvidenceRef{Path: path, SHA256: sum, Kind: "packument"})
	}

	// The known-good version: read once, compared with every suspect.
	var base *Contents
	var basePkg *pkgJSON
	if rep.KnownGood != "" && len(suspects) > 0 {
		fetched, err := fetchTarball(ctx, src, p.Versions[rep.KnownGood], lim)
		if err != nil {
			return nil, fmt.Errorf("verify %s@%s (known-good): %w", req.Package, rep.KnownGood, err)
		}
		switch {
		case fetched.problem != "":
			rep.Findings = append(rep.Findings, rules.finding("metadata.known-good-unavailable", "metadata", "", rep.KnownGood,
				"the known-good version %s could not be read (%s): suspects are judged by the rules alone, without a diff", rep.KnownGood, fetched.problem))
		default:
			base, err = ReadTarball(bytes.NewReader(fetched.data), lim, rules)
			if err != nil {
				return nil, fmt.Errorf("verify %s@%s (known-good): %w", req.Package, rep.KnownGood, err)
			}
			if basePkg, err = parsePkgJSON(base.PackageJSON); err != nil {
				basePkg, _ = parsePkgJSON(nil)
			}
			// A known-good version that itself matches an incident indicator is not known-good.
			in := &evalInput{version: rep.KnownGood, cur: base, curPkg: basePkg, regScripts: p.Versions[rep.KnownGood].Scripts, regDeps: regDeps(p.Versions[rep.KnownGood])}
			for _, f := range ruleFindings(rules, in) {
				if f.Severity == SeverityHigh {
					rep.Findings = append(rep.Findings, rules.finding("metadata.known-good-matches-ioc", "metadata", f.Path, f.RuleID,
						"the known-good version %s itself matches %s (%s): pick an earlier one with --known-good", rep.KnownGood, f.RuleID, f.Message))
				}
			}
		}
	}

	for _, v := range suspects {
		vr, ev, err := verifyVersion(ctx, src, req, p, v, rep.KnownGood, base, basePkg, isSuspect, rules, lim)
		if err != nil {
			return nil, fmt.Errorf("verify %s@%s: %w", req.Package, v, err)
		}
		rep.Versions = append(rep.Versions, vr)
		rep.Evidence = append(rep.Evidence, ev...)
	}
	sortFindings(rep.Findings)
	rep.Findings = dedupe(rep.Findings)
	return rep, nil
}

func verifyVersion(ctx context.Context, src Source, req Request, p *npmreg.Packument, v, kg string, base *Contents, basePkg *pkgJSON, isSuspect map[string]bool, rules *RuleSet, lim Limits) (VersionReport, []EvidenceRef, error) {
	man := p.Versions[v]
	vr := VersionReport{Version: v, Findings: []Finding{}, Tarball: TarballStats{URL: man.Dist.Tarball}}
	if t, ok := p.PublishedAt(v); ok {
		vr.PublishedAt = &t
	}
	var evidence []EvidenceRef
	vr.Findings = append(vr.Findings, metadataFindings(p, v, kg, isSuspect, req.Peers, rules)...)

	fetched, err := fetchTarball(ctx, src, man, lim)
	if err != nil {
		return vr, nil, err
	}
	if fetched.problem != "" {
		vr.Findings = append(vr.Findings, rules.finding(fetched.problemID, "archive", "", "", "%s", fetched.problem))
		return finish(vr), nil, nil
	}
	vr.Tarball.CompressedBytes = int64(len(fetched.data))
	var ifs []Finding
	vr.Integrity, ifs = checkIntegrity(fetched.data, man.Dist.Integrity, man.Dist.Shasum, rules)
	vr.Findings = append(vr.Findings, ifs...)
	// Preserve before analysing: the evidence must exist even if the analysis finds nothing.
	if req.Evidence != nil {
		path, sum, err := req.Evidence.SaveTarball(p.Name, v, man.Dist.Tarball, bytes.NewReader(fetched.data))
		if err != nil {
			return vr, nil, fmt.Errorf("save tarball evidence: %w", err)
		}
		evidence = append(evidence, EvidenceRef{Path: path, SHA256: sum, Kind: "tarball", Version: v})
	}
	cur, err := ReadTarball(bytes.NewReader(fetched.data), lim, rules)
	if err != nil {
		return vr, nil, err
	}
	vr.Tarball.UncompressedBytes, vr.Tarball.Entries, vr.Tarball.Complete = cur.TotalBytes, cur.Entries, cur.Complete
	vr.Findings = append(vr.Findings, cur.Findings...)

	curPkg, perr := parsePkgJSON(cur.PackageJSON)
	if perr != nil {
		vr.Findings = append(vr.Findings, rules.finding("diff.package-json-invalid", "diff", "package.json", "", "the tarball's package.json does not parse (%v); npm would refuse it, scanners may misread it", perr))
		curPkg, _ = parsePkgJSON(nil)
	}
	in := &evalInput{version: v, base: kg, cur: cur, baseC: base, curPkg: curPkg, basePkg: basePkg, regScripts: man.Scripts, regDeps: regDeps(man)}
	if base == nil {
		in.base = ""
	}
	if cur.PackageJSON != nil && perr == nil {
		vr.Findings = append(vr.Findings, manifestMismatch(man, curPkg, cur.Files, rules)...)
	}
	vr.Findings = append(vr.Findings, ruleFindings(rules, in)...)
	if base != nil {
		d := diffFiles(kg, base, cur)
		if perr == nil {
			d.PackageJSON = diffPkg(basePkg, curPkg)
		}
		vr.Diff = d
		vr.Findings = append(vr.Findings, diffFindings(rules, in, d)...)
	} else {
		// No known-good: the content flags and install scripts still count, against an empty base.
		d := diffFiles("", nil, cur)
		if perr == nil {
			d.PackageJSON = diffPkg(&pkgJSON{scripts: map[string]string{}, deps: map[string]map[string]string{}, top: map[string]json.RawMessage{}}, curPkg)
			d.PackageJSON.Dependencies = nil // every dependency would read "added": noise
		}
		vr.Findings = append(vr.Findings, diffFindings(rules, in, d)...)
	}
	return finish(vr), evidence, nil
}

func finish(vr VersionReport) VersionReport {
	sortFindings(vr.Findings)
	vr.Findings = dedupe(vr.Findings)
	vr.Verdict = verdictOf(vr.Findings)
	return vr
}

func regDeps(v *npmreg.Version) map[string]string {
	out := map[string]string{}
	for k, val := range v.Dependencies {
		out[k] = val
	}
	for k, val := range v.OptionalDependencies {
		out[k] = val
	}
	return out
}

// fetched is a downloaded tarball, or why there is none.
type fetched struct {
	data      []byte
	problem   string
	problemID string
}

// fetchTarball downloads a version's tarball into memory, within lim.MaxTarballBytes. A registry
// answer such as 404 is a problem to report; a network or context failure is an error, so the
// stage stops and can be resumed.
func fetchTarball(ctx context.Context, src Source, man *npmreg.Version, lim Limits) (fetched, error) {
	if man.Dist.Tarball == "" {
		return fetched{problem: "the manifest has no dist.tarball URL", problemID: "archive.fetch-failed"}, nil
	}
	rc, err := src.Tarball(ctx, man.Dist.Tarball)
	if err != nil {
		var he *npmreg.HTTPError
		if errors.As(err, &he) {
			return fetched{problem: fmt.Sprintf("tarball not fetched: %v", err), problemID: "archive.fetch-failed"}, nil
		}
		return fetched{}, fmt.Errorf("fetch tarball %s: %w", man.Dist.Tarball, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, lim.MaxTarballBytes+1))
	if err != nil {
		return fetched{}, fmt.Errorf("read tarball %s: %w", man.Dist.Tarball, err)
	}
	if int64(len(data)) > lim.MaxTarballBytes {
		return fetched{problem: fmt.Sprintf("tarball is larger than the %d-byte limit; not read, not preserved (raise Limits.MaxTarballBytes)", lim.MaxTarballBytes), problemID: "archive.tarball-too-large"}, nil
	}
	return fetched{data: data}, nil
}

// rawPackument returns the packument as the registry sent it, so the evidence is byte-faithful:
// from RawPackument when the source has it, else by a plain GET of the document through the
// source's Tarball method (the same authenticated-only-on-the-registry-host GET), else, failing
// both, the typed document re-encoded (fields npmir does not model are then missing).
func rawPackument(ctx context.Context, src Source, p *npmreg.Packument, lim Limits) ([]byte, string, error) {
	url := ""
	if r, ok := src.(interface{ Registry() string }); ok {
		url = r.Registry() + npmreg.PathEscape(p.Name)
	}
	if rs, ok := src.(RawPackumentSource); ok {
		raw, err := rs.RawPackument(ctx, p.Name)
		return raw, url, err
	}
	if url != "" {
		if raw, err := getDocument(ctx, src, url, lim); err == nil {
			var probe struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &probe) == nil && probe.Name == p.Name {
				return raw, url, nil
			}
		} else if ctx.Err() != nil {
			return nil, url, ctx.Err()
		}
	}
	raw, err := json.MarshalIndent(p, "", "  ")
	return raw, url, err
}

func getDocument(ctx context.Context, src Source, url string, lim Limits) ([]byte, error) {
	rc, err := src.Tarball(ctx, url)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, lim.MaxTarballBytes+1))
	if err == nil && int64(len(raw)) > lim.MaxTarballBytes {
		err = fmt.Errorf("packument %s is over %d bytes", url, lim.MaxTarballBytes)
	}
	return raw, err
}

func summarize(vs []string) string {
	if len(vs) == 0 {
		return "none"
	}
	if len(vs) > 12 {
		return "…, " + strings.Join(vs[len(vs)-12:], ", ")
	}
	return strings.Join(vs, ", ")
}
