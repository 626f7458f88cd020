package npmreg_test

import (
	"context"
	"errors"
	"testing"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/sim"
)

func TestSetAccess(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ctx := context.Background()
	alice := e.client(t, e.alice)
	for range 2 { // setting it twice is harmless: the op's idempotence rests on that
		if err := alice.SetAccess(ctx, "@acme/widget", npmreg.MFAPublish); err != nil {
			t.Fatal(err)
		}
	}
	if a, _ := e.reg.Access("@acme/widget"); !a.PublishRequiresTFA || a.AutomationTokenOverridesTFA {
		t.Fatalf("access %+v", a)
	}
	if err := e.client(t, e.carol).SetAccess(ctx, "demo", npmreg.MFAPublish); !errors.Is(err, npmreg.ErrAuth) {
		t.Fatalf("non-owner: %v", err)
	}
	if err := alice.SetAccess(ctx, "nope", npmreg.MFAPublish); !errors.Is(err, npmreg.ErrNotFound) {
		t.Fatalf("unknown package: %v", err)
	}
	if a, _ := e.reg.Access("demo"); a.PublishRequiresTFA {
		t.Fatal("a refused call changed access")
	}
}

func TestCollaborators(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ctx := context.Background()
	c := e.client(t, "")
	got, err := c.Collaborators(ctx, "demo")
	if err != nil || len(got) != 2 || got["alice"] != "write" || got["bob"] != "write" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := c.Collaborators(ctx, "nope"); !errors.Is(err, npmreg.ErrNotFound) {
		t.Fatal(err)
	}
	// apis.md documents the CLI's spelling (read-only/read-write); the client reads both.
	e.reg.SetFaultHook(func(call sim.Call) *sim.Fault {
		if call.Route == "GET /-/package/<pkg>/collaborators" {
			return &sim.Fault{Status: 200, Body: `{"x":"read-only","y":"read-write","z":"read"}`}
		}
		return nil
	})
	got, err = c.Collaborators(ctx, "demo")
	if err != nil || got["x"] != "read" || got["y"] != "write" || got["z"] != "read" {
		t.Fatalf("%v %v", got, err)
	}
}
