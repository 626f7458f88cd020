package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/npmir/npmir/internal/inventory"
	"github.com/npmir/npmir/internal/state"
)

// InventoryOptions are the inputs of `npmir inventory`.
type InventoryOptions struct {
	IO      *IOStreams
	Factory *Factory

	Paths              []string
	Packages           []string
	Advisory           string
	IncludeOverBroad   bool
	Incident           string
	StatePath          string
	IncludeNodeModules bool
	Concurrency        int
	Shard              string
	NoPrefilter        bool
	Output             InventoryOutput

	shard inventory.Shard
}

// InventoryOutput chooses the inventory document's format and where it goes. The formats are
// the inventory's own (a SARIF file for code scanning, CSV for a spreadsheet), not the
// incident report's, so inventory does not share OutputOptions.
type InventoryOutput struct {
	Format string // table, json, csv, sarif, markdown
	File   string // --out: write the document here instead of stdout
}

// AddFlags binds --output and --out.
func (o *InventoryOutput) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", "table", "document `FORMAT`: table, json, csv, sarif or markdown")
	cmd.Flags().StringVar(&o.File, "out", "", "write the document to `FILE` instead of stdout")
}

func (o *InventoryOutput) validate() error {
	switch o.Format {
	case "table", "json", "csv", "sarif", "markdown":
		return nil
	}
	return &usageError{fmt.Sprintf("--output %q: use table, json, csv, sarif or markdown", o.Format)}
}

// write renders res. A table goes aligned to a terminal and tab-separated elsewhere; with
// --out the file is replaced atomically, so a CI job never uploads half a document.
func (o *InventoryOutput) write(io *IOStreams, res *inventory.Result) error {
	var buf bytes.Buffer
	var err error
	switch o.Format {
	case "json":
		err = inventory.WriteJSON(&buf, res)
	case "csv":
		err = inventory.WriteCSV(&buf, res)
	case "sarif":
		err = inventory.WriteSARIF(&buf, res)
	case "markdown":
		err = inventory.WriteMarkdown(&buf, res)
	default:
		err = inventory.WriteTable(&buf, res, io.OutTTY && o.File == "")
	}
	if err != nil {
		return err
	}
	if o.File == "" {
		_, err = io.Out.Write(buf.Bytes())
		return err
	}
	if err := state.WriteFileAtomic(o.File, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--out %s: %w", o.File, err)
	}
	io.Printf("wrote the %s document to %s\n", o.Format, o.File)
	return nil
}

func newInventoryCmd(f *Factory) *cobra.Command {
	opts := &InventoryOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "inventory [PATH...] (--package NAME@VERSION... | --advisory FILE | --incident ID)",
		Short: "Find every lockfile and SBOM that pins a bad version",
		Long: `Find every consumer of the bad versions under PATH (default "."): lockfiles
(package-lock.json, npm-shrinkwrap.json, yarn.lock v1 and berry, pnpm-lock.yaml, bun.lock),
CycloneDX and SPDX SBOMs, and package.json ranges that admit a bad version on the next
fresh install. Folders are walked recursively, skipping node_modules and .git.

The bad versions come from --package (repeatable; name@v1,v2 for several), an OSV advisory
(--advisory, GHSA- or MAL- records), or an incident's state file (--incident ID), or any
mix of them. An advisory range that marks every version as affected (introduced 0, no fix,
as MAL- records carry) is refused until you choose: name the bad versions with --package,
or accept every version with --include-over-broad.

A file that cannot be read or parsed is never counted as clean: it is listed with the
reason, and the exit code is 1 even when other files matched.

Exit codes: 0 every file was read and none pins, lists, installs or admits a bad version;
1 consumers found, or a file could not be read (the document says which), or shards are
missing from a merge; 2 bad usage or input; 5 interrupted (nothing written, re-run).`,
		Example: `  # the bad versions of an incident, across every checkout in ~/src
  npmir inventory --incident inc-debug-1a2b3c4d ~/src

  # named versions, a SARIF file for code scanning
  npmir inventory --package debug@4.4.2 --package chalk@5.6.1 -o sarif --out inventory.sarif .

  # an OSV record; see the versions it implies before anything is matched
  npmir inventory --advisory MAL-2025-47141.json ~/src

  # one job of an 8-way CI matrix, then the merge job
  npmir inventory --incident ID --shard 3/8 -o json --out inv-3.json repos/
  npmir inventory merge inv-*.json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			if len(opts.Paths) == 0 {
				opts.Paths = []string{"."}
			}
			if err := opts.validate(); err != nil {
				return err
			}
			return inventoryRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Packages, "package", nil, "a bad version, `name@version` (repeatable; name@v1,v2 for several)")
	fl.StringVar(&opts.Advisory, "advisory", "", "an OSV advisory `FILE` (GHSA- or MAL-): its versions and ranges are the targets")
	fl.BoolVar(&opts.IncludeOverBroad, "include-over-broad", false, "match advisory ranges that affect every version (introduced 0, no fix)")
	fl.StringVar(&opts.Incident, "incident", "", "take the bad versions from incident `ID`'s state file")
	fl.StringVar(&opts.StatePath, "state", "", "take the bad versions from the state file at `PATH` (instead of --incident)")
	fl.BoolVar(&opts.IncludeNodeModules, "include-node-modules", false, "walk node_modules too: installed package.json files and hidden lockfiles")
	fl.IntVar(&opts.Concurrency, "concurrency", 0, "`N` files read and parsed at once (default: the number of CPUs)")
	fl.StringVar(&opts.Shard, "shard", "", "scan only shard `i/n` (1-based), for a CI matrix; merge the documents with npmir inventory merge")
	fl.BoolVar(&opts.NoPrefilter, "no-prefilter", false, "parse every file, also those that never mention a target (slower; surfaces every malformed file)")
	opts.Output.AddFlags(cmd)
	cmd.AddCommand(newInventoryMergeCmd(f))
	return cmd
}

func (o *InventoryOptions) validate() error {
	if err := o.Output.validate(); err != nil {
		return err
	}
	if len(o.Packages) == 0 && o.Advisory == "" && o.Incident == "" && o.StatePath == "" {
		return &usageError{"name the bad versions: --package NAME@VERSION, --advisory FILE or --incident ID"}
	}
	if o.Concurrency < 0 {
		return &usageError{"--concurrency must be at least 1"}
	}
	if o.Shard != "" {
		sh, err := inventory.ParseShard(o.Shard)
		if err != nil {
			return &usageError{"--shard: " + err.Error()}
		}
		o.shard = sh
	}
	for _, p := range o.Paths {
		if _, err := os.Stat(p); err != nil {
			return &usageError{fmt.Sprintf("cannot scan %s: %v", p, errors.Unwrap(err))}
		}
	}
	return nil
}

func inventoryRun(ctx context.Context, opts *InventoryOptions) error {
	targets, err := opts.targets()
	if err != nil {
		return err
	}
	so := inventory.Options{
		Paths: opts.Paths, Targets: targets, IncludeNodeModules: opts.IncludeNodeModules,
		Concurrency: opts.Concurrency, Shard: opts.shard, NoPrefilter: opts.NoPrefilter,
	}
	if opts.IO.ErrTTY {
		opts.IO.Printf("Scanning %s for %d bad version(s) or range(s)…\n", strings.Join(opts.Paths, ", "), targets.Len())
	}
	stop := scanProgress(opts.IO, &so)
	res, err := inventory.Scan(ctx, so)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			// A partial document would read as a complete one: write none.
			return fmt.Errorf("inventory interrupted before every file was read; nothing was written: re-run the same command: %w", ctx.Err())
		}
		return err
	}
	if len(res.Files) == 0 && len(res.Errors) == 0 && opts.shard.N <= 1 {
		// Nothing checked is not the same as clean: most likely a wrong PATH.
		return &usageError{fmt.Sprintf("nothing to scan in %s: no lockfile, SBOM or package.json (node_modules and .git are skipped; --include-node-modules reads installed packages)", strings.Join(opts.Paths, ", "))}
	}
	if err := opts.Output.write(opts.IO, res); err != nil {
		return err
	}
	return inventoryOutcome(opts.IO, res, opts.Output, false)
}

// targets gathers the bad versions from every source given, as one set.
func (o *InventoryOptions) targets() (*inventory.Targets, error) {
	specs, err := expandPackageSpecs(o.Packages)
	if err != nil {
		return nil, err
	}
	set, err := inventory.ParseTargets(specs)
	if err != nil {
		return nil, &usageError{"--package " + err.Error()}
	}
	// Names whose bad versions the responder gave outright: an over-broad advisory range of
	// one of them is narrowed by those versions, not refused.
	named := map[string]bool{}
	for _, n := range set.Names() {
		named[n] = true
	}
	if o.Incident != "" || o.StatePath != "" {
		n, err := o.addIncidentTargets(set, named)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, &usageError{fmt.Sprintf("incident %s records no bad version (its plan has not run, or verify found every suspect version clean); name versions with --package", o.incidentName())}
		}
	}
	if o.Advisory != "" {
		if err := o.addAdvisoryTargets(set, named); err != nil {
			return nil, err
		}
	}
	if set.Len() == 0 {
		return nil, &usageError{"no bad version to look for"}
	}
	return set, nil
}

func (o *InventoryOptions) incidentName() string {
	if o.StatePath != "" {
		return o.StatePath
	}
	return o.Incident
}

func (o *InventoryOptions) addIncidentTargets(set *inventory.Targets, named map[string]bool) (int, error) {
	path := o.StatePath
	if path == "" {
		path = filepath.Join(state.Dir(o.Factory.StateDir(), o.Incident), "state.json")
	}
	if !fileExists(path) {
		return 0, &usageError{fmt.Sprintf("no state file for incident %s at %s (check the id with `npmir status`, and state_dir / NPMIR_STATE_DIR)", o.incidentName(), path)}
	}
	sf, err := state.Read(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range sf.Targets {
		for _, v := range t.Bad {
			set.Add(inventory.Target{Name: t.Package, Version: v})
			named[t.Package] = true
			n++
		}
	}
	return n, nil
}

// addAdvisoryTargets shows what the advisory implies, then adds it. A range that affects every
// version is refused unless the responder narrowed that package or accepted the range: for a
// hijacked package it would flag every user; for a typosquat it is right. Only a person knows.
func (o *InventoryOptions) addAdvisoryTargets(set *inventory.Targets, named map[string]bool) error {
	adv, err := inventory.LoadAdvisory(o.Advisory)
	if err != nil {
		return &usageError{"--advisory: " + err.Error()}
	}
	w := o.IO
	title := adv.ID
	if adv.Summary != "" {
		title += ": " + adv.Summary
	}
	w.Printf("Advisory %s\n", title)
	if len(adv.Exact) > 0 {
		var ts []string
		for _, t := range adv.Exact {
			ts = append(ts, t.String())
		}
		w.Printf("  exact versions: %s\n", strings.Join(ts, ", "))
	}
	var refused []inventory.RangeTarget
	for _, r := range adv.Ranges {
		switch {
		case !r.OverBroad():
			w.Printf("  range:          %s\n", r)
		case o.IncludeOverBroad:
			w.Printf("  over-broad:     %s (every version, no fix): matched, as --include-over-broad asks\n", r)
		case named[r.Name]:
			w.Printf("  over-broad:     %s (every version, no fix): left out, the versions you named for %s are used\n", r, r.Name)
		default:
			w.Printf("  over-broad:     %s (every version, no fix)\n", r)
			refused = append(refused, r)
		}
	}
	for _, ig := range adv.Ignored {
		w.Printf("  ignored:        %s\n", ig)
	}
	if len(refused) > 0 {
		return &usageError{overBroadMessage(adv, refused)}
	}
	for _, t := range adv.Exact {
		set.Add(t)
	}
	for _, r := range adv.Ranges {
		if r.OverBroad() && !o.IncludeOverBroad {
			continue
		}
		if err := set.AddRange(r); err != nil {
			return &usageError{fmt.Sprintf("--advisory %s: %v", o.Advisory, err)}
		}
	}
	return nil
}

func overBroadMessage(adv *inventory.Advisory, refused []inventory.RangeTarget) string {
	var b strings.Builder
	var names []string
	for _, r := range refused {
		names = append(names, r.Name)
	}
	fmt.Fprintf(&b, "advisory %s marks every version of %s as affected (introduced 0, no fix): matching that flags every project that uses %s at all.\n",
		adv.ID, strings.Join(names, ", "), plural(len(names), "it", "them"))
	b.WriteString("  If only some versions are bad (a hijacked maintainer), add them with --package to the same command")
	var flags []string
	for _, r := range refused {
		n := 0
		for _, t := range adv.Exact {
			if t.Name == r.Name {
				flags = append(flags, "--package "+t.String())
				n++
			}
		}
		if n == 0 {
			flags = append(flags, "--package "+r.Name+"@VERSION")
		}
	}
	b.WriteString(":\n    ")
	b.WriteString(strings.Join(flags, " "))
	b.WriteString("\n  If every version is malicious (a typosquat), add --include-over-broad.")
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// expandPackageSpecs accepts name@v1,v2 as contain does.
func expandPackageSpecs(specs []string) ([]string, error) {
	var out []string
	for _, s := range specs {
		at := strings.LastIndexByte(s, '@')
		if at <= 0 || !strings.Contains(s[at:], ",") {
			out = append(out, s)
			continue
		}
		for _, v := range strings.Split(s[at+1:], ",") {
			if strings.TrimSpace(v) == "" {
				return nil, &usageError{fmt.Sprintf("--package %q: an empty version in the list", s)}
			}
			out = append(out, s[:at+1]+strings.TrimSpace(v))
		}
	}
	return out, nil
}

// scanProgress shows a bar on a terminal while files are read. Scan calls Progress under its
// own lock, and stop runs after Scan returns, so the bar needs no lock of its own.
func scanProgress(io *IOStreams, so *inventory.Options) (stop func()) {
	if !io.ErrTTY {
		return func() {}
	}
	var bar *progressbar.ProgressBar
	so.Progress = func(done, total int) {
		if bar == nil {
			bar = newBar(&printer{io: io}, total, "scanning")
		}
		_ = bar.Set(done)
	}
	return func() {
		if bar != nil {
			_ = bar.Clear()
		}
	}
}

// inventoryOutcome says, on stderr and in the exit code, whether the sweep is clean. Only a
// complete scan with no finding exits 0: a consumer found, an unreadable file and a shard
// missing from a merge all exit 1, so `npmir inventory ... && deploy` never deploys past one.
// One shard's own scan is judged on its files alone: the merge judges the sweep.
func inventoryOutcome(io *IOStreams, res *inventory.Result, out InventoryOutput, merged bool) error {
	pinned, exposed := map[string]bool{}, map[string]bool{}
	for _, f := range res.Findings {
		if f.Kind == inventory.Exposed {
			exposed[f.File] = true
		} else {
			pinned[f.File] = true
		}
	}
	var problems []string
	if res.Incomplete() {
		var b strings.Builder
		fmt.Fprintf(&b, "inventory incomplete: %d file(s) could not be read, so they are not known to be clean", len(res.Errors))
		if out.Format == "table" && out.File == "" && io.OutTTY {
			b.WriteString(" (listed above)")
		} else {
			b.WriteString(":")
			for _, e := range res.Errors {
				loc := e.Path
				if e.Line > 0 {
					loc = fmt.Sprintf("%s:%d", e.Path, e.Line)
				}
				fmt.Fprintf(&b, "\n  %s: %s", loc, e.Error)
			}
		}
		problems = append(problems, b.String())
	}
	if missing := res.MissingShards(); merged && len(missing) > 0 {
		var ms []string
		for _, m := range missing {
			ms = append(ms, m.String())
		}
		problems = append(problems, fmt.Sprintf("sweep incomplete: shard(s) %s missing from the merge; run them and merge every document", strings.Join(ms, ", ")))
	}
	if len(res.Findings) > 0 {
		var parts []string
		if len(pinned) > 0 {
			parts = append(parts, fmt.Sprintf("%d file(s) pin, list or install a bad version%s", len(pinned), firstFiles(pinned)))
		}
		if len(exposed) > 0 {
			parts = append(parts, fmt.Sprintf("%d package.json file(s) admit one by range, so the next fresh install can pull it%s", len(exposed), firstFiles(exposed)))
		}
		problems = append(problems, "not clean: "+strings.Join(parts, "; "))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	what := fmt.Sprintf("%d target(s)", len(res.Targets)+len(res.Ranges))
	if !merged && len(res.Shards) > 0 {
		io.Printf("✓ shard %s clean: %d file(s) checked, none pins, lists, installs or admits any of %s; the sweep is clean once `npmir inventory merge` of every shard says so\n",
			res.Shards[0], len(res.Files), what)
		return nil
	}
	io.Printf("✓ clean: %d file(s) checked, none pins, lists, installs or admits any of %s\n", len(res.Files), what)
	return nil
}

func firstFiles(set map[string]bool) string {
	return inventory.Abbreviate(slices.Collect(maps.Keys(set)), 3)
}

// InventoryMergeOptions are the inputs of `npmir inventory merge`.
type InventoryMergeOptions struct {
	IO     *IOStreams
	Files  []string
	Output InventoryOutput
}

func newInventoryMergeCmd(f *Factory) *cobra.Command {
	opts := &InventoryMergeOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "merge FILE...",
		Short: "Merge the JSON documents of a sharded inventory into one",
		Long: `Read the --output json documents of the shards of one sweep and print them as one
document, in any format. The documents must have looked for the same targets, and no shard
may appear twice. A shard missing from the set is an error (exit 1): a sweep is clean only
when every shard was merged, every file was read and nothing was found.`,
		Example: "  npmir inventory merge inv-*.json -o sarif --out inventory.sarif",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &usageError{"name the documents to merge: npmir inventory merge FILE..."}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			if err := opts.Output.validate(); err != nil {
				return err
			}
			return inventoryMergeRun(opts)
		},
	}
	opts.Output.AddFlags(cmd)
	return cmd
}

func inventoryMergeRun(opts *InventoryMergeOptions) error {
	var results []*inventory.Result
	for _, p := range opts.Files {
		r, err := readInventoryDoc(p)
		if err != nil {
			return &usageError{err.Error()}
		}
		results = append(results, r)
	}
	res, err := inventory.Merge(results...)
	if err != nil {
		return &usageError{err.Error()}
	}
	if err := opts.Output.write(opts.IO, res); err != nil {
		return err
	}
	return inventoryOutcome(opts.IO, res, opts.Output, true)
}

func readInventoryDoc(path string) (*inventory.Result, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r, err := inventory.ReadJSON(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
