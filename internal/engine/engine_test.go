package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/runbook"
	"github.com/npmir/npmir/internal/state"
	"github.com/npmir/npmir/internal/steps"
)

// fakeKind plans one op per package and records the order ops ran in.
type fakeKind struct {
	name     string
	packages int
	fail     func(op steps.Op) error
	delay    time.Duration

	mu       sync.Mutex
	order    []string
	inFlight atomic.Int32
	peak     atomic.Int32
	applied  map[string]int
}

func (k *fakeKind) Info() steps.Info { return steps.Info{Name: k.name, Provider: "local"} }
func (k *fakeKind) Plan(_ context.Context, _ *steps.Env, s steps.Step) (steps.StepPlan, error) {
	var sp steps.StepPlan
	for i := range k.packages {
		pkg := fmt.Sprintf("pkg-%02d", i)
		sp.Ops = append(sp.Ops, steps.Op{ID: k.name + "/" + pkg, Stage: s.Stage, Step: s.ID, Kind: k.name, Key: pkg, Target: pkg, Description: k.name + " " + pkg})
	}
	return sp, nil
}
func (k *fakeKind) Apply(_ context.Context, _ *steps.Env, op steps.Op) (steps.Result, error) {
	n := k.inFlight.Add(1)
	defer k.inFlight.Add(-1)
	for {
		p := k.peak.Load()
		if n <= p || k.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(k.delay)
	k.mu.Lock()
	k.order = append(k.order, op.ID)
	if k.applied == nil {
		k.applied = map[string]int{}
	}
	k.applied[op.ID]++
	k.mu.Unlock()
	if k.fail != nil {
		if err := k.fail(op); err != nil {
			return steps.Result{}, err
		}
	}
	return steps.Result{Changed: true, Summary: "did " + op.ID}, nil
}
func (k *fakeKind) Check(context.Context, *steps.Env, steps.Op) (steps.Result, bool, error) {
	return steps.Result{}, false, nil
}

func setup(t *testing.T, rb *runbook.Runbook, yes bool) (*Engine, *state.Store, *state.Audit) {
	t.Helper()
	dir := t.TempDir()
	eng := &Engine{Runbook: rb, Env: &steps.Env{Spec: &incident.Spec{ID: "inc-test"}}, Concurrency: 4, Yes: yes}
	f, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Init(f); err != nil {
		t.Fatal(err)
	}
	audit, err := state.OpenAudit(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { audit.Close() })
	return eng, store, audit
}

func twoStepRunbook(a, b string, continueOnError bool, approval string) *runbook.Runbook {
	return &runbook.Runbook{Name: "t", Stages: []runbook.Stage{
		{Name: "freeze", Steps: []runbook.Step{{ID: "first", Uses: a, Approval: approval}, {ID: "second", Uses: b, ContinueOnError: continueOnError}}},
	}}
}

func TestOpsOfOnePackageRunInOrderAndConcurrencyIsBounded(t *testing.T) {
	a := &fakeKind{name: "fake.a-order", packages: 12, delay: 5 * time.Millisecond}
	b := &fakeKind{name: "fake.b-order", packages: 12, delay: 5 * time.Millisecond}
	steps.Register(a)
	steps.Register(b)
	eng, store, audit := setup(t, twoStepRunbook(a.name, b.name, false, ""), true)
	var seen []string
	var mu sync.Mutex
	eng.OnEvent = func(ev Event) {
		if ev.Type == "op" && ev.Op.Status == state.Done {
			mu.Lock()
			seen = append(seen, ev.Op.ID)
			mu.Unlock()
		}
	}
	if err := eng.Apply(context.Background(), store, audit); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, id := range seen {
		pos[id] = i
	}
	for i := range 12 {
		pkg := fmt.Sprintf("pkg-%02d", i)
		if pos[a.name+"/"+pkg] > pos[b.name+"/"+pkg] {
			t.Errorf("%s: second step ran before the first", pkg)
		}
	}
	if p := a.peak.Load() + b.peak.Load(); p > 8 || a.peak.Load() > 4 {
		t.Errorf("peak concurrency %d/%d, limit 4", a.peak.Load(), b.peak.Load())
	}
	if a.peak.Load() < 2 {
		t.Errorf("packages did not run concurrently (peak %d)", a.peak.Load())
	}
}

func TestFailureStopsThatPackageUnlessContinueOnError(t *testing.T) {
	boom := errors.New("registry said 500")
	for _, coe := range []bool{false, true} {
		t.Run(fmt.Sprint("continue_on_error=", coe), func(t *testing.T) {
			a := &fakeKind{name: fmt.Sprintf("fake.a-fail-%v", coe), packages: 3, fail: func(op steps.Op) error {
				if op.Key == "pkg-01" {
					return boom
				}
				return nil
			}}
			b := &fakeKind{name: fmt.Sprintf("fake.b-fail-%v", coe), packages: 3}
			steps.Register(a)
			steps.Register(b)
			rb := twoStepRunbook(a.name, b.name, false, "")
			rb.Stages[0].Steps[0].ContinueOnError = coe
			eng, store, audit := setup(t, rb, true)
			err := eng.Apply(context.Background(), store, audit)
			var ofe *OpsFailedError
			if coe {
				if err != nil {
					t.Fatalf("continue_on_error: %v", err)
				}
				if b.applied[b.name+"/pkg-01"] != 1 {
					t.Error("continue_on_error did not let the package's next op run")
				}
				return
			}
			if !errors.As(err, &ofe) || !errors.Is(err, boom) || len(ofe.Ops) != 1 {
				t.Fatalf("err = %v", err)
			}
			if b.applied[b.name+"/pkg-01"] != 0 || b.applied[b.name+"/pkg-02"] != 1 {
				t.Errorf("after a failure, that package must stop and the others go on: %v", b.applied)
			}
			if op := store.File().Op(a.name + "/pkg-01"); op.Status != state.Failed || op.Error == "" {
				t.Errorf("failed op recorded as %+v", op)
			}
		})
	}
}

func TestApprovalIsRequiredDeclinedOrGiven(t *testing.T) {
	a := &fakeKind{name: "fake.a-approval", packages: 2}
	b := &fakeKind{name: "fake.b-approval", packages: 2}
	steps.Register(a)
	steps.Register(b)
	rb := twoStepRunbook(a.name, b.name, false, "required")

	eng, store, audit := setup(t, rb, false)
	if err := eng.Apply(context.Background(), store, audit); !errors.Is(err, ErrApprovalNeeded) {
		t.Fatalf("no one to ask: %v", err)
	}
	if len(a.applied) != 0 {
		t.Fatal("ops ran without approval")
	}
	eng.Approve = func(context.Context, state.Step, []*state.Op) (bool, error) { return false, nil }
	var ae *ApprovalError
	if err := eng.Apply(context.Background(), store, audit); !errors.As(err, &ae) || !ae.Declined {
		t.Fatalf("declined: %v", err)
	}
	asked := 0
	eng.Approve = func(_ context.Context, st state.Step, ops []*state.Op) (bool, error) {
		asked++
		return len(ops) == 2, nil
	}
	if err := eng.Apply(context.Background(), store, audit); err != nil || asked != 1 {
		t.Fatalf("approved: %v (asked %d)", err, asked)
	}
	if !store.File().Steps[0].Approved || len(a.applied) != 2 {
		t.Error("approval not recorded or ops not run")
	}
}

func TestParseFault(t *testing.T) {
	for _, bad := range []string{"after-apply", "nowhere:1", "mid:0", "mid:x"} {
		if _, err := ParseFault(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if f, err := ParseFault(""); f != nil || err != nil {
		t.Error("empty")
	}
	var nilFault *Fault
	nilFault.Hit("mid") // must not panic
	f, err := ParseFault("mid:3")
	if err != nil || f.n != 3 || f.point != "mid" {
		t.Errorf("%+v %v", f, err)
	}
}
