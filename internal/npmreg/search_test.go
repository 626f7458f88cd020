package npmreg_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/sim"
)

func scenario(t *testing.T, o sim.ScenarioOptions) (*sim.Registry, *sim.Scenario) {
	t.Helper()
	r := sim.NewRegistry(sim.Options{Seed: 5, Now: func() time.Time { return t0.Add(72 * time.Hour) }})
	sc, err := sim.SeedCompromisedMaintainer(r, o)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(r.Close)
	return r, sc
}

func TestPackagesOf(t *testing.T) {
	t.Parallel()
	r, sc := scenario(t, sim.ScenarioOptions{}) // 300 packages: two search pages of 250
	ctx := context.Background()
	c, err := npmreg.New(npmreg.Options{Registry: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(sc.Packages, " ")

	got, err := c.PackagesOf(ctx, sc.Maintainer)
	if err != nil || got.Source != "user" || strings.Join(slices.Sorted(maps.Keys(got.Packages)), " ") != all {
		t.Fatalf("user listing: %v %+v", err, got)
	}
	org, err := c.PackagesOf(ctx, "@"+sc.Org)
	if err != nil || org.Source != "org" || len(org.Packages) != 60 {
		t.Fatalf("org listing: %v %s %d", err, org.Source, len(org.Packages))
	}
	// A registry without the listings (Verdaccio 404s them): search maintainer:, every page.
	r.SetFaultHook(func(call sim.Call) *sim.Fault {
		if strings.HasSuffix(call.Route, "/package") {
			return &sim.Fault{Status: 404, Body: `{"error":"not found"}`}
		}
		return nil
	})
	r.ResetStats()
	got, err = c.PackagesOf(ctx, sc.Maintainer)
	if err != nil || got.Source != "search" || strings.Join(slices.Sorted(maps.Keys(got.Packages)), " ") != all {
		t.Fatalf("search fallback: %v %s %d", err, got.Source, len(got.Packages))
	}
	var searches []string
	for _, l := range r.Log() {
		if l.Route == "GET /-/v1/search" {
			searches = append(searches, l.Query)
		}
	}
	if len(searches) != 2 || !strings.Contains(searches[1], "from=250") {
		t.Fatalf("search pages %v", searches)
	}
	org, err = c.PackagesOf(ctx, "@"+sc.Org)
	if err != nil || org.Source != "search" || len(org.Packages) != 60 {
		t.Fatalf("org search fallback: %v %s %d", err, org.Source, len(org.Packages))
	}
	// Other failures are not papered over by a search.
	r.SetFaultHook(func(call sim.Call) *sim.Fault {
		if strings.HasSuffix(call.Route, "/package") {
			return &sim.Fault{Status: 400}
		}
		return nil
	})
	if _, err := c.PackagesOf(ctx, sc.Maintainer); err == nil {
		t.Fatal("a 400 fell back to search")
	}
}

func TestSearchDropsLooseMatches(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	// Search matches loosely: a hit whose maintainers do not include the account is not its package.
	e.reg.SetFaultHook(func(call sim.Call) *sim.Fault {
		switch call.Route {
		case "GET /-/user/<user>/package":
			return &sim.Fault{Status: 404}
		case "GET /-/v1/search":
			return &sim.Fault{Status: 200, Body: `{"objects":[
				{"package":{"name":"mine","maintainers":[{"username":"other"},{"username":"bob"}]}},
				{"package":{"name":"bobcat","maintainers":[{"username":"bobcat"}]}},
				{"package":{"name":"unlisted"}}],"total":3}`}
		}
		return nil
	})
	got, err := e.client(t, "").PackagesOf(context.Background(), "bob")
	if err != nil || fmt.Sprint(slices.Sorted(maps.Keys(got.Packages))) != "[mine unlisted]" {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	c := e.client(t, "")
	res, err := c.Search(context.Background(), "maintainer:bob", 20, 0)
	if err != nil || res.Total != 1 || res.Objects[0].Package.Name != "demo" || res.Objects[0].Package.Version != "1.1.0" ||
		res.Objects[0].Package.Publisher.Username != "alice" || len(res.Objects[0].Package.Maintainers) != 2 {
		t.Fatalf("%v %+v", err, res)
	}
	res, err = c.Search(context.Background(), "maintainer:alice", 2, 2)
	if err != nil || res.Total != 3 || len(res.Objects) != 1 {
		t.Fatalf("page 2: %v %+v", err, res)
	}
}
