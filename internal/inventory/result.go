package inventory

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
)

// ReadJSON reads a Result written by WriteJSON, for Merge. A document from a
// newer schema is refused rather than half understood.
func ReadJSON(r io.Reader) (*Result, error) {
	var res Result
	dec := json.NewDecoder(r)
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("inventory result: %w", err)
	}
	switch {
	case res.SchemaVersion == 0:
		return nil, fmt.Errorf("inventory result: no schema_version (not an npmir inventory document?)")
	case res.SchemaVersion > SchemaVersion:
		return nil, fmt.Errorf("inventory result: schema_version %d is newer than this npmir understands (%d)", res.SchemaVersion, SchemaVersion)
	}
	if res.Files == nil {
		res.Files = []ScannedFile{}
	}
	if res.Findings == nil {
		res.Findings = []Finding{}
	}
	if res.Errors == nil {
		res.Errors = []FileError{}
	}
	return &res, nil
}

// Merge combines the results of the shards of one sweep. The results must
// have looked for the same targets (merging sweeps for different incidents
// would make the union meaningless), and no shard may appear twice.
// Findings, files and errors are deduplicated, so merging overlapping full
// scans is harmless too.
func Merge(results ...*Result) (*Result, error) {
	if len(results) == 0 {
		return nil, fmt.Errorf("merge: no results")
	}
	out := &Result{
		SchemaVersion: SchemaVersion,
		Targets:       results[0].Targets,
		Ranges:        results[0].Ranges,
		Files:         []ScannedFile{},
		Findings:      []Finding{},
		Errors:        []FileError{},
	}
	seenShard := map[Shard]bool{}
	seenFile := map[string]bool{}
	seenFinding := map[string]bool{}
	seenErr := map[FileError]bool{}
	for i, r := range results {
		if r == nil {
			return nil, fmt.Errorf("merge: result %d is nil", i+1)
		}
		if !sameTargets(r, results[0]) {
			return nil, fmt.Errorf("merge: result %d looked for other targets than result 1", i+1)
		}
		for _, s := range r.Shards {
			if seenShard[s] {
				return nil, fmt.Errorf("merge: shard %s appears twice", s)
			}
			if len(out.Shards) > 0 && out.Shards[0].N != s.N {
				return nil, fmt.Errorf("merge: shard %s does not belong to a sweep of %d shards", s, out.Shards[0].N)
			}
			seenShard[s] = true
			out.Shards = append(out.Shards, s)
		}
		for _, f := range r.Files {
			if !seenFile[f.Path] {
				seenFile[f.Path] = true
				out.Files = append(out.Files, f)
			}
		}
		for _, f := range r.Findings {
			if k := f.key(); !seenFinding[k] {
				seenFinding[k] = true
				out.Findings = append(out.Findings, f)
			}
		}
		for _, e := range r.Errors {
			if !seenErr[e] {
				seenErr[e] = true
				out.Errors = append(out.Errors, e)
			}
		}
	}
	out.sort()
	return out, nil
}

// MissingShards lists the shards of an N-way sweep that a merged result
// does not cover, so the CLI can refuse to call a partial sweep complete.
func (r *Result) MissingShards() []Shard {
	if len(r.Shards) == 0 {
		return nil
	}
	n := r.Shards[0].N
	have := map[int]bool{}
	for _, s := range r.Shards {
		have[s.I] = true
	}
	var out []Shard
	for i := 1; i <= n; i++ {
		if !have[i] {
			out = append(out, Shard{I: i, N: n})
		}
	}
	return out
}

func sameTargets(a, b *Result) bool {
	norm := func(r *Result) ([]Target, []RangeTarget) {
		t := r.Targets
		if len(t) == 0 {
			t = nil
		}
		rg := r.Ranges
		if len(rg) == 0 {
			rg = nil
		}
		return t, rg
	}
	at, ar := norm(a)
	bt, br := norm(b)
	return reflect.DeepEqual(at, bt) && reflect.DeepEqual(stripParsed(ar), stripParsed(br))
}

func stripParsed(rs []RangeTarget) []RangeTarget {
	out := make([]RangeTarget, len(rs))
	for i, r := range rs {
		out[i] = RangeTarget{Name: r.Name, Events: r.Events, Source: r.Source}
	}
	return out
}
