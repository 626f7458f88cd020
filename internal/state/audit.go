package state

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// AuditRecord is one line of audit.jsonl. Each line carries the SHA-256 of the previous line's
// bytes, so deleting or editing a line breaks the chain (`npmir audit verify` finds where).
type AuditRecord struct {
	Seq      int       `json:"seq"`
	Time     time.Time `json:"time"`
	Incident string    `json:"incident"`
	Event    string    `json:"event"` // plan, started, done, failed, manual, approval, evidence, note
	Op       string    `json:"op,omitempty"`
	Stage    string    `json:"stage,omitempty"`
	Step     string    `json:"step,omitempty"`
	Changed  *bool     `json:"changed,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	Actor    string    `json:"actor,omitempty"`
	Prev     string    `json:"prev_sha256"`
}

// Audit is an open audit log. Appends are durable when they return; concurrent appends share
// one fsync.
type Audit struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	gc      groupCommit
	f       *os.File
	seq     int
	prev    string
	pending [][]byte
	// progress is each op's latest record and how often it started: what Reconcile restores
	// after a crash, and how a resume knows an op is done without asking the registry again.
	progress     map[string]OpProgress
	planIncident string // the incident of the latest plan record
}

// OpProgress is what the audit log says of one op.
type OpProgress struct {
	Last   AuditRecord // the latest of its started, done, failed and manual records
	Starts int         // how many attempts started
}

const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// OpenAudit opens (creating) the log, verifies its chain and remembers which ops it already
// records as done, so a resumed run never records a mutation twice.
func OpenAudit(path string) (*Audit, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	a := &Audit{path: path, now: time.Now, f: f, prev: genesis, progress: map[string]OpProgress{}}
	a.gc = newGroupCommit(&a.mu)
	torn, err := dropTornTail(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	recs, last, err := readChain(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	for _, r := range recs {
		a.note(r)
		a.seq = r.Seq
	}
	if last != "" {
		a.prev = last
	}
	if torn > 0 {
		if err := a.Append(AuditRecord{Event: "note", Detail: fmt.Sprintf("discarded an incomplete last line of %d bytes (a crash mid-append; it was never acknowledged)", torn)}); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// dropTornTail truncates bytes after the last newline: an append a crash cut short. Such a line
// was never acknowledged to anyone, so the chain is intact without it.
func dropTornTail(f *os.File) (int64, error) {
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return 0, err
	}
	end := int64(bytes.LastIndexByte(data, '\n') + 1)
	torn := int64(len(data)) - end
	if torn == 0 {
		return 0, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, err
	}
	_, err = f.Seek(0, io.SeekStart)
	return torn, err
}

// ChainError says where an audit log's hash chain breaks.
type ChainError struct {
	Path string
	Line int
	Msg  string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit log %s: line %d: %s (the log was edited or truncated)", e.Path, e.Line, e.Msg)
}

// VerifyAudit checks a log's chain and returns its records.
func VerifyAudit(path string) ([]AuditRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, _, err := readChain(f)
	return recs, err
}

func readChain(r io.Reader) ([]AuditRecord, string, error) {
	br := bufio.NewReader(r)
	prev := genesis
	var recs []AuditRecord
	name := ""
	if f, ok := r.(*os.File); ok {
		name = f.Name()
	}
	if f, ok := r.(*os.File); ok {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, "", err
		}
	}
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, "", err
		}
		if !bytes.HasSuffix(b, []byte("\n")) {
			// A torn last line from a crash mid-append: it was never acknowledged, so it is
			// not part of the chain. Report it rather than silently accepting it.
			return nil, "", &ChainError{Path: name, Line: line, Msg: "incomplete last line"}
		}
		var rec AuditRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, "", &ChainError{Path: name, Line: line, Msg: "not JSON: " + err.Error()}
		}
		if rec.Prev != prev {
			return nil, "", &ChainError{Path: name, Line: line, Msg: "prev_sha256 does not match the previous line"}
		}
		sum := sha256.Sum256(b)
		prev = hex.EncodeToString(sum[:])
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil, "", nil
	}
	return recs, prev, nil
}

// note remembers an op's latest progress record. A "plan" record starts a new plan: what came
// before it (a state file moved aside, an earlier incident in the same folder) says nothing about
// the new plan's ops, whose ids may repeat (a second wave moving the same tag again).
func (a *Audit) note(r AuditRecord) {
	switch r.Event {
	case "plan":
		a.progress = map[string]OpProgress{}
		a.planIncident = r.Incident
	case "started", "done", "failed", "manual":
		if r.Op == "" || (a.planIncident != "" && r.Incident != a.planIncident) {
			return
		}
		p := a.progress[r.Op]
		p.Last = r
		if r.Event == "started" {
			p.Starts++
		}
		a.progress[r.Op] = p
	}
}

// DoneRecord returns the op's "done" record, if that is its latest.
func (a *Audit) DoneRecord(op string) (AuditRecord, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.progress[op]
	return p.Last, ok && p.Last.Event == "done"
}

// Progress returns what the log says of every op.
func (a *Audit) Progress() map[string]OpProgress {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]OpProgress, len(a.progress))
	for k, v := range a.progress {
		out[k] = v
	}
	return out
}

// ProgressOf reads a log (without opening it for writing) and returns what it says of every op.
func ProgressOf(path string) (map[string]OpProgress, error) {
	recs, err := VerifyAudit(path)
	if err != nil {
		return nil, err
	}
	a := &Audit{progress: map[string]OpProgress{}}
	for _, r := range recs {
		a.note(r)
	}
	return a.progress, nil
}

// Reconcile brings each op of f up to the audit log's latest record of it. The log is appended
// and synced before and after every op, the state file only at checkpoints, so after a crash the
// log is the truth: an op it shows started is checked against the registry before any retry,
// one it shows done is not sent again. It returns how many ops it changed.
func Reconcile(f *File, progress map[string]OpProgress) int {
	n := 0
	for _, op := range f.Ops {
		p, ok := progress[op.ID]
		if !ok {
			continue
		}
		r := p.Last
		at := r.Time
		before := *op
		switch r.Event {
		case "done":
			changed := r.Changed != nil && *r.Changed
			op.Status, op.Error, op.FinishedAt = Done, "", &at
			op.Result = &Result{Changed: changed, Summary: r.Detail}
		case "manual":
			op.Status, op.Error, op.FinishedAt = Manual, "", &at
			op.Result = &Result{Summary: r.Detail}
		case "failed":
			op.Status, op.Error, op.FinishedAt = Failed, r.Detail, &at
		case "started":
			if op.Status != Started {
				op.Status, op.Result, op.Error, op.StartedAt, op.FinishedAt = Started, nil, "", &at, nil
			}
		}
		op.Attempts = max(op.Attempts, p.Starts)
		if !sameProgress(before, *op) {
			n++
		}
	}
	return n
}

func sameProgress(a, b Op) bool {
	return a.Status == b.Status && a.Error == b.Error && a.Attempts == b.Attempts &&
		(a.Result == nil) == (b.Result == nil) && (a.Result == nil || *a.Result == *b.Result)
}

// Append adds a record and returns once it is on disk.
func (a *Audit) Append(rec AuditRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gc.err != nil {
		return a.gc.err
	}
	a.seq++
	rec.Seq = a.seq
	rec.Time = a.now().UTC()
	rec.Prev = a.prev
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	sum := sha256.Sum256(b)
	a.prev = hex.EncodeToString(sum[:])
	a.pending = append(a.pending, b)
	a.note(rec)
	err = a.gc.waitLocked(a.gc.changed(), func() func() error {
		batch := a.pending
		a.pending = nil
		return func() error {
			if err := a.writeBatch(batch); err != nil {
				return fmt.Errorf("append to audit log %s: %w", a.path, err)
			}
			return nil
		}
	})
	return err
}

func (a *Audit) writeBatch(batch [][]byte) error {
	if _, err := a.f.Write(bytes.Join(batch, nil)); err != nil {
		return err
	}
	return a.f.Sync()
}

// Close closes the log.
func (a *Audit) Close() error { return a.f.Close() }
