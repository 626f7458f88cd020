// Command invbench builds the inventory benchmark corpus and runs
// inventory.Scan on it, so that bench/inventory/compare.sh can time npmir's
// scanner against osv-scanner without depending on the CLI.
//
//	invbench corpus -src DIR -out DIR [-folders 200] -target name@version...
//	invbench osvdb -out DIR -target name@version...
//	invbench scan [-no-prefilter] -target name@version... DIR...
//	invbench osvfiles < osv-scanner.json
//
// scan and osvfiles both print the sorted list of files holding a target,
// one per line, so the two lists can be compared with diff.
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/npmir/npmir/bench/inventory/corpus"
	"github.com/npmir/npmir/internal/inventory"
)

type targetList []string

func (t *targetList) String() string     { return strings.Join(*t, ",") }
func (t *targetList) Set(s string) error { *t = append(*t, s); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: invbench corpus|osvdb|scan|osvfiles ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "corpus":
		err = corpusCmd(os.Args[2:])
	case "osvdb":
		err = osvdbCmd(os.Args[2:])
	case "scan":
		err = scanCmd(os.Args[2:])
	case "osvfiles":
		err = osvFilesCmd()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "invbench:", err)
		os.Exit(1)
	}
}

func parseTargets(specs []string) ([]inventory.Target, error) {
	var out []inventory.Target
	for _, s := range specs {
		t, err := inventory.ParseTarget(s)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no -target given")
	}
	return out, nil
}

// corpusCmd writes the benchmark corpus (see package corpus).
func corpusCmd(args []string) error {
	fs := flag.NewFlagSet("corpus", flag.ExitOnError)
	src := fs.String("src", "", "folder holding the real lockfiles (one per subfolder)")
	out := fs.String("out", "", "corpus folder to create")
	folders := fs.Int("folders", 200, "number of project folders")
	var targets targetList
	fs.Var(&targets, "target", "name@version to inject (repeatable)")
	fs.Parse(args)
	ts, err := parseTargets(targets)
	if err != nil {
		return err
	}
	st, err := corpus.Build(*src, *out, *folders, ts)
	if err != nil {
		return err
	}
	for _, t := range ts {
		fmt.Fprintf(os.Stderr, "%s injected into %d folders\n", t, len(st.Injected[t.String()]))
	}
	fmt.Fprintf(os.Stderr, "corpus: %d folders, %.1f MB\n", *folders, float64(st.Bytes)/1e6)
	return nil
}

// osvdbCmd writes an offline OSV database for the targets, where
// osv-scanner v2 looks for it: <dir>/osv-scalibr/npm/all.zip (and the older
// <dir>/osv-scanner/npm/all.zip).
func osvdbCmd(args []string) error {
	fs := flag.NewFlagSet("osvdb", flag.ExitOnError)
	out := fs.String("out", "", "OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY to fill")
	var targets targetList
	fs.Var(&targets, "target", "name@version (repeatable)")
	fs.Parse(args)
	ts, err := parseTargets(targets)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, t := range ts {
		rec := map[string]any{
			"schema_version": "1.6.0",
			"id":             fmt.Sprintf("MAL-BENCH-%04d", i+1),
			"modified":       "2025-09-08T00:00:00Z",
			"published":      "2025-09-08T00:00:00Z",
			"summary":        "Benchmark target " + t.String(),
			"affected": []any{map[string]any{
				"package":  map[string]any{"ecosystem": "npm", "name": t.Name},
				"versions": []string{t.Version},
				"ranges": []any{map[string]any{"type": "SEMVER", "events": []any{
					map[string]string{"introduced": t.Version}, map[string]string{"last_affected": t.Version},
				}}},
			}},
		}
		w, err := zw.Create(rec["id"].(string) + ".json")
		if err != nil {
			return err
		}
		if err := json.NewEncoder(w).Encode(rec); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	for _, sub := range []string{"osv-scalibr", "osv-scanner"} {
		dir := filepath.Join(*out, sub, "npm")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "all.zip"), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func scanCmd(args []string) error {
	fs := flag.NewFlagSet("scan", flag.ExitOnError)
	noPrefilter := fs.Bool("no-prefilter", false, "parse every file")
	var targets targetList
	fs.Var(&targets, "target", "name@version (repeatable)")
	fs.Parse(args)
	ts, err := parseTargets(targets)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := inventory.Scan(context.Background(), inventory.Options{
		Paths: fs.Args(), Targets: inventory.NewTargets(ts...), NoPrefilter: *noPrefilter,
	})
	if err != nil {
		return err
	}
	files := map[string]bool{}
	for _, f := range res.Findings {
		if f.Kind == inventory.Locked {
			abs, _ := filepath.Abs(f.File)
			files[abs] = true
		}
	}
	printSorted(files)
	fmt.Fprintf(os.Stderr, "npmir: %d files scanned, %d findings in %d files, %d errors, %s\n",
		len(res.Files), len(res.Findings), len(files), len(res.Errors), time.Since(start).Round(time.Millisecond))
	for _, e := range res.Errors {
		fmt.Fprintf(os.Stderr, "  error %s: %s\n", e.Path, e.Error)
	}
	return nil
}

func osvFilesCmd() error {
	var doc struct {
		Results []struct {
			Source struct {
				Path string `json:"path"`
			} `json:"source"`
			Packages []struct {
				Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
			} `json:"packages"`
		} `json:"results"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&doc); err != nil {
		return fmt.Errorf("osv-scanner JSON: %w", err)
	}
	files := map[string]bool{}
	for _, r := range doc.Results {
		for _, p := range r.Packages {
			if len(p.Vulnerabilities) > 0 {
				abs, _ := filepath.Abs(r.Source.Path)
				files[abs] = true
			}
		}
	}
	printSorted(files)
	return nil
}

func printSorted(files map[string]bool) {
	var out []string
	for f := range files {
		out = append(out, f)
	}
	sort.Strings(out)
	for _, f := range out {
		fmt.Println(f)
	}
}
