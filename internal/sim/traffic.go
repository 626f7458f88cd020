package sim

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimit answers a share of requests with 429 and a Retry-After header, before the request has
// any effect (as a rate limiter in front of a registry does), so a client may retry even a write.
type RateLimit struct {
	// Fraction of requests refused, 0 to 1. Which requests is decided by the seed and the
	// request's arrival number, so a sequential run is reproducible.
	Fraction float64
	// RetryAfter is the value of the Retry-After header, in seconds.
	RetryAfter int
	// MaxConsecutive lets a method+path through after this many 429s in a row, so a client
	// with a bounded retry budget finishes: zero means 3 (below npmreg's default of 5 retries),
	// negative means no cap (a registry that may refuse forever).
	MaxConsecutive int
}

// Fault is an injected answer. Returned by a FaultHook, it replaces the normal answer.
type Fault struct {
	Status      int               // HTTP status; 500 when zero (ignored with Drop)
	Body        string            // response body; `{"error":"injected fault"}` when empty
	Header      map[string]string // extra response headers (Retry-After, WWW-Authenticate, ...)
	AfterEffect bool              // run the request first, then answer with the fault: the write landed, its answer was lost
	Drop        bool              // close the connection without an answer
}

// Call describes a request to a FaultHook.
type Call struct {
	Method string
	Path   string // escaped path, as sent
	Route  string // the route template, such as "PUT /<pkg>/-rev/<rev>"
	N      int    // how many requests with this method and path arrived, this one included
}

// FaultHook decides, for each request, whether to inject a fault (nil: answer normally). It runs
// after latency and before the rate limiter, authentication and the handler.
type FaultHook func(Call) *Fault

// Stats are counters since the server was built or last reset.
type Stats struct {
	Requests  int // every request, whatever its answer
	Mutations int // requests whose method is not GET or HEAD, whatever their answer
	// MutationsByRoute counts mutating requests by route template ("DELETE /-/npm/v1/tokens/token/<key>").
	MutationsByRoute map[string]int
	// Landed counts mutations the handler applied (answered 2xx before any injected fault), by
	// "METHOD path". A dry run leaves it empty; an op done once shows 1.
	Landed map[string]int
	// Changed counts, by "METHOD path", the landed mutations that changed the registry's state;
	// re-applying a setting (POST access with the same values) lands without changing anything,
	// so "a second run changes nothing" reads as an empty Changed.
	Changed map[string]int
}

// LogEntry is one request as the server saw it.
type LogEntry struct {
	Method string
	Path   string // escaped path
	Query  string
	Route  string
	Status int // what the client got; 0 when the connection was dropped
	User   string
}

// traffic is the part every simulated server shares: modes, counters and the request log.
type traffic struct {
	seed uint64

	modeMu    sync.RWMutex
	latency   time.Duration
	rate      RateLimit
	faultHook FaultHook

	arrivals atomic.Uint64

	statMu   sync.Mutex
	stats    Stats
	log      []LogEntry
	seen     map[string]int // method+path → arrivals
	refusals map[string]int // method+path → consecutive 429s
}

func newTraffic(seed uint64) traffic {
	return traffic{seed: seed, seen: map[string]int{}, refusals: map[string]int{},
		stats: Stats{MutationsByRoute: map[string]int{}, Landed: map[string]int{}, Changed: map[string]int{}}}
}

// SetLatency delays every answer by d (the benchmark's "50 ms per request").
func (t *traffic) SetLatency(d time.Duration) {
	t.modeMu.Lock()
	t.latency = d
	t.modeMu.Unlock()
}

// SetRateLimit turns the 429 mode on (Fraction > 0) or off.
func (t *traffic) SetRateLimit(rl RateLimit) {
	t.modeMu.Lock()
	t.rate = rl
	t.modeMu.Unlock()
}

// SetFaultHook installs h (nil removes it).
func (t *traffic) SetFaultHook(h FaultHook) {
	t.modeMu.Lock()
	t.faultHook = h
	t.modeMu.Unlock()
}

// Stats returns a snapshot of the counters.
func (t *traffic) Stats() Stats {
	t.statMu.Lock()
	defer t.statMu.Unlock()
	s := t.stats
	s.MutationsByRoute = maps.Clone(t.stats.MutationsByRoute)
	s.Landed = maps.Clone(t.stats.Landed)
	s.Changed = maps.Clone(t.stats.Changed)
	return s
}

// Log returns a copy of the request log, in arrival order of completion.
func (t *traffic) Log() []LogEntry {
	t.statMu.Lock()
	defer t.statMu.Unlock()
	return append([]LogEntry(nil), t.log...)
}

// ResetStats clears the counters and the log (after seeding over HTTP, say).
func (t *traffic) ResetStats() {
	t.statMu.Lock()
	defer t.statMu.Unlock()
	t.stats = Stats{MutationsByRoute: map[string]int{}, Landed: map[string]int{}, Changed: map[string]int{}}
	t.log = nil
	t.seen = map[string]int{}
	t.refusals = map[string]int{}
}

func isMutation(method string) bool { return method != http.MethodGet && method != http.MethodHead }

// outcome is what a handler reports back: who called (known once it has read the token) and
// whether the request changed the server's state.
type outcome struct {
	user    string
	changed bool
}

// serve runs one request through the modes, then h.
func (t *traffic) serve(w http.ResponseWriter, req *http.Request, route string, h func(http.ResponseWriter, *http.Request) outcome) {
	path := req.URL.EscapedPath()
	key := req.Method + " " + path
	t.statMu.Lock()
	t.stats.Requests++
	if isMutation(req.Method) {
		t.stats.Mutations++
		t.stats.MutationsByRoute[route]++
	}
	t.seen[key]++
	n := t.seen[key]
	t.statMu.Unlock()

	t.modeMu.RLock()
	latency, rate, hook := t.latency, t.rate, t.faultHook
	t.modeMu.RUnlock()

	entry := LogEntry{Method: req.Method, Path: path, Query: req.URL.RawQuery, Route: route}
	defer func() {
		t.statMu.Lock()
		t.log = append(t.log, entry)
		t.statMu.Unlock()
	}()

	if latency > 0 {
		timer := time.NewTimer(latency)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}

	var fault *Fault
	if hook != nil {
		fault = hook(Call{Method: req.Method, Path: path, Route: route, N: n})
	}
	if fault != nil && !fault.AfterEffect {
		entry.Status = writeFault(w, fault)
		return
	}

	if t.refuse(rate, key) {
		w.Header().Set("Retry-After", strconv.Itoa(rate.RetryAfter))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too Many Requests"})
		entry.Status = http.StatusTooManyRequests
		return
	}

	if fault == nil {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		out := h(sw, req)
		entry.User, entry.Status = out.user, sw.status
		t.landed(req.Method, key, sw.status, out.changed)
		return
	}
	rec := httptest.NewRecorder()
	out := h(rec, req)
	entry.User = out.user
	t.landed(req.Method, key, rec.Code, out.changed)
	entry.Status = writeFault(w, fault)
}

func (t *traffic) landed(method, key string, status int, changed bool) {
	if !isMutation(method) || status < 200 || status > 299 {
		return
	}
	t.statMu.Lock()
	t.stats.Landed[key]++
	if changed {
		t.stats.Changed[key]++
	}
	t.statMu.Unlock()
}

// refuse draws whether this request is rate limited.
func (t *traffic) refuse(rl RateLimit, key string) bool {
	if rl.Fraction <= 0 {
		return false
	}
	n := t.arrivals.Add(1)
	hit := unitFloat(mix64(t.seed^0x9e3779b97f4a7c15, n)) < rl.Fraction
	limit := rl.MaxConsecutive
	if limit == 0 {
		limit = 3
	}
	t.statMu.Lock()
	defer t.statMu.Unlock()
	if hit && (limit < 0 || t.refusals[key] < limit) {
		t.refusals[key]++
		return true
	}
	t.refusals[key] = 0
	return false
}

func writeFault(w http.ResponseWriter, f *Fault) int {
	if f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return 0
			}
		}
		// No hijacking (HTTP/2): the closest is an aborted handler.
		panic(http.ErrAbortHandler)
	}
	for k, v := range f.Header {
		w.Header().Set(k, v)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	body := f.Body
	if body == "" {
		body = `{"error":"injected fault"}`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
	return status
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// mix64 is splitmix64's finaliser over a and b: a cheap, well-spread hash for deterministic draws.
func mix64(a, b uint64) uint64 {
	z := a + b*0xbf58476d1ce4e5b9 + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func unitFloat(x uint64) float64 { return float64(x>>11) / (1 << 53) }
