package inventory

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// corpusScan scans the shared fixture corpus for a handful of targets that
// several files hold, plus one file that cannot be read.
func corpusScan(t *testing.T, shard Shard) *Result {
	t.Helper()
	root := sharedFixtures(t)
	ts, err := ParseTargets([]string{"supports-color@5.5.0", "wrappy@1.0.2", "acorn@8.11.3", "has-flag@4.0.0", "@babel/code-frame@7.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Scan(context.Background(), Options{
		Paths:   []string{filepath.Join(root, "lockfiles", "real"), filepath.Join(root, "lockfiles", "peer"), filepath.Join(root, "sbom")},
		Targets: ts, Shard: shard, NoPrefilter: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestShardsMergeToTheFullScan(t *testing.T) {
	t.Parallel()
	full := corpusScan(t, Shard{})
	if len(full.Findings) < 10 {
		t.Fatalf("only %d findings in the corpus scan", len(full.Findings))
	}
	const n = 3
	var parts []*Result
	owner := map[string]int{}
	for i := 1; i <= n; i++ {
		part := corpusScan(t, Shard{I: i, N: n})
		for _, f := range part.Files {
			if prev, ok := owner[f.Path]; ok {
				t.Errorf("%s scanned by shards %d and %d", f.Path, prev, i)
			}
			owner[f.Path] = i
		}
		// Through JSON, as the CI matrix hands results to the merge job.
		var buf bytes.Buffer
		if err := WriteJSON(&buf, part); err != nil {
			t.Fatal(err)
		}
		back, err := ReadJSON(&buf)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, back)
	}
	if len(owner) != len(full.Files) {
		t.Errorf("shards scanned %d files, the full scan %d", len(owner), len(full.Files))
	}
	partial, err := Merge(parts[:2]...)
	if err != nil {
		t.Fatal(err)
	}
	if m := partial.MissingShards(); len(m) != 1 || m[0] != (Shard{3, 3}) {
		t.Errorf("MissingShards = %v, want [3/3]", m)
	}
	merged, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.MissingShards()) != 0 || len(merged.Shards) != n {
		t.Errorf("merged shards %v", merged.Shards)
	}
	merged.Shards = nil
	if !reflect.DeepEqual(merged, full) {
		a, _ := json.MarshalIndent(merged, "", " ")
		b, _ := json.MarshalIndent(full, "", " ")
		t.Errorf("merged shards differ from the full scan\nmerged: %.2000s\nfull: %.2000s", a, b)
	}

	if _, err := Merge(parts[0], parts[0]); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("merging a shard twice: %v", err)
	}
	other := *parts[1]
	other.Targets = []Target{{"left-pad", "1.3.1"}}
	if _, err := Merge(parts[0], &other); err == nil || !strings.Contains(err.Error(), "other targets") {
		t.Errorf("merging sweeps for different targets: %v", err)
	}
	for _, doc := range []string{`{"findings": []}`, `{"schema_version": 2}`, `nope`} {
		if _, err := ReadJSON(strings.NewReader(doc)); err == nil {
			t.Errorf("ReadJSON(%s) accepted it", doc)
		}
	}
}

func sampleResult(t *testing.T) *Result {
	t.Helper()
	manifest := string(mustRead(t, filepath.Join("testdata", "exposure", "package.json")))
	res, dir := scanTree(t, map[string]string{
		"app/package-lock.json": npmWorkspaces,
		"app/package.json":      manifest,
		"broken/yarn.lock":      "garbage | with pipe\n",
	}, []string{"b@2.0.0", "debug@4.4.2"}, Options{})
	// Relative paths, as a CI job reports them.
	rel := func(p string) string { r, _ := filepath.Rel(dir, p); return filepath.ToSlash(r) }
	for i := range res.Findings {
		res.Findings[i].File = rel(res.Findings[i].File)
	}
	for i := range res.Errors {
		res.Errors[i].Path = rel(res.Errors[i].Path)
	}
	for i := range res.Files {
		res.Files[i].Path = rel(res.Files[i].Path)
	}
	if len(res.Findings) != 2 || len(res.Errors) != 1 {
		t.Fatalf("sample result: %+v %+v", res.Findings, res.Errors)
	}
	return res
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	res := sampleResult(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "{\n  \"schema_version\": 1,") {
		t.Errorf("document does not open with its schema version: %.80s", buf.String())
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, res) {
		t.Errorf("JSON round trip changed the result:\n%+v\n%+v", back, res)
	}
}

func TestWriteSARIF(t *testing.T) {
	t.Parallel()
	res := sampleResult(t)
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, res); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Invocations []struct {
				ExecutionSuccessful        bool              `json:"executionSuccessful"`
				ToolExecutionNotifications []json.RawMessage `json:"toolExecutionNotifications"`
			} `json:"invocations"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("version %q, %d runs", log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	var ruleIDs []string
	for _, r := range run.Tool.Driver.Rules {
		ruleIDs = append(ruleIDs, r.ID)
	}
	if strings.Join(ruleIDs, ",") != "b@2.0.0,debug@4.4.2" {
		t.Errorf("rules %v, want one per target", ruleIDs)
	}
	if len(run.Results) != len(res.Findings) {
		t.Fatalf("%d results for %d findings", len(run.Results), len(res.Findings))
	}
	for _, r := range run.Results {
		if run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("ruleIndex %d does not point at %s", r.RuleIndex, r.RuleID)
		}
		loc := r.Locations[0].PhysicalLocation
		switch r.RuleID {
		case "b@2.0.0":
			if r.Level != "error" || loc.ArtifactLocation.URI != "app/package-lock.json" || loc.Region.StartLine != 8 ||
				!strings.Contains(r.Message.Text, "a@1.0.0 > b@2.0.0") {
				t.Errorf("locked result %+v", r)
			}
		case "debug@4.4.2":
			if r.Level != "warning" || loc.ArtifactLocation.URI != "app/package.json" || loc.Region.StartLine == 0 {
				t.Errorf("exposure result %+v", r)
			}
		}
	}
	inv := run.Invocations[0]
	if inv.ExecutionSuccessful || len(inv.ToolExecutionNotifications) != 1 {
		t.Errorf("an unreadable file must fail the run: %+v", inv)
	}
}

func TestWriteCSVTableMarkdown(t *testing.T) {
	t.Parallel()
	res := sampleResult(t)

	var buf bytes.Buffer
	if err := WriteCSV(&buf, res); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][0] != "kind" || rows[3][0] != "error" || rows[3][1] != "broken/yarn.lock" {
		t.Errorf("CSV rows %q", rows)
	}

	buf.Reset()
	if err := WriteTable(&buf, res, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "locked\tapp/package-lock.json:8\tb\t2.0.0\ttransitive\t.\ta@1.0.0 > b@2.0.0") ||
		!strings.HasPrefix(lines[2], "error\tbroken/yarn.lock\t") {
		t.Errorf("piped table:\n%s", buf.String())
	}

	buf.Reset()
	if err := WriteTable(&buf, res, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"KIND", "app/package-lock.json:8", "Not readable (1)", "2 finding(s) in 2 file(s)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("terminal table lacks %q:\n%s", want, buf.String())
		}
	}

	buf.Reset()
	if err := WriteMarkdown(&buf, res); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{"`b@2.0.0`", "| locked | `app/package-lock.json:8` | `b` | 2.0.0 |", "could not be read", `garbage \| with pipe`} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}
