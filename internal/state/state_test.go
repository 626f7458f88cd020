package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/incident"
)

func newFile() *File {
	return &File{Incident: &incident.Spec{ID: "inc-1", Targets: []incident.Target{{Name: "a", Versions: []string{"1.0.1"}}}}}
}

func TestStoreWritesAtomicallyWith0600AndGroupCommit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "inc-1", "state.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := newFile()
	for i := range 200 {
		f.Ops = append(f.Ops, &Op{ID: fmt.Sprintf("op/%d", i), Status: Pending})
	}
	if err := s.Init(f); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, op := range f.Ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Update(func(*(*File)) { op.Status = Done }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range got.Ops {
		if op.Status != Done {
			t.Fatalf("op %s is %s on disk after its Update returned", op.ID, op.Status)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".state.json.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temp files left: %v", leftovers)
	}
}

func TestLockRefusesSecondOpenNamingPID(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("second Open: %v, want LockedError naming pid %d", err, os.Getpid())
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	s2.Close()
}

func TestReadRefusesCorruptAndNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"torn":    `{"schema_version":1,"incident":{"id":"x"`,
		"newer":   `{"schema_version":2,"incident":{"id":"x"}}`,
		"foreign": `{"hello":"world"}`,
	} {
		p := filepath.Join(dir, name+".json")
		_ = os.WriteFile(p, []byte(content), 0o600)
		_, err := Read(p)
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "left untouched") {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := Open(p); err == nil {
			t.Errorf("%s: Open accepted it", name)
		}
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Errorf("%s: modified", name)
		}
	}
}

func TestAuditChainDetectsTamperingAndDropsTornTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := OpenAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	changed := true
	for i := range 5 {
		if err := a.Append(AuditRecord{Incident: "inc", Event: "done", Op: fmt.Sprintf("op/%d", i), Changed: &changed}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	recs, err := VerifyAudit(path)
	if err != nil || len(recs) != 5 {
		t.Fatalf("verify: %d records, %v", len(recs), err)
	}
	// A crash mid-append leaves a torn line: reopening drops it and says so in the log.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":6,"event":"do`)
	f.Close()
	a, err = OpenAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.DoneRecord("op/3"); !ok {
		t.Error("done records not reloaded")
	}
	a.Close()
	recs, err = VerifyAudit(path)
	if err != nil || len(recs) != 6 || recs[5].Event != "note" {
		t.Fatalf("after torn tail: %d records, %v", len(recs), err)
	}
	// Editing any line breaks the chain at the next line.
	data, _ := os.ReadFile(path)
	tampered := strings.Replace(string(data), `"op":"op/2"`, `"op":"op/9"`, 1)
	_ = os.WriteFile(path, []byte(tampered), 0o600)
	_, err = VerifyAudit(path)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Line != 4 {
		t.Fatalf("tampered log: %v, want a chain error at line 4", err)
	}
}

// After a crash the state file (a checkpoint) lags the audit log; Reconcile brings it up.
func TestReconcileFromAuditLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := OpenAudit(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	for _, r := range []AuditRecord{
		{Event: "plan"},
		{Event: "started", Op: "a"}, {Event: "done", Op: "a", Changed: &yes, Detail: "moved latest"},
		{Event: "started", Op: "b"},
		{Event: "started", Op: "c"}, {Event: "failed", Op: "c", Detail: "registry said 500"}, {Event: "started", Op: "c"},
		{Event: "started", Op: "d"}, {Event: "manual", Op: "d", Detail: "only owner: add a co-maintainer"},
	} {
		if err := a.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	f := newFile()
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		f.Ops = append(f.Ops, &Op{ID: id, Status: Pending})
	}
	p, err := ProgressOf(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := Reconcile(f, p); n != 4 {
		t.Errorf("Reconcile changed %d ops, want 4", n)
	}
	want := map[string]string{"a": Done, "b": Started, "c": Started, "d": Manual, "e": Pending}
	for _, op := range f.Ops {
		if op.Status != want[op.ID] {
			t.Errorf("op %s: %s, want %s", op.ID, op.Status, want[op.ID])
		}
	}
	if r := f.Op("a").Result; r == nil || !r.Changed || r.Summary != "moved latest" {
		t.Errorf("done result %+v", r)
	}
	if f.Op("c").Attempts != 2 || f.Op("d").Result.Summary != "only owner: add a co-maintainer" {
		t.Errorf("attempts %d, manual %+v", f.Op("c").Attempts, f.Op("d").Result)
	}
	if n := Reconcile(f, p); n != 0 {
		t.Errorf("a second Reconcile changed %d ops", n)
	}
}

func TestNoteReachesTheFileAtFlushAndCheckpoints(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f := newFile()
	f.Ops = []*Op{{ID: "x", Status: Pending}}
	if err := s.Init(f); err != nil {
		t.Fatal(err)
	}
	s.Note(func(f *File) { f.Ops[0].Status = Done })
	if got, _ := Read(path); got.Ops[0].Status != Pending {
		t.Fatal("Note wrote at once; it should wait for a checkpoint")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := Read(path); got.Ops[0].Status != Done {
		t.Fatal("Flush did not write the noted change")
	}
	s.Checkpoints(5 * time.Millisecond)
	s.Note(func(f *File) { f.Ops[0].Status = Failed })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := Read(path); got.Ops[0].Status == Failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint wrote the change")
		}
		time.Sleep(time.Millisecond)
	}
	s.Note(func(f *File) { f.Ops[0].Status = Manual })
	s.Close() // writes what is pending
	if got, _ := Read(path); got.Ops[0].Status != Manual {
		t.Fatal("Close lost a noted change")
	}
}

// Records of an earlier plan (a state file moved aside and the incident started over) must not
// mark the new plan's ops done: their ids may repeat.
func TestReconcileIgnoresRecordsBeforeTheLatestPlan(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, _ := OpenAudit(path)
	yes := true
	for _, r := range []AuditRecord{
		{Event: "plan", Incident: "inc"}, {Event: "started", Op: "tag", Incident: "inc"}, {Event: "done", Op: "tag", Incident: "inc", Changed: &yes},
		{Event: "plan", Incident: "inc"}, {Event: "started", Op: "other", Incident: "someone-else"},
	} {
		if err := a.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := a.DoneRecord("tag"); ok {
		t.Error("a done record of the earlier plan counts for the new one")
	}
	a.Close()
	p, _ := ProgressOf(path)
	f := newFile()
	f.Ops = []*Op{{ID: "tag", Status: Pending}, {ID: "other", Status: Pending}}
	if n := Reconcile(f, p); n != 0 || f.Ops[0].Status != Pending {
		t.Errorf("Reconcile applied old records: %d changed, tag %s", n, f.Ops[0].Status)
	}
}
