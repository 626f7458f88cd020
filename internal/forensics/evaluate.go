package forensics

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// verdictOf scores findings as documented on Verdict.
func verdictOf(fs []Finding) Verdict {
	best := 0
	for _, f := range fs {
		best = max(best, f.Severity.rank())
	}
	switch {
	case best >= SeverityHigh.rank():
		return VerdictMalicious
	case best >= SeverityMedium.rank():
		return VerdictSuspicious
	}
	return VerdictClean
}

// sortFindings orders by severity (highest first), then rule id and path, for stable reports.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.rank() != b.Severity.rank() {
			return a.Severity.rank() > b.Severity.rank()
		}
		if a.RuleID != b.RuleID {
			return a.RuleID < b.RuleID
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Match < b.Match
	})
}

// evalInput is one version's material for the IOC rules and the diff checks.
type evalInput struct {
	version, base string
	cur           *Contents
	baseC         *Contents // nil: no known-good to compare with
	curPkg        *pkgJSON  // parsed tarball package.json (empty when unparsable)
	basePkg       *pkgJSON
	regScripts    map[string]string // the registry manifest's scripts
	regDeps       map[string]string // the registry manifest's dependencies + optionalDependencies
	pkgDiff       *PackageJSONDiff
}

// changedPath reports whether p is new or different since the base; with no base every file is.
func (in *evalInput) changedPath(p string) bool {
	if in.baseC == nil {
		return true
	}
	old, ok := in.baseC.Files[p]
	return !ok || old.SHA256 != in.cur.Files[p].SHA256 || old.Linkname != in.cur.Files[p].Linkname
}

// ruleFindings applies the IOC rules to one version.
func ruleFindings(rules *RuleSet, in *evalInput) []Finding {
	var out []Finding
	byID := map[string]*Rule{}
	for _, r := range rules.Rules {
		byID[r.ID] = r
	}
	changedOnly := func(r *Rule) bool { return r.Scope == "changed" }
	for _, p := range in.cur.Order {
		f := in.cur.Files[p]
		changed := in.changedPath(p)
		for _, r := range rules.Rules {
			if changedOnly(r) && !changed {
				continue
			}
			switch r.Kind {
			case KindFilename, KindWorkflow:
				for _, g := range r.Values {
					if matchPath(g, p) {
						out = append(out, ruleFinding(r, p, g))
						break
					}
				}
			case KindSHA256:
				if f.SHA256 != "" && r.appliesToFile(p) && slices.Contains(r.Values, f.SHA256) {
					out = append(out, ruleFinding(r, p, f.SHA256))
				}
			}
		}
		for _, h := range f.hits {
			id, val, _ := strings.Cut(h, "\x00")
			r := byID[id]
			if r == nil || (changedOnly(r) && !changed) {
				continue
			}
			out = append(out, ruleFinding(r, p, val))
		}
	}
	// Scripts: the tarball's (what install runs) and the registry's (what people read).
	for _, r := range rules.Rules {
		if r.Kind != KindScript {
			continue
		}
		seen := map[string]bool{}
		for _, src := range []map[string]string{in.curPkg.scripts, in.regScripts} {
			for _, name := range r.Scripts {
				cmd, ok := src[name]
				if !ok || seen[name+"\x00"+cmd] {
					continue
				}
				if changedOnly(r) && in.basePkg != nil && in.basePkg.scripts[name] == cmd {
					continue
				}
				for _, re := range r.res {
					if re.MatchString(cmd) {
						seen[name+"\x00"+cmd] = true
						out = append(out, ruleFinding(r, "package.json", name+": "+cmd))
						break
					}
				}
			}
		}
	}
	// Dependencies that must not appear.
	for _, r := range rules.Rules {
		if r.Kind != KindDependency {
			continue
		}
		for _, name := range r.Values {
			_, inTar := in.curPkg.deps["dependencies"][name]
			_, inOpt := in.curPkg.deps["optionalDependencies"][name]
			_, inReg := in.regDeps[name]
			if !inTar && !inOpt && !inReg {
				continue
			}
			if changedOnly(r) && in.basePkg != nil {
				_, was := in.basePkg.deps["dependencies"][name]
				if was {
					continue
				}
			}
			out = append(out, ruleFinding(r, "package.json", name))
		}
	}
	return out
}

// diffFindings turns the diff into generic-signal findings.
func diffFindings(rules *RuleSet, in *evalInput, d *Diff) []Finding {
	var out []Finding
	add := func(id, cat, p, match, format string, args ...any) {
		out = append(out, rules.finding(id, cat, p, match, format, args...))
	}
	if pd := d.PackageJSON; pd != nil {
		for _, s := range pd.Scripts {
			if !s.Lifecycle {
				continue
			}
			switch s.Change {
			case Added:
				add("diff.lifecycle-script-added", "diff", "package.json", s.Name+": "+s.New, "install-time script %q added: %q (runs on every install)", s.Name, s.New)
			case Changed:
				add("diff.lifecycle-script-changed", "diff", "package.json", s.Name+": "+s.New, "install-time script %q changed from %q to %q", s.Name, s.Old, s.New)
			}
		}
		patch := in.base != "" && isPatchRelease(in.base, in.version)
		for _, c := range pd.Dependencies {
			switch {
			case c.Change == Added && patch && c.Section != "devDependencies":
				add("diff.dependency-added-in-patch", "diff", "package.json", c.Name, "%s %q added in a patch release (%s → %s)", c.Section, c.Name+"@"+c.New, in.base, in.version)
			case c.Change == Added:
				add("diff.dependency-added", "diff", "package.json", c.Name, "%s %q added", c.Section, c.Name+"@"+c.New)
			case c.Change == Changed:
				add("diff.dependency-changed", "diff", "package.json", c.Name, "%s %q changed from %q to %q", c.Section, c.Name, c.Old, c.New)
			case c.Change == Removed:
				add("diff.dependency-removed", "diff", "package.json", c.Name, "%s %q removed", c.Section, c.Name)
			}
		}
		if pd.Main != nil {
			add("diff.main-changed", "diff", "package.json", pd.Main.New, "main changed from %q to %q", pd.Main.Old, pd.Main.New)
		}
		if pd.Bin != nil {
			add("diff.bin-changed", "diff", "package.json", pd.Bin.New, "bin changed from %s to %s", orNone(pd.Bin.Old), orNone(pd.Bin.New))
		}
	}
	for _, group := range [][]FileChange{d.Added, d.Changed} {
		for _, fc := range group {
			for _, flag := range fc.Flags {
				switch flag {
				case "high-entropy":
					add("content.high-entropy", "content", fc.Path, "", "%s file of %d bytes with %.2f bits/byte of entropy (packed, encrypted or obfuscated)", changeWord(fc), fc.NewSize, fc.Entropy)
				case "minified":
					add("content.minified", "content", fc.Path, "", "%s minified file of %d bytes", changeWord(fc), fc.NewSize)
				case "binary":
					add("content.binary", "content", fc.Path, "", "%s binary file of %d bytes", changeWord(fc), fc.NewSize)
				}
			}
		}
	}
	return out
}

func changeWord(fc FileChange) string {
	if fc.OldSHA256 == "" {
		return "new"
	}
	return "changed"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// dedupe drops findings identical in rule, path and match (a rule hit via two routes).
func dedupe(fs []Finding) []Finding {
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		k := fmt.Sprintf("%s\x00%s\x00%s", f.RuleID, f.Path, f.Match)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
}
