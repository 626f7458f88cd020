package inventory

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// The writers render a Result for people (table, Markdown) and machines
// (JSON, CSV, SARIF). Every one of them shows the files that could not be
// read: a report that drops them would read as clean.

// WriteJSON writes the result as one versioned document ({"schema_version":
// 1, ...}); ReadJSON reads it back for Merge.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

func location(file string, line int) string {
	if line > 0 {
		return file + ":" + strconv.Itoa(line)
	}
	return file
}

func pathText(f Finding) string {
	if len(f.Path) == 0 {
		return "-"
	}
	return strings.Join(f.Path, " > ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func versionText(f Finding) string {
	if f.Version == "" {
		return "any (" + f.Target + ")"
	}
	return f.Version
}

// WriteTable writes findings and errors. On a terminal (tty) the columns
// are aligned and a summary line closes the table; otherwise every row is
// tab-separated fields with no decoration, for cut and awk.
func WriteTable(w io.Writer, r *Result, tty bool) error {
	if !tty {
		for _, f := range r.Findings {
			fields := []string{string(f.Kind), location(f.File, f.Line), f.Package, f.Version, string(f.Relation), f.Workspace, strings.Join(f.Path, " > "), f.Target}
			if _, err := fmt.Fprintln(w, strings.Join(fields, "\t")); err != nil {
				return err
			}
		}
		for _, e := range r.Errors {
			if _, err := fmt.Fprintf(w, "error\t%s\t%s\n", location(e.Path, e.Line), e.Error); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(r.Findings) > 0 {
		fmt.Fprintln(tw, "KIND\tFILE\tPACKAGE\tVERSION\tRELATION\tWORKSPACE\tPATH")
		for _, f := range r.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Kind, location(f.File, f.Line), f.Package,
				versionText(f), f.Relation, orDash(f.Workspace), pathText(f))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "\nNot readable (%d), so not known to be clean:\n", len(r.Errors))
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s: %s\n", location(e.Path, e.Line), e.Error)
		}
	}
	_, err := fmt.Fprintf(w, "\n%s\n", summary(r))
	return err
}

func summary(r *Result) string {
	files := map[string]bool{}
	for _, f := range r.Findings {
		files[f.File] = true
	}
	s := fmt.Sprintf("%d finding(s) in %d file(s); %d file(s) scanned", len(r.Findings), len(files), len(r.Files))
	if len(r.Errors) > 0 {
		s += fmt.Sprintf("; %d could not be read", len(r.Errors))
	}
	if missing := r.MissingShards(); len(missing) > 0 {
		var ms []string
		for _, m := range missing {
			ms = append(ms, m.String())
		}
		s += "; shards missing: " + strings.Join(ms, ", ")
	}
	return s
}

// WriteCSV writes one row per finding and one per unreadable file (kind
// "error", the message in the note column).
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"kind", "file", "line", "package", "version", "alias", "relation", "workspace", "path", "target", "spec", "dependency_type", "note"})
	for _, f := range r.Findings {
		cw.Write([]string{string(f.Kind), f.File, lineText(f.Line), f.Package, f.Version, f.Alias, string(f.Relation),
			f.Workspace, strings.Join(f.Path, " > "), f.Target, f.Spec, f.DependencyType, f.Note})
	}
	for _, e := range r.Errors {
		cw.Write([]string{"error", e.Path, lineText(e.Line), "", "", "", "", "", "", "", "", "", e.Error})
	}
	cw.Flush()
	return cw.Error()
}

func lineText(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// WriteMarkdown writes a report for an issue or an after-action document.
func WriteMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString("## npm inventory\n\n")
	var ts []string
	for _, t := range r.Targets {
		ts = append(ts, "`"+t.String()+"`")
	}
	for _, rg := range r.Ranges {
		ts = append(ts, "`"+rg.String()+"`")
	}
	fmt.Fprintf(&b, "Targets: %s\n\n", strings.Join(ts, ", "))
	fmt.Fprintf(&b, "%s.\n\n", summary(r))
	if len(r.Findings) > 0 {
		b.WriteString("| Kind | File | Package | Version | Relation | Workspace | Path |\n|---|---|---|---|---|---|---|\n")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "| %s | `%s` | `%s` | %s | %s | %s | %s |\n", f.Kind, mdCell(location(f.File, f.Line)),
				mdCell(f.Package), mdCell(versionText(f)), f.Relation, mdCell(orDash(f.Workspace)), mdCell(pathText(f)))
		}
		b.WriteString("\n")
	}
	if len(r.Errors) > 0 {
		b.WriteString("### Files that could not be read (not known to be clean)\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- `%s`: %s\n", mdCell(location(e.Path, e.Line)), mdCell(e.Error))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "`", "'")
}

// SARIF 2.1.0, the subset GitHub code scanning reads.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      sarifText         `json:"fullDescription"`
	Help                 sarifText         `json:"help"`
	DefaultConfiguration map[string]string `json:"defaultConfiguration"`
	Properties           map[string]any    `json:"properties,omitempty"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation struct {
		URI string `json:"uri"`
	} `json:"artifactLocation"`
	Region *struct {
		StartLine int `json:"startLine"`
	} `json:"region,omitempty"`
}

func sarifLoc(file string, line int) sarifLocation {
	var l sarifLocation
	u := filepath.ToSlash(file)
	if filepath.IsAbs(file) {
		u = "file://" + u
	}
	l.PhysicalLocation.ArtifactLocation.URI = strings.TrimPrefix(u, "./")
	if line > 0 {
		l.PhysicalLocation.Region = &struct {
			StartLine int `json:"startLine"`
		}{line}
	}
	return l
}

// WriteSARIF writes SARIF 2.1.0 for code scanning: one rule per target, one
// result per finding located at its file (and line). Unreadable files are
// tool execution notifications and mark the run as not successful.
func WriteSARIF(w io.Writer, r *Result) error {
	ruleIdx := map[string]int{}
	var rules []sarifRule
	addRule := func(id string) int {
		if i, ok := ruleIdx[id]; ok {
			return i
		}
		name, _, _ := splitNameAt(id)
		rules = append(rules, sarifRule{
			ID:               id,
			Name:             "CompromisedNpmVersion",
			ShortDescription: sarifText{Text: "Compromised npm package version " + id},
			FullDescription:  sarifText{Text: "A dependency resolves, or can resolve, to " + id + ", a version published by a compromised identity."},
			Help: sarifText{
				Text:     "Pin " + name + " to a known-good version (overrides/resolutions), regenerate the lockfile, and rotate any secret the build could reach.",
				Markdown: "Pin `" + name + "` to a known-good version (`overrides` / `resolutions`), regenerate the lockfile, and rotate any secret the build could reach.",
			},
			DefaultConfiguration: map[string]string{"level": "error"},
			Properties:           map[string]any{"tags": []string{"security", "supply-chain", "npm"}, "security-severity": "9.8"},
		})
		ruleIdx[id] = len(rules) - 1
		return len(rules) - 1
	}
	// Rules in a stable order: every target, then any other matched id.
	for _, t := range r.Targets {
		addRule(t.String())
	}
	for _, rg := range r.Ranges {
		addRule(rg.String())
	}
	results := []sarifResult{}
	for _, f := range r.Findings {
		idx := addRule(f.Target)
		level := "error"
		var msg string
		switch f.Kind {
		case Exposed:
			level = "warning"
			msg = fmt.Sprintf("%s %q for %s admits the compromised %s: the next install that resolves afresh can pull it.", f.DependencyType, f.Spec, f.Package, f.Target)
		case Listed:
			msg = fmt.Sprintf("The SBOM lists %s@%s, a compromised version.", f.Package, f.Version)
		case Installed:
			msg = fmt.Sprintf("node_modules holds %s@%s, a compromised version.", f.Package, f.Version)
		default:
			msg = fmt.Sprintf("The lockfile pins %s@%s, a compromised version (%s", f.Package, f.Version, f.Relation)
			if len(f.Path) > 0 {
				msg += ", via " + strings.Join(f.Path, " > ")
			}
			msg += ")."
		}
		sum := sha256.Sum256([]byte(f.key()))
		results = append(results, sarifResult{
			RuleID: f.Target, RuleIndex: idx, Level: level,
			Message:             sarifText{Text: msg},
			Locations:           []sarifLocation{sarifLoc(f.File, f.Line)},
			PartialFingerprints: map[string]string{"npmirFinding/v1": hex.EncodeToString(sum[:16])},
		})
	}
	inv := sarifInvocation{ExecutionSuccessful: len(r.Errors) == 0}
	for _, e := range r.Errors {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
			Level:     "error",
			Message:   sarifText{Text: "could not read " + e.Path + ": " + e.Error + " (not known to be clean)"},
			Locations: []sarifLocation{sarifLoc(e.Path, e.Line)},
		})
	}
	if rules == nil {
		rules = []sarifRule{}
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].RuleIndex < results[j].RuleIndex })
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:        sarifTool{Driver: sarifDriver{Name: "npmir", InformationURI: "https://github.com/npmir/npmir", Rules: rules}},
			Invocations: []sarifInvocation{inv},
			Results:     results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// Abbreviate renders a few of files for a one-line summary: " (a, b, c, +4 more)", sorted; ""
// when there are none.
func Abbreviate(files []string, few int) string {
	if len(files) == 0 {
		return ""
	}
	files = slices.Clone(files)
	slices.Sort(files)
	s := " (" + strings.Join(files[:min(few, len(files))], ", ")
	if len(files) > few {
		s += fmt.Sprintf(", +%d more", len(files)-few)
	}
	return s + ")"
}
