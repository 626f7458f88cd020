package npmreg_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/sim"
)

var t0 = time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC)

// simEnv: alice owns solo and @acme/widget alone and demo with bob; carol owns nothing.
type simEnv struct {
	reg               *sim.Registry
	alice, bob, carol string // tokens
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	e := &simEnv{reg: sim.NewRegistry(sim.Options{Seed: 11, Now: func() time.Time { return t0.Add(time.Hour) }})}
	e.alice = e.reg.AddUser("alice", "alice@example.com")
	e.bob = e.reg.AddUser("bob", "bob@example.com")
	e.carol = e.reg.AddUser("carol", "carol@example.com")
	for _, name := range []string{"demo", "solo", "@acme/widget"} {
		for _, v := range []string{"1.0.0", "1.1.0"} {
			if err := e.reg.Publish(sim.Version{Name: name, Version: v, Publisher: "alice", Time: t0}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.reg.AddOwner("demo", "bob"); err != nil {
		t.Fatal(err)
	}
	e.reg.Start()
	t.Cleanup(e.reg.Close)
	return e
}

func (e *simEnv) client(t *testing.T, token string, mod ...func(*npmreg.Options)) *npmreg.Client {
	t.Helper()
	o := npmreg.Options{Registry: e.reg.URL, Token: token}
	for _, m := range mod {
		m(&o)
	}
	c, err := npmreg.New(o)
	if err != nil {
		t.Fatal(err)
	}
	c.MaxBackoff = 2 * time.Millisecond // Retry-After is honoured up to this: keeps retry tests fast
	return c
}

func names(ps []npmreg.Person) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return strings.Join(out, ",")
}

func TestOwners(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ctx := context.Background()
	alice := e.client(t, e.alice)

	if got, err := alice.Owners(ctx, "demo"); err != nil || names(got) != "alice,bob" || got[1].Email != "bob@example.com" {
		t.Fatalf("Owners(demo) = %v, %v", got, err)
	}
	if u, err := alice.User(ctx, "bob"); err != nil || u.Name != "bob" || u.Email != "bob@example.com" {
		t.Fatalf("User(bob) = %+v, %v", u, err)
	}
	if _, err := alice.User(ctx, "nobody"); !errors.Is(err, npmreg.ErrNotFound) {
		t.Fatalf("User(nobody): %v", err)
	}

	cases := []struct {
		name    string
		op      func() (bool, error)
		changed bool
		err     error
		owners  map[string]string // package → owners afterwards
	}{
		{"remove a non-owner: no write", func() (bool, error) { return alice.RemoveOwner(ctx, "demo", "carol") }, false, nil, map[string]string{"demo": "alice,bob"}},
		{"remove the last owner: refused before sending", func() (bool, error) { return alice.RemoveOwner(ctx, "solo", "alice") }, false, npmreg.ErrLastOwner, map[string]string{"solo": "alice"}},
		{"add an owner (scoped)", func() (bool, error) { return alice.AddOwner(ctx, "@acme/widget", "bob") }, true, nil, map[string]string{"@acme/widget": "alice,bob"}},
		{"add it again: no write", func() (bool, error) { return alice.AddOwner(ctx, "@acme/widget", "bob") }, false, nil, map[string]string{"@acme/widget": "alice,bob"}},
		{"add an unknown account", func() (bool, error) { return alice.AddOwner(ctx, "demo", "nobody") }, false, npmreg.ErrNotFound, map[string]string{"demo": "alice,bob"}},
		{"remove oneself where a co-owner stays", func() (bool, error) { return alice.RemoveOwner(ctx, "demo", "alice") }, true, nil, map[string]string{"demo": "bob"}},
		{"remove again: already absent", func() (bool, error) { return alice.RemoveOwner(ctx, "demo", "alice") }, false, nil, map[string]string{"demo": "bob"}},
		{"a non-owner cannot remove", func() (bool, error) { return e.client(t, e.carol).RemoveOwner(ctx, "@acme/widget", "bob") }, false, npmreg.ErrAuth, map[string]string{"@acme/widget": "alice,bob"}},
	}
	for _, tc := range cases {
		changed, err := tc.op()
		if changed != tc.changed || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Fatalf("%s: changed=%v err=%v; want %v, %v", tc.name, changed, err, tc.changed, tc.err)
		}
		for pkg, want := range tc.owners {
			if got := strings.Join(e.reg.Owners(pkg), ","); got != want {
				t.Fatalf("%s: owners of %s = %s, want %s", tc.name, pkg, got, want)
			}
		}
	}
	var lo *npmreg.LastOwnerError
	_, err := alice.RemoveOwner(ctx, "solo", "alice")
	if !errors.As(err, &lo) || lo.Package != "solo" || !strings.Contains(err.Error(), "npm owner add") {
		t.Fatalf("last-owner error should name the package and the way out: %v", err)
	}
	// Exactly the two changes landed, once each; the refusals sent nothing.
	var landed []string
	for k, n := range e.reg.Stats().Landed {
		if n != 1 {
			t.Fatalf("%s landed %d times", k, n)
		}
		landed = append(landed, k[:strings.LastIndexByte(k, '/')])
	}
	slices.Sort(landed)
	if fmt.Sprint(landed) != "[PUT /@acme%2fwidget/-rev PUT /demo/-rev]" {
		t.Fatalf("landed %v", landed)
	}
}

func TestRemoveOwnerRetriesAConflict(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	var puts atomic.Int32
	// The first owner PUT meets a concurrent edit (409); the client must re-read and try again.
	e.reg.SetFaultHook(func(c sim.Call) *sim.Fault {
		if c.Route == "PUT /<pkg>/-rev/<rev>" && puts.Add(1) == 1 {
			return &sim.Fault{Status: 409, Body: `{"error":"conflict"}`}
		}
		return nil
	})
	changed, err := e.client(t, e.alice).RemoveOwner(context.Background(), "demo", "bob")
	if err != nil || !changed || strings.Join(e.reg.Owners("demo"), ",") != "alice" || puts.Load() != 2 {
		t.Fatalf("changed=%v err=%v owners=%v puts=%d", changed, err, e.reg.Owners("demo"), puts.Load())
	}
}

func TestOTPChallenge(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	e.reg.SetOTPRequired(true)
	ctx := context.Background()

	// No TTY, no code: a typed error the CLI maps to "pass --otp", and nothing changed.
	_, err := e.client(t, e.alice).RemoveOwner(ctx, "demo", "bob")
	if !errors.Is(err, npmreg.ErrOTPRequired) || errors.Is(err, npmreg.ErrAuth) || !strings.Contains(err.Error(), "--otp") {
		t.Fatalf("want ErrOTPRequired naming --otp, got %v", err)
	}
	if _, err := e.client(t, e.alice).RevokeToken(ctx, "somekey"); !errors.Is(err, npmreg.ErrOTPRequired) {
		t.Fatalf("revoke without OTP: %v", err)
	}
	if len(e.reg.Stats().Landed) != 0 {
		t.Fatalf("a write landed without OTP: %v", e.reg.Stats().Landed)
	}
	// With the code given up front.
	withOTP := e.client(t, e.alice, func(o *npmreg.Options) { o.OTP = e.reg.OTPCode() })
	if changed, err := withOTP.RemoveOwner(ctx, "demo", "bob"); err != nil || !changed {
		t.Fatalf("with OTP: %v %v", changed, err)
	}
	if err := withOTP.SetAccess(ctx, "demo", npmreg.MFAPublish); err != nil {
		t.Fatal(err)
	}
	// With a prompt (a TTY): asked once, then the write goes through.
	prompted := 0
	c := e.client(t, e.alice)
	c.OTPPrompt = func(context.Context) (string, error) { prompted++; return e.reg.OTPCode(), nil }
	if changed, err := c.AddOwner(ctx, "solo", "carol"); err != nil || !changed || prompted != 1 {
		t.Fatalf("prompted %d times: %v %v", prompted, changed, err)
	}
	if got := fmt.Sprint(e.reg.Owners("solo")); got != "[alice carol]" {
		t.Fatal(got)
	}
}
