package verdaccio

import (
	"context"
	"os"
	"testing"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/testenv/npmpkg"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := s.Publish(ctx, npmpkg.Package{Name: "demo-pkg", Version: v, Files: map[string][]byte{"index.js": []byte("module.exports=1\n")}}, "latest"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.NpmPublish(ctx, npmpkg.Package{Name: "@acme/demo", Version: "1.1.1", Files: map[string][]byte{"index.js": []byte("x")}}, "latest"); err != nil {
		t.Fatal(err)
	}
	c, _ := npmreg.New(npmreg.Options{Registry: s.URL, Token: s.Token})
	c.OnRequest = func(m, p string) { t.Log(m, p) }
	p, err := c.Packument(ctx, "@acme/demo", true)
	t.Logf("%+v %v", p, err)
	if err := c.SetDistTag(ctx, "demo-pkg", "next", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	ch, err := c.Deprecate(ctx, "demo-pkg", "1.1.0", "bad one")
	t.Log(ch, err)
	ch, err = c.Deprecate(ctx, "demo-pkg", "1.1.0", "bad one")
	t.Log(ch, err)
	out, err := s.Npm(ctx, os.TempDir(), "view", "demo-pkg", "--json")
	t.Log(out, err)
	u, err := c.Whoami(ctx, "")
	t.Log(u, err)
	_, err = c.Packument(ctx, "nope-pkg", false)
	t.Log(err)
}
