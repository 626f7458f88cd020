// Package contain_test benchmarks `npmir contain --maintainer` against the simulated registry
// with injected latency: issue 5's "contain of 800 packages against the sim at 50 ms latency per
// request finishes within 1.5× of (requests × 50 ms ÷ concurrency)".
//
// It holds benchmarks only (no Test functions), so `go test ./...` compiles it and runs nothing;
// run it with bench/contain/run.sh or
//
//	go test ./bench/contain -run '^$' -bench . -benchtime 1x
package contain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/cli"
	"github.com/npmir/npmir/internal/sim"
	"github.com/npmir/npmir/internal/state"
)

const latency = 50 * time.Millisecond

// benchPackages is the blast radius: 800 packages, every one with versions published since T,
// so contain acts on all 800 (the "contain of 800 packages"). BENCH_AFFECTED overrides
// the affected count (a realistic mix such as 800/100), BENCH_CONCURRENCY the concurrencies.
const benchPackages = 800

func BenchmarkContainMaintainer(b *testing.B) {
	affected := envInt(b, "BENCH_AFFECTED", benchPackages)
	concs := []int{32, 64}
	if s := os.Getenv("BENCH_CONCURRENCY"); s != "" {
		concs = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("BENCH_CONCURRENCY=%q: want a comma-separated list of positive integers", s)
			}
			concs = append(concs, n)
		}
	}
	for _, conc := range concs {
		b.Run(fmt.Sprintf("packages=%d/affected=%d/concurrency=%d", benchPackages, affected, conc), func(b *testing.B) {
			var last measure
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				w := newWorld(b, sim.ScenarioOptions{Packages: benchPackages, Affected: affected}, conc)
				b.StartTimer()
				m := w.contain(b)
				b.StopTimer()
				last = m
			}
			m := last
			b.ReportMetric(float64(m.requests), "requests")
			b.ReportMetric(float64(conc), "concurrency")
			b.ReportMetric(m.wall.Seconds(), "wall_s")
			b.ReportMetric(m.ideal(conc).Seconds(), "ideal_s")
			b.ReportMetric(m.ratio(conc), "ratio")
			b.ReportMetric(m.avgInFlight(), "avg_inflight")
			b.ReportMetric(float64(m.planRequests), "plan_requests")
			b.ReportMetric(m.planWall.Seconds(), "plan_wall_s")
			b.ReportMetric(float64(m.ops), "ops")
			b.ReportMetric(float64(m.stateWrites), "state_writes")
			b.ReportMetric(float64(m.stateCost.bytes), "state_bytes")
			b.ReportMetric(float64(m.manifestEntries), "evidence_manifest_entries")
			b.ReportMetric(float64(m.evidenceOps), "evidence_ops")
			b.Logf("SUMMARY packages=%d affected=%d concurrency=%d requests=%d wall=%.2fs ideal=%.2fs ratio=%.2f avg_inflight=%.1f ops=%d",
				benchPackages, affected, conc, m.requests, m.wall.Seconds(), m.ideal(conc).Seconds(), m.ratio(conc), m.avgInFlight(), m.ops)
			b.Logf("PHASES plan(resolve+plan+state init): %d requests in %.2fs (ideal %.2fs)", m.planRequests, m.planWall.Seconds(),
				(time.Duration(m.planRequests) * latency / time.Duration(conc)).Seconds())
			if m.manifestEntries != m.evidenceOps {
				b.Logf("EVIDENCE %d preservation ops done but evidence/manifest.json lists %d entries: concurrent saves lost manifest entries", m.evidenceOps, m.manifestEntries)
			}
			c := m.stateCost
			b.Logf("STATE %d writes of state.json during the run; the final file is %d bytes: MarshalIndent %.1fms, Marshal %.1fms, atomic write with fsyncs %.1fms (without fsync %.1fms); %d writes x (MarshalIndent + atomic write) = %.1fs of serialised saver time if each write encodes the whole file",
				m.stateWrites, c.bytes, ms(c.marshalIndent), ms(c.marshal), ms(c.writeAtomic), ms(c.writeAtomicNoSync), m.stateWrites,
				(time.Duration(m.stateWrites) * (c.marshalIndent + c.writeAtomic)).Seconds())
			for _, st := range m.stages {
				b.Logf("PHASES stage %-8s %4d ops %5d requests in %6.2fs (ideal %5.2fs) longest per-package chain %d requests",
					st.name, st.ops, st.requests, st.wall.Seconds(), (time.Duration(st.requests) * latency / time.Duration(conc)).Seconds(), st.longestChain)
			}
		})
	}
}

// world is one freshly seeded registry behind a request-timing proxy, and npmir's environment.
type world struct {
	reg  *sim.Registry
	sc   *sim.Scenario
	srv  *httptest.Server
	url  string
	env  map[string]string
	args []string

	mu       sync.Mutex
	requests []reqSpan
	inFlight atomic.Int64
}

type reqSpan struct {
	start, end time.Time
	method     string
	path       string
}

func newWorld(b *testing.B, o sim.ScenarioOptions, conc int) *world {
	b.Helper()
	reg := sim.NewRegistry(sim.Options{Seed: 7})
	sc, err := sim.SeedCompromisedMaintainer(reg, o)
	if err != nil {
		b.Fatal(err)
	}
	w := &world{reg: reg, sc: sc}
	// The registry is served through a wrapper that times every request, so the report can
	// say how many requests each phase sent and how many were in flight on average.
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		s := reqSpan{start: time.Now(), method: req.Method, path: req.URL.EscapedPath()}
		reg.Handler().ServeHTTP(rw, req)
		s.end = time.Now()
		w.mu.Lock()
		w.requests = append(w.requests, s)
		w.mu.Unlock()
	}))
	b.Cleanup(w.srv.Close)
	w.url = w.srv.URL + "/"
	reg.SetLatency(latency)
	reg.ResetStats()

	home := b.TempDir()
	w.env = map[string]string{"HOME": home, "NPMIR_STATE_DIR": filepath.Join(home, "state"), "NPM_TOKEN": sc.Token}
	cfg := filepath.Join(home, "npmir.yaml")
	if err := os.WriteFile(cfg, []byte("npm:\n  trusted_publishers_allow: ["+sc.AllowedRepository+"]\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	w.args = []string{"contain", "--maintainer", sc.Maintainer, "--since", sc.Since.Format(time.RFC3339),
		"--tokens-created-after", "since", "--incident", "bench", "--yes", "--registry", w.url, "--config", cfg,
		"--concurrency", strconv.Itoa(conc), "--output", "json"}
	for i, tok := range append(slices.Clone(sc.AttackerTokens), sc.SessionToken) {
		name := fmt.Sprintf("LEAKED_%d", i)
		w.env[name] = tok
		w.args = append(w.args, "--leaked-token-env", name)
	}
	return w
}

type stageMeasure struct {
	name         string
	ops          int
	requests     int
	wall         time.Duration
	longestChain int // requests of the longest per-package op chain (its floor is chain × latency)
}

type measure struct {
	stateWrites  int64 // renames of state.json during the run (-1: not counted)
	stateCost    stateCost
	requests     int
	wall         time.Duration
	busy         time.Duration // sum of every request's time at the server
	planRequests int
	planWall     time.Duration
	ops          int
	stages       []stageMeasure

	// evidenceOps are the verify stage's preservation ops done; manifestEntries the entries of
	// evidence/manifest.json afterwards. Each op records one entry, so they should be equal.
	evidenceOps, manifestEntries int
}

// stateCost is what one write of the final state file costs, measured after the run on the same
// file system: how npmir encodes it (MarshalIndent), the compact encoding, and the atomic write
// (temp file, fsync, rename, fsync of the folder).
type stateCost struct {
	bytes             int
	marshalIndent     time.Duration
	marshal           time.Duration
	writeAtomic       time.Duration
	writeAtomicNoSync time.Duration
}

func measureStateWrite(b *testing.B, f *state.File, dir string) stateCost {
	b.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	const rounds = 7
	median := func(fn func()) time.Duration {
		var ds []time.Duration
		for range rounds {
			t0 := time.Now()
			fn()
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		return ds[rounds/2]
	}
	var c stateCost
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	c.bytes = len(data) + 1
	c.marshalIndent = median(func() { _, _ = json.MarshalIndent(f, "", "  ") })
	c.marshal = median(func() { _, _ = json.Marshal(f) })
	path := filepath.Join(dir, "state.json")
	c.writeAtomic = median(func() {
		if err := state.WriteFileAtomic(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
	})
	c.writeAtomicNoSync = median(func() {
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			b.Fatal(err)
		}
	})
	return c
}

func (m measure) ideal(conc int) time.Duration {
	return time.Duration(m.requests) * latency / time.Duration(conc)
}

func (m measure) ratio(conc int) float64 { return m.wall.Seconds() / m.ideal(conc).Seconds() }

func (m measure) avgInFlight() float64 { return m.busy.Seconds() / m.wall.Seconds() }

// contain runs `npmir contain --maintainer … --yes` in-process and measures it.
func (w *world) contain(b *testing.B) measure {
	b.Helper()
	var out, errOut bytes.Buffer
	io := &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	f := &cli.Factory{IO: io, Getenv: func(k string) string { return w.env[k] }, Now: time.Now}
	dir := filepath.Join(w.env["NPMIR_STATE_DIR"], "bench")
	if err := os.MkdirAll(dir, 0o700); err != nil { // so the rename watch can start before npmir
		b.Fatal(err)
	}
	watch := watchRenames(dir, "state.json")
	start := time.Now()
	code := cli.Run(context.Background(), w.args, f)
	wall := time.Since(start)
	writes := watch.stop()
	if code != cli.ExitOK && code != cli.ExitManual { // sole-owner packages and the live session need a person
		b.Fatalf("contain exited %d\nstderr: %.2000s\nstdout: %.2000s", code, errOut.String(), out.String())
	}
	st := w.reg.Stats()
	m := measure{requests: st.Requests, wall: wall, stateWrites: writes}
	w.mu.Lock()
	spans := slices.Clone(w.requests)
	w.mu.Unlock()
	if len(spans) != st.Requests {
		b.Fatalf("the timing proxy saw %d requests, the registry %d", len(spans), st.Requests)
	}
	for _, s := range spans {
		m.busy += s.end.Sub(s.start)
	}

	// Phases from the audit log: the "plan" record closes planning (resolve, plan reads, state
	// init); each stage runs from its first "started" to its last terminal record.
	recs, err := state.VerifyAudit(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	f2, err := state.Read(filepath.Join(dir, "state.json"))
	if err != nil {
		b.Fatal(err)
	}
	m.ops = len(f2.Ops)
	m.evidenceOps, m.manifestEntries = evidenceCounts(b, f2, dir)
	m.stateCost = measureStateWrite(b, f2, filepath.Join(w.env["HOME"], "probe"))
	for _, op := range f2.Ops {
		if op.Status != state.Done && op.Status != state.Manual {
			b.Fatalf("op %s ended %s: %s", op.ID, op.Status, op.Error)
		}
	}
	var planEnd time.Time
	type span struct{ first, last time.Time }
	stageSpan := map[string]*span{}
	var order []string
	stageOf := map[string]string{}
	for _, op := range f2.Ops {
		stageOf[op.ID] = op.Stage
	}
	for _, r := range recs {
		switch r.Event {
		case "plan":
			planEnd = r.Time
		case "started", "done", "manual", "failed":
			name := stageOf[r.Op]
			sp, ok := stageSpan[name]
			if !ok {
				sp = &span{first: r.Time, last: r.Time}
				stageSpan[name] = sp
				order = append(order, name)
			}
			if r.Time.Before(sp.first) {
				sp.first = r.Time
			}
			if r.Time.After(sp.last) {
				sp.last = r.Time
			}
		}
	}
	m.planWall = planEnd.Sub(start)
	for _, s := range spans {
		if s.start.Before(planEnd) {
			m.planRequests++
		}
	}
	for _, name := range order {
		sp := stageSpan[name]
		sm := stageMeasure{name: name, wall: sp.last.Sub(sp.first)}
		for _, op := range f2.Ops {
			if op.Stage == name && op.Status == state.Done {
				sm.ops++
			}
		}
		for _, s := range spans {
			if !s.start.Before(sp.first) && !s.start.After(sp.last) {
				sm.requests++
			}
		}
		sm.longestChain = longestChain(f2, name, spans, sp.first, sp.last)
		m.stages = append(m.stages, sm)
	}
	return m
}

// longestChain estimates the requests of the longest serial op chain of a stage: ops sharing a
// key run one after another, so a stage cannot end before its longest chain's requests have
// been answered one by one. Requests are attributed to a key by the package name in their path;
// the token ops (key npm-tokens) by the tokens and whoami routes.
func longestChain(f *state.File, stage string, spans []reqSpan, from, to time.Time) int {
	keys := map[string]bool{}
	for _, op := range f.Ops {
		if op.Stage == stage && op.Status == state.Done {
			keys[op.Key] = true
		}
	}
	count := map[string]int{}
	for _, s := range spans {
		if s.start.Before(from) || s.start.After(to) {
			continue
		}
		key := ""
		switch {
		case strings.HasPrefix(s.path, "/-/npm/v1/tokens") || s.path == "/-/whoami":
			key = "npm-tokens"
		default:
			key = "npm:" + packageOf(s.path)
		}
		if keys[key] {
			count[key]++
		}
	}
	best := 0
	for _, n := range count {
		best = max(best, n)
	}
	return best
}

// packageOf extracts the package name from a registry path (/name, /@scope%2fname,
// /-/package/name/..., /-/package/@scope%2fname/..., /-/user/org.couchdb.user:…).
func packageOf(p string) string {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimPrefix(p, "-/package/")
	p = strings.TrimPrefix(p, "-/v1/packages/")
	p = strings.ReplaceAll(p, "%2f", "/")
	p = strings.ReplaceAll(p, "%2F", "/")
	parts := strings.Split(p, "/")
	if strings.HasPrefix(parts[0], "@") && len(parts) > 1 {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

// evidenceCounts returns the evidence ops done (verify's preservation ops, kind npm.verify) and
// the entries of the incident's evidence manifest.
func evidenceCounts(b *testing.B, f *state.File, dir string) (ops, entries int) {
	b.Helper()
	for _, op := range f.Ops {
		if op.Kind == "npm.verify" && op.Status == state.Done {
			ops++
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "evidence", "manifest.json"))
	if err != nil {
		return ops, 0
	}
	var man state.EvidenceManifest
	if err := json.Unmarshal(data, &man); err != nil {
		b.Fatalf("evidence manifest: %v", err)
	}
	return ops, len(man.Entries)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}
