package npmreg_test

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
	"github.com/npmir/npmir/internal/sim"
	"github.com/npmir/npmir/internal/testenv/npmpkg"
	"github.com/npmir/npmir/internal/testenv/verdaccio"
)

// tokenBackend is one registry the token lifecycle runs against, with what differs between them.
type tokenBackend struct {
	client     *npmreg.Client // authenticated with loginToken
	user       string
	loginToken string // issued by a login: not in the list
	password   string
	// reRevokeChanged is what a second revoke of the same key reports: false on the simulator
	// (404), true on Verdaccio 6.8 (200 for any key).
	reRevokeChanged bool
}

// tokenLifecycle is the revoke-tokens step's contract, run identically against the simulator
// and the real Verdaccio.
func tokenLifecycle(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	c := b.client
	before, err := c.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := c.CreateToken(ctx, b.password, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := c.CreateToken(ctx, b.password, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprint(*rw), rw.Token) {
		t.Fatal("NewToken prints its secret")
	}
	if _, err := c.CreateToken(ctx, "wrong-password", false, nil); !errors.Is(err, npmreg.ErrAuth) {
		t.Fatalf("wrong password: %v", err)
	}
	listed, err := c.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Only the two created tokens were added: the login token is not listed.
	if len(listed) != len(before)+2 {
		t.Fatalf("listed %d tokens, had %d before creating 2", len(listed), len(before))
	}
	for _, tk := range listed {
		if tk.Token == rw.Token || tk.Token == ro.Token || tk.Token == b.loginToken {
			t.Fatal("the list shows a whole token")
		}
		if tk.Key == ro.Key && (!tk.ReadOnly || tk.Created.IsZero()) {
			t.Fatalf("read-only token listed as %+v", tk)
		}
	}
	if !slices.ContainsFunc(listed, func(tk npmreg.Token) bool { return tk.Key == rw.Key }) {
		t.Fatalf("created key %s not listed", rw.Key)
	}
	if user, works, err := c.TokenWorks(ctx, rw.Token); err != nil || !works || user != b.user {
		t.Fatalf("new token: %q %v %v", user, works, err)
	}

	if changed, err := c.RevokeToken(ctx, rw.Key); err != nil || !changed {
		t.Fatalf("revoke: %v %v", changed, err)
	}
	listed, err = c.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(listed, func(tk npmreg.Token) bool { return tk.Key == rw.Key }) || len(listed) != len(before)+1 {
		t.Fatalf("revoked key still listed: %+v", listed)
	}
	// The post-revoke check: the revoked token is refused; the others, the login included, work.
	if _, works, err := c.TokenWorks(ctx, rw.Token); err != nil || works {
		t.Fatalf("revoked token: works=%v err=%v", works, err)
	}
	if _, works, err := c.TokenWorks(ctx, ro.Token); err != nil || !works {
		t.Fatalf("other token: works=%v err=%v", works, err)
	}
	if user, works, err := c.TokenWorks(ctx, b.loginToken); err != nil || !works || user != b.user {
		t.Fatalf("login token: %q works=%v err=%v (nothing here should end a login session)", user, works, err)
	}
	if _, works, err := c.TokenWorks(ctx, "npm_not-a-token-at-all"); err != nil || works {
		t.Fatalf("made-up token: works=%v err=%v", works, err)
	}
	if changed, err := c.RevokeToken(ctx, rw.Key); err != nil || changed != b.reRevokeChanged {
		t.Fatalf("second revoke: changed=%v err=%v, want changed=%v", changed, err, b.reRevokeChanged)
	}
}

// foundationCalls runs the client calls of registry.go that the containment steps rest on, the
// same way against the simulator and Verdaccio, so the simulator cannot drift from the real
// thing unnoticed. verdaccio records the one difference: Verdaccio 6.8 answers 201 to
// DELETE of the latest tag (and keeps it), the simulator refuses it like npmjs.
func foundationCalls(t *testing.T, c *npmreg.Client, pkg, user string, verdaccio bool) {
	ctx := context.Background()
	p, err := c.Packument(ctx, pkg, true)
	if err != nil || p.Rev == "" || p.DistTags["latest"] != "1.1.0" || len(p.Versions) != 2 {
		t.Fatalf("packument: %v %+v", err, p)
	}
	if _, ok := p.PublishedAt("1.1.0"); !ok {
		t.Fatalf("no publish time: %v", p.Time)
	}
	rc, err := c.Tarball(ctx, p.Versions["1.1.0"].Dist.Tarball)
	if err != nil {
		t.Fatal(err)
	}
	h := sha512.New()
	_, err = io.Copy(h, rc)
	rc.Close()
	if err != nil || "sha512-"+base64.StdEncoding.EncodeToString(h.Sum(nil)) != p.Versions["1.1.0"].Dist.Integrity {
		t.Fatalf("tarball does not match its integrity (%v)", err)
	}
	if err := c.SetDistTag(ctx, pkg, "next", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDistTag(ctx, pkg, "next", "9.9.9"); !errors.Is(err, npmreg.ErrNotFound) {
		t.Fatalf("tag to a missing version: %v", err)
	}
	if tags, err := c.DistTags(ctx, pkg); err != nil || tags["next"] != "1.0.0" {
		t.Fatalf("%v %v", tags, err)
	}
	if err := c.DeleteDistTag(ctx, pkg, "next"); err != nil {
		t.Fatal(err)
	}
	err = c.DeleteDistTag(ctx, pkg, "latest")
	if verdaccio != (err == nil) {
		t.Fatalf("delete latest: %v", err)
	}
	if tags, err := c.DistTags(ctx, pkg); err != nil || tags["latest"] != "1.1.0" || tags["next"] != "" {
		t.Fatalf("%v %v", tags, err)
	}
	for i, step := range []struct {
		msg     string
		changed bool
	}{{"bad version", true}, {"bad version", false}, {"", true}} {
		changed, err := c.Deprecate(ctx, pkg, "1.0.0", step.msg)
		if err != nil || changed != step.changed {
			t.Fatalf("deprecate #%d: %v %v", i+1, changed, err)
		}
		if p, err := c.Packument(ctx, pkg, true); err != nil || p.Versions["1.0.0"].Deprecated != step.msg || p.Versions["1.1.0"].Deprecated != "" {
			t.Fatalf("after deprecate #%d: %v", i+1, err)
		}
	}
	if _, err := c.Deprecate(ctx, pkg, "9.9.9", "x"); !errors.Is(err, npmreg.ErrNotFound) {
		t.Fatal(err)
	}
	if who, err := c.Whoami(ctx, ""); err != nil || who != user {
		t.Fatalf("whoami %q %v", who, err)
	}
	if _, err := c.Packument(ctx, "no-such-package-here", false); !errors.Is(err, npmreg.ErrNotFound) {
		t.Fatal(err)
	}
}

func TestFoundationCallsSim(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	foundationCalls(t, e.client(t, e.alice), "demo", "alice", false)
}

func TestTokenLifecycleSim(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	login, err := e.reg.AddSessionToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	tokenLifecycle(t, tokenBackend{client: e.client(t, login), user: "alice", loginToken: login, password: "alice-password"})
}

// TestAgainstVerdaccio runs the calls Verdaccio 6.8 serves against the real thing, and records
// what it does with the ones it does not.
func TestAgainstVerdaccio(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Verdaccio")
	}
	t.Parallel()
	ctx := context.Background()
	v, err := verdaccio.Start(ctx, verdaccio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	c, err := npmreg.New(npmreg.Options{Registry: v.URL, Token: v.Token})
	if err != nil {
		t.Fatal(err)
	}
	for _, ver := range []string{"1.0.0", "1.1.0"} {
		if err := v.Publish(ctx, npmpkg.Package{Name: "vd-demo", Version: ver, Files: map[string][]byte{"index.js": []byte(ver)}}, "latest"); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("foundation calls", func(t *testing.T) {
		foundationCalls(t, c, "vd-demo", v.User, true)
	})

	t.Run("tokens", func(t *testing.T) {
		tokenLifecycle(t, tokenBackend{client: c, user: v.User, loginToken: v.Token, password: "admin-password-1", reRevokeChanged: true})
	})
	t.Run("user record has no email", func(t *testing.T) {
		u, err := c.User(ctx, v.User)
		if err != nil || u.Name != v.User || u.Email != "" {
			t.Fatalf("%+v %v", u, err)
		}
	})
	t.Run("owners are not recorded", func(t *testing.T) {
		owners, err := c.Owners(ctx, "vd-demo")
		if err != nil || len(owners) != 0 {
			t.Fatalf("%v %v", owners, err)
		}
		if _, err := c.RemoveOwner(ctx, "vd-demo", v.User); !errors.Is(err, npmreg.ErrOwnersUnknown) {
			t.Fatalf("remove owner: %v", err)
		}
		// Adding to an unknown list could drop owners the registry keeps elsewhere: refused too.
		// (Verdaccio itself answers PUT /<pkg>/-rev/<rev> with 422, apis.md.)
		if _, err := c.AddOwner(ctx, "vd-demo", v.User); !errors.Is(err, npmreg.ErrOwnersUnknown) {
			t.Fatalf("add owner: %v", err)
		}
	})
	t.Run("text search works, listings fall back to an empty search", func(t *testing.T) {
		res, err := c.Search(ctx, "vd-demo", 20, 0)
		if err != nil || res.Total < 1 || res.Objects[0].Package.Name != "vd-demo" {
			t.Fatalf("%+v %v", res, err)
		}
		got, err := c.PackagesOf(ctx, v.User)
		if err != nil || got.Source != "search" || len(got.Packages) != 0 {
			t.Fatalf("%+v %v", got, err)
		}
	})
	t.Run("routes it does not serve", func(t *testing.T) {
		if err := c.SetAccess(ctx, "vd-demo", npmreg.MFAPublish); err == nil {
			t.Fatal("access accepted")
		}
		if _, err := c.Collaborators(ctx, "vd-demo"); !errors.Is(err, npmreg.ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := c.TrustConfigs(ctx, "vd-demo"); !errors.Is(err, npmreg.ErrNotFound) {
			t.Fatal(err)
		}
	})
}

func TestTokensFollowsNextLinks(t *testing.T) {
	t.Parallel()
	r := sim.NewRegistry(sim.Options{Seed: 3, TokensPerPage: 2, Now: func() time.Time { return t0 }})
	tok := r.AddUser("u", "u@example.com")
	for i := range 4 {
		if _, _, err := r.AddToken("u", sim.TokenOptions{Created: t0.Add(time.Duration(i+1) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	r.Start()
	defer r.Close()
	c, _ := npmreg.New(npmreg.Options{Registry: r.URL, Token: tok})
	ctx := context.Background()

	all, err := c.Tokens(ctx)
	if err != nil || len(all) != 5 || !slices.IsSortedFunc(all, func(a, b npmreg.Token) int { return a.Created.Compare(b.Created) }) {
		t.Fatalf("%v %+v", err, all)
	}
	if n := r.Stats().Requests; n != 3 {
		t.Fatalf("%d requests for 3 pages", n)
	}

	page := func(next string) string {
		return `{"objects":[{"key":"k0","token":"npm_ab...","cidr":["10.0.0.0/8"],"user":"u","created":"2025-11-20T10:00:00.000Z"}],"urls":{"next":"` + next + `"}}`
	}
	cases := []struct {
		name, first string
		want        int // tokens; -1: an error
	}{
		{"root-relative link, Verdaccio field names", page("/-/npm/v1/tokens?page=1&perPage=2"), 1 + 2 + 1},
		{"relative link", page("-/npm/v1/tokens?page=2&perPage=2"), 1 + 1},
		{"link to another host", page("http://evil.example/-/npm/v1/tokens?page=1"), -1},
		{"link that never ends", page("/-/npm/v1/tokens?page=0&perPage=2&again"), -1},
	}
	for _, tc := range cases {
		r.ResetStats()
		r.SetFaultHook(func(call sim.Call) *sim.Fault {
			if call.Route == "GET /-/npm/v1/tokens" && (call.N == 1 || strings.HasSuffix(tc.name, "never ends")) {
				return &sim.Fault{Status: 200, Body: tc.first}
			}
			return nil
		})
		got, err := c.Tokens(ctx)
		if tc.want < 0 {
			if err == nil {
				t.Fatalf("%s: no error", tc.name)
			}
			continue
		}
		if err != nil || len(got) != tc.want || got[0].User != "u" || fmt.Sprint(got[0].CIDRWhitelist) != "[10.0.0.0/8]" || got[0].Created.IsZero() {
			t.Fatalf("%s: %v %+v", tc.name, err, got)
		}
	}
}

// TestWritesLandOnceUnder429 is the revoke stage's calls against a registry refusing 30% of
// requests with 429 + Retry-After: 1: everything completes, and each write lands exactly once.
func TestWritesLandOnceUnder429(t *testing.T) {
	t.Parallel()
	r, sc := scenario(t, sim.ScenarioOptions{Packages: 40, Affected: 24, LastOwner: 6, OldTokens: 2})
	r.SetRateLimit(sim.RateLimit{Fraction: 0.3, RetryAfter: 1})
	r.ResetStats()
	c, err := npmreg.New(npmreg.Options{Registry: r.URL, Token: sc.Token})
	if err != nil {
		t.Fatal(err)
	}
	c.MaxBackoff = 2 * time.Millisecond // honour Retry-After up to 2 ms: the test stays fast
	ctx := context.Background()
	start := time.Now()

	var mu sync.Mutex
	want := map[string]bool{} // route prefixes of the writes that must land
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for pkg := range sc.Affected {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			esc := npmreg.PathEscape(pkg)
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", pkg, err))
				mu.Unlock()
			}
			if err := c.SetAccess(ctx, pkg, npmreg.MFAPublish); err != nil {
				fail(err)
			}
			mu.Lock()
			want["POST /-/package/"+esc+"/access"] = true
			mu.Unlock()
			if id, ok := sc.RogueTrust[pkg]; ok {
				if changed, err := c.DeleteTrust(ctx, pkg, id); err != nil || !changed {
					fail(fmt.Errorf("delete trust: %v %w", changed, err))
				}
				mu.Lock()
				want["DELETE /-/package/"+esc+"/trust/"+id] = true
				mu.Unlock()
			}
			changed, err := c.RemoveOwner(ctx, pkg, sc.Maintainer)
			last := slices.Contains(sc.LastOwner, pkg)
			switch {
			case last && !errors.Is(err, npmreg.ErrLastOwner):
				fail(fmt.Errorf("last owner: %w", err))
			case !last && (err != nil || !changed):
				fail(fmt.Errorf("remove owner: %v %w", changed, err))
			case !last:
				mu.Lock()
				want["PUT /"+esc+"/-rev/"] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, key := range sc.AttackerKeys {
		if changed, err := c.RevokeToken(ctx, key); err != nil || !changed {
			errs = append(errs, fmt.Errorf("revoke: %v %w", changed, err))
		}
		want["DELETE /-/npm/v1/tokens/token/"+key] = true
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	s := r.Stats()
	refused := 0
	for _, l := range r.Log() {
		if l.Status == 429 {
			refused++
		}
	}
	t.Logf("%d requests, %d answered 429, %d writes landed, %v", s.Requests, refused, len(s.Landed), time.Since(start))
	if refused == 0 {
		t.Fatal("no 429 was served: the test proves nothing")
	}
	if len(s.Landed) != len(want) {
		t.Fatalf("%d writes landed, want %d: %v", len(s.Landed), len(want), s.Landed)
	}
	for key, n := range s.Landed {
		prefix := key
		if i := strings.Index(key, "/-rev/"); i >= 0 {
			prefix = key[:i+len("/-rev/")]
		}
		if n != 1 || !want[prefix] {
			t.Fatalf("%s landed %d times (expected: %v)", key, n, want[prefix])
		}
	}
	for _, tok := range sc.AttackerTokens {
		if r.TokenActive(tok) {
			t.Fatal("an attacker token survived")
		}
	}
	if !r.TokenActive(sc.SessionToken) || !r.TokenActive(sc.Token) {
		t.Fatal("the session or the responder's token was revoked")
	}
	for _, pkg := range sc.CoOwned {
		if slices.Contains(r.Owners(pkg), sc.Maintainer) {
			t.Fatalf("%s still owned by %s", pkg, sc.Maintainer)
		}
	}
}
