package verdaccio

import (
	"context"
	"testing"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/testenv/npmpkg"
)

// The harness gives a working registry: HTTP publishes, the real npm client's publish, the
// login token, and the registry calls npmir's freeze uses.
func TestHarnessServesTheFreezeCalls(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.SeedCompromised(ctx, "smoke-pkg", false); err != nil {
		t.Fatal(err)
	}
	if err := s.NpmPublish(ctx, npmpkg.Package{Name: "@acme/smoke", Version: "1.0.0", Files: map[string][]byte{"index.js": []byte("x")}}, "latest"); err != nil {
		t.Fatal(err)
	}
	c, _ := npmreg.New(npmreg.Options{Registry: s.URL, Token: s.Token})
	if u, err := c.Whoami(ctx, ""); err != nil || u != s.User {
		t.Fatalf("whoami = %q, %v", u, err)
	}
	p, err := c.Packument(ctx, "@acme/smoke", true)
	if err != nil || p.Rev == "" || p.Versions["1.0.0"] == nil {
		t.Fatalf("scoped packument: %+v, %v", p, err)
	}
	if err := c.SetDistTag(ctx, "smoke-pkg", "latest", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if tags, _ := c.DistTags(ctx, "smoke-pkg"); tags["latest"] != "1.1.0" || tags["next"] != "1.1.1" {
		t.Errorf("tags %v", tags)
	}
	for i, want := range []bool{true, false} {
		changed, err := c.Deprecate(ctx, "smoke-pkg", "1.1.1", "compromised")
		if err != nil || changed != want {
			t.Errorf("deprecate #%d: changed=%v err=%v, want changed=%v", i+1, changed, err, want)
		}
	}
	if _, err := c.Packument(ctx, "no-such-smoke", false); err == nil {
		t.Error("unknown package: no error")
	}
}
