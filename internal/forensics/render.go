package forensics

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// jsonDocument is the versioned envelope of WriteJSON: one document whatever the number of
// packages, so a SOAR playbook parses one shape.
type jsonDocument struct {
	SchemaVersion int       `json:"schema_version"`
	Reports       []*Report `json:"reports"`
}

// WriteJSON writes reports as one JSON document: {"schema_version":1,"reports":[...]}.
func WriteJSON(w io.Writer, reports ...*Report) error {
	if reports == nil {
		reports = []*Report{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jsonDocument{SchemaVersion: ReportSchemaVersion, Reports: reports}); err != nil {
		return fmt.Errorf("write verify report as JSON: %w", err)
	}
	return nil
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31;1m"
	ansiYellow = "\x1b[33;1m"
	ansiGreen  = "\x1b[32m"
	ansiDim    = "\x1b[2m"
)

// WriteText writes the terminal summary of one package: a verdict line per version, then its
// findings and the shape of its diff. color adds ANSI colours (the caller decides: TTY, NO_COLOR).
func WriteText(w io.Writer, r *Report, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	kg := r.KnownGood
	if kg == "" {
		kg = "none"
	}
	fmt.Fprintf(&b, "%s  (known-good: %s, %s; rules %s)\n", r.Package, kg, r.KnownGoodFrom, r.RulesVersion)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  ! %s\n", findingLine(f, paint))
	}
	if len(r.Versions) == 0 {
		b.WriteString("  no suspect versions\n")
	}
	for _, v := range r.Versions {
		verdict := string(v.Verdict)
		switch v.Verdict {
		case VerdictMalicious:
			verdict = paint(ansiRed, strings.ToUpper(verdict))
		case VerdictSuspicious:
			verdict = paint(ansiYellow, verdict)
		default:
			verdict = paint(ansiGreen, verdict)
		}
		when := ""
		if v.PublishedAt != nil {
			when = " published " + v.PublishedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "  %s@%s  %s%s\n", r.Package, v.Version, verdict, when)
		if d := v.Diff; d != nil {
			fmt.Fprintf(&b, "    vs %s: %d added, %d removed, %d changed files\n", d.Base, len(d.Added), len(d.Removed), len(d.Changed))
		}
		if !v.Tarball.Complete && v.Tarball.Entries > 0 {
			fmt.Fprintf(&b, "    %s\n", paint(ansiYellow, "tarball only partly read (a limit or a malformed archive)"))
		}
		for _, f := range v.Findings {
			fmt.Fprintf(&b, "    - %s\n", findingLine(f, paint))
		}
	}
	for _, e := range r.Evidence {
		fmt.Fprintf(&b, "  %s %s %s\n", paint(ansiDim, "evidence"), e.Path, paint(ansiDim, "sha256:"+e.SHA256[:min(12, len(e.SHA256))]))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func findingLine(f Finding, paint func(string, string) string) string {
	sev := string(f.Severity)
	switch f.Severity {
	case SeverityHigh:
		sev = paint(ansiRed, sev)
	case SeverityMedium:
		sev = paint(ansiYellow, sev)
	}
	s := fmt.Sprintf("[%s] %s: %s", sev, f.RuleID, oneLine(f.Message))
	if f.Path != "" {
		s += " (" + oneLine(f.Path) + ")"
	}
	return s
}

// oneLine keeps attacker-controlled text (paths, scripts) from breaking or styling the terminal.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '�'
		}
		return r
	}, s)
}

// WriteMarkdown writes one package's report for an after-action document.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", mdEscape(r.Package))
	kg := r.KnownGood
	if kg == "" {
		kg = "none"
	}
	fmt.Fprintf(&b, "Known-good version: `%s` (%s). Rules: `%s`. Generated %s.\n\n", kg, r.KnownGoodFrom, r.RulesVersion, r.GeneratedAt.UTC().Format(time.RFC3339))
	if len(r.Findings) > 0 {
		b.WriteString("Package findings:\n\n")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "- **%s** `%s`: %s\n", f.Severity, f.RuleID, mdEscape(f.Message))
		}
		b.WriteString("\n")
	}
	if len(r.Versions) > 0 {
		b.WriteString("| version | verdict | published | files added / removed / changed | findings |\n|---|---|---|---|---|\n")
		for _, v := range r.Versions {
			when := ""
			if v.PublishedAt != nil {
				when = v.PublishedAt.UTC().Format(time.RFC3339)
			}
			counts := "n/a"
			if v.Diff != nil {
				counts = fmt.Sprintf("%d / %d / %d", len(v.Diff.Added), len(v.Diff.Removed), len(v.Diff.Changed))
			}
			fmt.Fprintf(&b, "| %s | **%s** | %s | %s | %d |\n", mdEscape(v.Version), v.Verdict, when, counts, len(v.Findings))
		}
		b.WriteString("\n")
	}
	for _, v := range r.Versions {
		fmt.Fprintf(&b, "### %s@%s: %s\n\n", mdEscape(r.Package), mdEscape(v.Version), v.Verdict)
		if len(v.Findings) == 0 {
			b.WriteString("No findings.\n\n")
		}
		for _, f := range v.Findings {
			line := fmt.Sprintf("- **%s** `%s`: %s", f.Severity, f.RuleID, mdEscape(f.Message))
			if f.Path != "" {
				line += " (in " + mdEscape(f.Path) + ")"
			}
			if f.Source != "" {
				line += " — source: " + mdEscape(f.Source)
			}
			b.WriteString(line + "\n")
		}
		if v.Diff != nil {
			for _, fc := range v.Diff.Changed {
				if fc.UnifiedDiff == "" {
					continue
				}
				fmt.Fprintf(&b, "\n<details><summary>diff %s</summary>\n\n````diff\n%s````\n\n</details>\n", mdEscape(fc.Path), strings.ReplaceAll(fc.UnifiedDiff, "````", "` ` ` `"))
			}
		}
		b.WriteString("\n")
	}
	if len(r.Evidence) > 0 {
		b.WriteString("Evidence preserved:\n\n")
		for _, e := range r.Evidence {
			fmt.Fprintf(&b, "- `%s` sha256 `%s`\n", e.Path, e.SHA256)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape neutralises Markdown and HTML in attacker-controlled text.
func mdEscape(s string) string {
	s = oneLine(s)
	r := strings.NewReplacer(`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "|", `\|`, "#", `\#`)
	return r.Replace(s)
}
