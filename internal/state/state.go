// Package state keeps what one incident has done: the state file (the plan and every op's
// status, written atomically and guarded by an exclusive lock), the hash-chained audit log, and
// the evidence store. It is what makes a crashed or interrupted run resumable without losing or
// repeating an action. Nothing secret is ever written here.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/npmir/npmir/internal/incident"
)

// SchemaVersion is the state file schema this npmir writes and reads.
const SchemaVersion = 1

// Op statuses.
const (
	Pending = "pending" // planned, not started
	Started = "started" // recorded before the mutation: on resume, checked before any retry
	Done    = "done"    // landed (or was already in place)
	Failed  = "failed"  // the last attempt failed; a resume retries it
	Manual  = "manual"  // cannot be automated: the result says what a person must do
	Skipped = "skipped" // not run (dry run, or a condition said no)
)

// File is the state file's content.
type File struct {
	SchemaVersion int            `json:"schema_version"`
	Incident      *incident.Spec `json:"incident"`
	Runbook       RunbookRef     `json:"runbook"`
	Registry      string         `json:"registry,omitempty"`
	Targets       []Target       `json:"targets,omitempty"`
	Scope         *Scope         `json:"scope,omitempty"`
	Stages        []Stage        `json:"stages,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	Steps         []Step         `json:"steps"`
	Ops           []*Op          `json:"ops"`
}

// RunbookRef names the runbook the plan came from.
type RunbookRef struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Digest string `json:"digest"`
}

// Target is a resolved package: its bad versions and the version the freeze falls back to.
type Target struct {
	Package       string    `json:"package"`
	Bad           []string  `json:"bad_versions"`
	KnownGood     string    `json:"known_good,omitempty"`
	KnownGoodFrom string    `json:"known_good_from,omitempty"`
	Verdicts      []Verdict `json:"verdicts,omitempty"`
}

// Verdict is verify's judgement of one suspect version, with the ids of the rules that fired.
type Verdict struct {
	Version string   `json:"version"`
	Verdict string   `json:"verdict"` // malicious, suspicious, clean
	Rules   []string `json:"rules,omitempty"`
}

// Scope is the blast radius found in maintainer mode: how many packages the account can
// publish, where that list came from, and how many have versions since T.
type Scope struct {
	Maintainer string `json:"maintainer"`
	Source     string `json:"source"`
	Packages   int    `json:"packages"`
	Affected   int    `json:"affected"`
}

// Stage is a runbook stage's name and why it is there (shown in plans).
type Stage struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Step is one runbook step as planned: its ops are in File.Ops; a skipped step says why.
type Step struct {
	Stage    string   `json:"stage"`
	ID       string   `json:"id"`
	Uses     string   `json:"uses"`
	Status   string   `json:"status"` // planned | skipped
	Reason   string   `json:"reason,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Approval bool     `json:"approval,omitempty"`
	Approved bool     `json:"approved,omitempty"`
	// ContinueOnError lets later ops run when one of this step's ops fails.
	ContinueOnError bool `json:"continue_on_error,omitempty"`
}

// Op is one mutation (or one manual action) and its progress.
type Op struct {
	ID          string          `json:"id"`
	Stage       string          `json:"stage"`
	Step        string          `json:"step"`
	Kind        string          `json:"kind"`
	Key         string          `json:"key,omitempty"`
	Description string          `json:"description"`
	Target      string          `json:"target,omitempty"`
	Params      json.RawMessage `json:"params,omitempty"`
	Status      string          `json:"status"`
	Attempts    int             `json:"attempts"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	Result      *Result         `json:"result,omitempty"`
	Error       string          `json:"error,omitempty"`
}

// Result is what an op did.
type Result struct {
	Changed bool   `json:"changed"`
	Summary string `json:"summary"`
}

// Op looks an op up by id.
func (f *File) Op(id string) *Op {
	for _, op := range f.Ops {
		if op.ID == id {
			return op
		}
	}
	return nil
}

// Dir returns the folder of an incident under root (".npmir" by default).
func Dir(root, incidentID string) string { return filepath.Join(root, incidentID) }

// CorruptError is a state file that cannot be read; it is left untouched.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s cannot be read (%v); it was left untouched: move it aside to start over, or restore it from a backup", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// LockedError is an incident another npmir process is working on.
type LockedError struct {
	Path string
	PID  int
}

func (e *LockedError) Error() string {
	who := "another npmir process"
	if e.PID > 0 {
		who = fmt.Sprintf("npmir pid %d", e.PID)
	}
	return fmt.Sprintf("incident is locked by %s (%s); wait for it to finish, or stop it and run `npmir resume`", who, e.Path)
}

// Read parses a state file without locking it (for `npmir status`).
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &CorruptError{Path: path, Err: err}
	}
	if f.SchemaVersion > SchemaVersion {
		return nil, &CorruptError{Path: path, Err: fmt.Errorf("schema_version %d is newer than this npmir understands (%d); upgrade npmir", f.SchemaVersion, SchemaVersion)}
	}
	if f.SchemaVersion < 1 || f.Incident == nil {
		return nil, &CorruptError{Path: path, Err: errors.New("no schema_version or incident: not an npmir state file")}
	}
	return &f, nil
}

// Store is an open, locked state file. The file is a checkpoint: the audit log, appended and
// synced before and after every op, is the write-ahead record of what happened, and Reconcile
// rebuilds the ops' progress from it after a crash. So op transitions (Note) reach the file in
// periodic checkpoints, while plan-level changes (Update: the plan, approvals) are durable when
// they return. At hundreds of packages this keeps the run talking to the registry instead of
// rewriting a file of thousands of ops twice per op.
type Store struct {
	path string
	lock *os.File
	now  func() time.Time

	mu    sync.Mutex
	file  *File
	gc    groupCommit
	stop  chan struct{}
	timer sync.WaitGroup
}

// Open locks the incident folder holding path and reads the state file if it exists (f is nil
// when it does not). The lock is an flock on "<dir>/lock", released by the kernel if the process
// dies, so a crashed run never leaves a stale lock behind.
func Open(path string) (*Store, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create incident folder: %w", err)
	}
	lockPath := filepath.Join(dir, "lock")
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", lockPath, err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(lockPath)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		lf.Close()
		return nil, &LockedError{Path: lockPath, PID: pid}
	}
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s := &Store{path: path, lock: lf, now: time.Now}
	s.gc = newGroupCommit(&s.mu)
	if _, err := os.Stat(path); err == nil {
		f, err := Read(path)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.file = f
	} else if !errors.Is(err, os.ErrNotExist) {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// File returns the current content (nil before Init). Callers read it; changes go through Update
// or Note.
func (s *Store) File() *File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file
}

// Init sets the content of a new state file and persists it.
func (s *Store) Init(f *File) error {
	now := s.now().UTC()
	f.SchemaVersion = SchemaVersion
	if f.CreatedAt.IsZero() {
		f.CreatedAt = now
	}
	return s.Update(func(cur **File) { *cur = f })
}

// Update applies fn under the store's lock, then returns once a write containing the change is
// durable on disk.
func (s *Store) Update(fn func(f **File)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.file)
	s.file.UpdatedAt = s.now().UTC()
	return s.gc.waitLocked(s.gc.changed(), s.snapshotLocked)
}

// Note applies fn under the store's lock and returns at once: the change reaches the file at the
// next checkpoint (see Checkpoints) or Flush. Use it only for what the audit log already holds.
func (s *Store) Note(fn func(f *File)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.file)
	s.file.UpdatedAt = s.now().UTC()
	s.gc.changed()
}

// Flush returns once every change made so far is on disk.
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gc.waitLocked(s.gc.version, s.snapshotLocked)
}

// Checkpoints writes pending changes every interval until Close, so `npmir status` run beside a
// long contain sees its progress.
func (s *Store) Checkpoints(interval time.Duration) {
	s.mu.Lock()
	if s.stop != nil {
		s.mu.Unlock()
		return
	}
	s.stop = make(chan struct{})
	stop := s.stop
	s.mu.Unlock()
	s.timer.Add(1)
	go func() {
		defer s.timer.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = s.Flush()
			}
		}
	}()
}

func (s *Store) snapshotLocked() func() error {
	data, err := json.MarshalIndent(s.file, "", "  ")
	return func() error {
		if err == nil {
			err = WriteFileAtomic(s.path, append(data, '\n'), 0o600)
		}
		if err != nil {
			return fmt.Errorf("write state file %s: %w", s.path, err)
		}
		return nil
	}
}

// Close writes what is pending and releases the lock.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		s.timer.Wait()
	}
	if s.File() != nil {
		_ = s.Flush()
	}
	_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	err := s.lock.Close()
	s.lock = nil
	return err
}

// WriteFileAtomic writes data to path so that a crash leaves either the old or the new content:
// a temp file in the same folder, fsync, rename over path, fsync the folder.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	cleanup := func() { tmp.Close(); os.Remove(tmpName) }
	if err := tmp.Chmod(perm); err != nil {
		cleanup()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		cleanup()
		return err
	}
	if err := tmp.Sync(); err != nil {
		cleanup()
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmpName)
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
