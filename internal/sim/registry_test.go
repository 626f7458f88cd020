package sim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC)

// call sends one raw request; the sim is tested over the wire without npmreg so a client bug
// cannot hide a simulator bug (and the reverse).
func call(t *testing.T, method, url, token string, body any, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

type fixture struct {
	r                  *Registry
	alice, bob, carol  string // tokens
	clock              time.Time
	scoped, plain, two string
}

// newFixture: alice owns demo and @acme/widget; bob co-owns demo; carol owns nothing.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: t0.Add(48 * time.Hour), plain: "demo", scoped: "@acme/widget"}
	f.r = NewRegistry(Options{Seed: 7, Now: func() time.Time { return f.clock }, TokensPerPage: 2})
	f.alice = f.r.AddUser("alice", "alice@example.com")
	f.bob = f.r.AddUser("bob", "bob@example.com")
	f.carol = f.r.AddUser("carol", "carol@example.com")
	f.r.AddOrg("acme")
	for i, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		for _, n := range []string{f.plain, f.scoped} {
			err := f.r.Publish(Version{Name: n, Version: v, Publisher: "alice", Time: t0.Add(time.Duration(i) * time.Hour),
				Manifest: map[string]any{"description": "demo package", "keywords": []any{"demo"}}, Files: map[string][]byte{"index.js": []byte("1")}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.r.AddOwner(f.plain, "bob"); err != nil {
		t.Fatal(err)
	}
	f.r.Start()
	t.Cleanup(f.r.Close)
	return f
}

func TestPackumentAndScopedPathForms(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{"@acme%2fwidget", "@acme/widget", "%40acme%2Fwidget"} {
		st, _, b := call(t, "GET", f.r.URL+path, "", nil)
		if st != 200 {
			t.Fatalf("GET %s: %d %s", path, st, b)
		}
		doc := decode[map[string]any](t, b)
		if doc["name"] != "@acme/widget" || doc["_rev"] == "" {
			t.Fatalf("GET %s: %v", path, doc)
		}
		st, _, b = call(t, "GET", f.r.URL+"-/package/"+path+"/dist-tags", "", nil)
		if st != 200 || !strings.Contains(string(b), `"latest":"1.2.0"`) {
			t.Fatalf("dist-tags via %s: %d %s", path, st, b)
		}
	}
	st, _, b := call(t, "GET", f.r.URL+"demo?write=true", "", nil)
	if st != 200 {
		t.Fatal(st)
	}
	var doc struct {
		Rev         string            `json:"_rev"`
		Maintainers []person          `json:"maintainers"`
		Time        map[string]string `json:"time"`
		Versions    map[string]struct {
			NpmUser person `json:"_npmUser"`
			Dist    struct {
				Tarball, Integrity, Shasum string
				Signatures                 []struct{ Keyid, Sig string }
			} `json:"dist"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Maintainers) != 2 || doc.Maintainers[1].Name != "bob" || doc.Time["1.1.0"] != "2025-11-24T01:00:00.000Z" {
		t.Fatalf("maintainers/time: %+v %v", doc.Maintainers, doc.Time)
	}
	v := doc.Versions["1.2.0"]
	if v.NpmUser.Name != "alice" || v.Dist.Tarball != f.r.URL+"demo/-/demo-1.2.0.tgz" {
		t.Fatalf("version: %+v", v)
	}
	// The tarball matches its integrity, and the registry signature verifies with /-/npm/v1/keys.
	st, _, tgz := call(t, "GET", v.Dist.Tarball, "", nil)
	if st != 200 {
		t.Fatal(st)
	}
	if sri, _ := integrity(tgz); sri != v.Dist.Integrity {
		t.Fatalf("integrity %s != %s", sri, v.Dist.Integrity)
	}
	_, _, kb := call(t, "GET", f.r.URL+"-/npm/v1/keys", "", nil)
	keys := decode[struct{ Keys []struct{ Keyid, Key string } }](t, kb)
	der, _ := base64.StdEncoding.DecodeString(keys.Keys[0].Key)
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(v.Dist.Signatures[0].Sig)
	digest := sha256.Sum256([]byte("demo@1.2.0:" + v.Dist.Integrity))
	if v.Dist.Signatures[0].Keyid != keys.Keys[0].Keyid || !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("registry signature does not verify")
	}
	if st, _, _ := call(t, "GET", f.r.URL+"@acme/widget/-/widget-1.0.0.tgz", "", nil); st != 200 {
		t.Fatalf("scoped tarball: %d", st)
	}
	if st, _, _ := call(t, "GET", f.r.URL+"nope", "", nil); st != 404 {
		t.Fatalf("unknown package: %d", st)
	}
}

func TestWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.r.URL
	revOf := func(name string) string {
		_, _, b := call(t, "GET", u+name+"?write=true", "", nil)
		return decode[struct {
			Rev string `json:"_rev"`
		}](t, b).Rev
	}
	packument := func(name string) map[string]any {
		_, _, b := call(t, "GET", u+name+"?write=true", "", nil)
		return decode[map[string]any](t, b)
	}
	deprecated := func(name, v, msg string) map[string]any {
		doc := packument(name)
		doc["versions"].(map[string]any)[v].(map[string]any)["deprecated"] = msg
		return doc
	}
	staleDoc := deprecated("demo", "1.2.0", "compromised")

	cases := []struct {
		name   string
		method string
		path   string
		token  string
		body   func() any
		want   int
		check  func(t *testing.T, b []byte)
	}{
		{"dist-tag anonymous", "PUT", "-/package/demo/dist-tags/next", "", func() any { return "1.0.0" }, 401, nil},
		{"dist-tag non-owner", "PUT", "-/package/demo/dist-tags/next", f.carol, func() any { return "1.0.0" }, 403, nil},
		{"dist-tag unknown version", "PUT", "-/package/demo/dist-tags/next", f.alice, func() any { return "9.9.9" }, 404, nil},
		{"dist-tag add", "PUT", "-/package/demo/dist-tags/next", f.bob, func() any { return "1.0.0" }, 200, func(t *testing.T, _ []byte) {
			if f.r.DistTags("demo")["next"] != "1.0.0" {
				t.Fatal(f.r.DistTags("demo"))
			}
		}},
		{"dist-tag move latest scoped", "PUT", "-/package/@acme%2fwidget/dist-tags/latest", f.alice, func() any { return "1.1.0" }, 200, func(t *testing.T, _ []byte) {
			if f.r.DistTags("@acme/widget")["latest"] != "1.1.0" {
				t.Fatal(f.r.DistTags("@acme/widget"))
			}
		}},
		{"dist-tag delete latest refused", "DELETE", "-/package/demo/dist-tags/latest", f.alice, nil, 400, nil},
		{"dist-tag delete", "DELETE", "-/package/demo/dist-tags/next", f.alice, nil, 200, nil},
		{"dist-tag delete absent", "DELETE", "-/package/demo/dist-tags/next", f.alice, nil, 404, nil},
		{"deprecate", "PUT", "demo", f.alice, func() any { return deprecated("demo", "1.2.0", "compromised") }, 200, func(t *testing.T, _ []byte) {
			if f.r.Deprecation("demo", "1.2.0") != "compromised" || f.r.Deprecation("demo", "1.1.0") != "" {
				t.Fatal("deprecation not applied to exactly 1.2.0")
			}
		}},
		{"deprecate with stale _rev", "PUT", "demo", f.alice, func() any { return staleDoc }, 409, nil},
		{"deprecate by non-owner", "PUT", "demo", f.carol, func() any { return deprecated("demo", "1.1.0", "x") }, 403, nil},
		{"undeprecate", "PUT", "demo", f.alice, func() any { return deprecated("demo", "1.2.0", "") }, 200, func(t *testing.T, _ []byte) {
			if f.r.Deprecation("demo", "1.2.0") != "" {
				t.Fatal("still deprecated")
			}
		}},
		{"owner add", "PUT", "@acme%2fwidget/-rev/" + "REV:@acme/widget", f.alice, func() any {
			return map[string]any{"_id": "@acme/widget", "_rev": revOf("@acme/widget"), "maintainers": []person{{"alice", "alice@example.com"}, {"carol", "carol@example.com"}}}
		}, 200, func(t *testing.T, _ []byte) {
			if got := f.r.Owners("@acme/widget"); fmt.Sprint(got) != "[alice carol]" {
				t.Fatal(got)
			}
		}},
		{"owner change with stale rev", "PUT", "demo/-rev/1-0000000000000000", f.alice, func() any {
			return map[string]any{"_id": "demo", "_rev": "1-0000000000000000", "maintainers": []person{{"bob", "bob@example.com"}}}
		}, 409, nil},
		{"owner unknown user", "PUT", "demo/-rev/REV:demo", f.alice, func() any {
			return map[string]any{"maintainers": []person{{"nobody", "n@example.com"}}}
		}, 404, nil},
		{"owner remove last refused", "PUT", "demo/-rev/REV:demo", f.alice, func() any {
			return map[string]any{"_id": "demo", "maintainers": []person{}}
		}, 403, func(t *testing.T, b []byte) {
			if !strings.Contains(string(b), "Cannot remove all owners") {
				t.Fatalf("%s", b)
			}
		}},
		{"owner remove (self)", "PUT", "demo/-rev/REV:demo", f.alice, func() any {
			return map[string]any{"_id": "demo", "maintainers": []person{{"bob", "bob@example.com"}}}
		}, 200, func(t *testing.T, _ []byte) {
			if got := f.r.Owners("demo"); fmt.Sprint(got) != "[bob]" {
				t.Fatal(got)
			}
		}},
		{"removed owner cannot write", "PUT", "-/package/demo/dist-tags/x", f.alice, func() any { return "1.0.0" }, 403, nil},
		{"unpublish 1.2.0: PUT without it", "PUT", "demo/-rev/REV:demo", f.bob, func() any {
			doc := packument("demo")
			delete(doc["versions"].(map[string]any), "1.2.0")
			return doc
		}, 200, func(t *testing.T, _ []byte) {
			if fmt.Sprint(f.r.Versions("demo")) != "[1.0.0 1.1.0]" || f.r.DistTags("demo")["latest"] != "1.1.0" {
				t.Fatal(f.r.Versions("demo"), f.r.DistTags("demo"))
			}
		}},
		{"unpublish 1.2.0: delete tarball", "DELETE", "demo/-/demo-1.2.0.tgz/-rev/REV:demo", f.bob, nil, 200, nil},
		{"tarball gone", "GET", "demo/-/demo-1.2.0.tgz", "", nil, 404, nil},
		{"republish over unpublished refused", "PUT", "demo", f.bob, func() any { return publishDoc("demo", "1.2.0", u) }, 403, nil},
		{"access mfa=publish", "POST", "-/package/demo/access", f.bob, func() any {
			return map[string]any{"publish_requires_tfa": true, "automation_token_overrides_tfa": false}
		}, 200, func(t *testing.T, _ []byte) {
			if a, _ := f.r.Access("demo"); !a.PublishRequiresTFA || a.AutomationTokenOverridesTFA {
				t.Fatal(a)
			}
		}},
		{"access by non-owner", "POST", "-/package/demo/access", f.carol, func() any { return map[string]any{"publish_requires_tfa": false} }, 403, nil},
		{"publish new version needs OTP (mfa=publish)", "PUT", "demo", f.bob, func() any { return publishDoc("demo", "1.3.0", u) }, 401, nil},
	}
	for _, tc := range cases {
		var body any
		if tc.body != nil {
			body = tc.body()
		}
		path := tc.path
		if i := strings.Index(path, "REV:"); i >= 0 {
			path = path[:i] + revOf(path[i+4:])
		}
		st, _, b := call(t, tc.method, u+path, tc.token, body)
		if st != tc.want {
			t.Fatalf("%s: %s %s = %d %s, want %d", tc.name, tc.method, path, st, b, tc.want)
		}
		if tc.check != nil {
			tc.check(t, b)
		}
	}
	// With the OTP the publish lands; an automation token may not bypass mfa=publish.
	auto, _, _ := f.r.AddToken("bob", TokenOptions{Automation: true})
	if st, _, b := call(t, "PUT", u+"demo", auto, publishDoc("demo", "1.3.0", u)); st != 401 {
		t.Fatalf("automation token bypassed mfa=publish: %d %s", st, b)
	}
	if st, _, b := call(t, "PUT", u+"demo", f.bob, publishDoc("demo", "1.3.0", u), "npm-otp", f.r.OTPCode()); st != 200 {
		t.Fatalf("publish with OTP: %d %s", st, b)
	}
	if f.r.DistTags("demo")["latest"] != "1.3.0" {
		t.Fatal(f.r.DistTags("demo"))
	}
}

// publishDoc is the body `npm publish` sends.
func publishDoc(name, version, registry string) map[string]any {
	man := map[string]any{"name": name, "version": version}
	pj, _ := json.Marshal(man)
	tgz := packTarball(map[string][]byte{"package.json": pj})
	sri, shasum := integrity(tgz)
	file := tarballFile(name, version)
	man["dist"] = map[string]any{"integrity": sri, "shasum": shasum, "tarball": registry + name + "/-/" + file}
	return map[string]any{"_id": name, "name": name, "dist-tags": map[string]string{"latest": version},
		"versions":     map[string]any{version: man},
		"_attachments": map[string]any{file: map[string]any{"content_type": "application/octet-stream", "data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz)}}}
}

func TestListingsAndTrust(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.r.URL
	id, err := f.r.AddTrust("demo", GitHubTrust("acme/demo", "release.yml", "npm"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, token string
		want                int
		body                string // substring of the answer
	}{
		{"GET", "-/user/org.couchdb.user:bob", "", 200, `"email":"bob@example.com"`},
		{"GET", "-/user/org.couchdb.user:nobody", "", 404, ""},
		{"GET", "-/user/bob/package", "", 200, `{"demo":"write"}`},
		{"GET", "-/user/alice/package", "", 200, `"@acme/widget":"write"`},
		{"GET", "-/user/nobody/package", "", 404, ""},
		{"GET", "-/org/acme/package", "", 200, `{"@acme/widget":"write"}`},
		{"GET", "-/org/nope/package", "", 404, ""},
		{"GET", "-/package/demo/collaborators", "", 200, `{"alice":"write","bob":"write"}`},
		{"GET", "-/package/%40acme%2Fwidget/collaborators", "", 200, `{"alice":"write"}`},
		{"GET", "-/package/demo/trust", "", 401, ""},
		{"GET", "-/package/demo/trust", f.carol, 403, ""},
		{"GET", "-/package/demo/trust", f.bob, 200, `"claims":{"environment":"npm","repository":"acme/demo","workflow_ref":{"file":"release.yml"}}`},
		{"DELETE", "-/package/demo/trust/" + id, f.bob, 204, ""},
		{"DELETE", "-/package/demo/trust/" + id, f.bob, 404, ""},
		{"GET", "-/package/demo/trust", f.bob, 200, `[]`},
		{"GET", "-/npm/v1/attestations/demo@1.0.0", "", 404, ""},
		{"GET", "-/whoami", "", 401, ""},
		{"GET", "-/whoami", f.carol, 200, `{"username":"carol"}`},
		{"GET", "-/no/such/route", "", 404, ""},
	}
	for _, tc := range cases {
		st, _, b := call(t, tc.method, u+tc.path, tc.token, nil)
		if st != tc.want || !strings.Contains(string(b), tc.body) {
			t.Errorf("%s %s = %d %s; want %d containing %s", tc.method, tc.path, st, b, tc.want, tc.body)
		}
	}
}

func TestAttestationsOfTrustedPublish(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	err := f.r.Publish(Version{Name: "@acme/widget", Version: "2.0.0", Publisher: "alice", Time: t0.Add(5 * time.Hour),
		TrustedPublisher: &TrustedPublisher{Repository: "acme/widget", Workflow: "release.yml"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"-/npm/v1/attestations/@acme%2fwidget@2.0.0", "-/npm/v1/attestations/@acme/widget@2.0.0"} {
		st, _, b := call(t, "GET", f.r.URL+path, "", nil)
		if st != 200 || !strings.Contains(string(b), `"predicateType":"https://slsa.dev/provenance/v1"`) {
			t.Fatalf("%s: %d %s", path, st, b)
		}
	}
	_, _, b := call(t, "GET", f.r.URL+"@acme%2fwidget", "", nil)
	if !strings.Contains(string(b), `"trustedPublisher":{"id":"github"`) || !strings.Contains(string(b), `"url":"`+f.r.URL+`-/npm/v1/attestations/@acme%2fwidget@2.0.0"`) {
		t.Fatalf("packument of a trusted publish: %s", b)
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	r := NewRegistry(Options{Seed: 1, Now: func() time.Time { return t0 }})
	r.AddUser("m", "m@example.com")
	r.AddUser("o", "o@example.com")
	for i := range 7 {
		pub := "m"
		if i >= 5 {
			pub = "o"
		}
		if err := r.Publish(Version{Name: fmt.Sprintf("p%d", i), Version: "1.0.0", Publisher: pub, Time: t0}); err != nil {
			t.Fatal(err)
		}
	}
	r.Start()
	defer r.Close()
	type page struct {
		Objects []struct {
			Package struct {
				Name        string
				Version     string
				Publisher   struct{ Username string }
				Maintainers []struct{ Username, Email string }
			}
		}
		Total int
		Time  string
	}
	var names []string
	for from := 0; ; from += 2 {
		st, _, b := call(t, "GET", fmt.Sprintf("%s-/v1/search?text=maintainer:m&size=2&from=%d", r.URL, from), "", nil)
		if st != 200 {
			t.Fatal(st)
		}
		p := decode[page](t, b)
		if p.Total != 5 || p.Time == "" {
			t.Fatalf("total %d time %q", p.Total, p.Time)
		}
		if len(p.Objects) == 0 {
			break
		}
		for _, o := range p.Objects {
			if o.Package.Maintainers[0].Username != "m" || o.Package.Publisher.Username != "m" || o.Package.Version != "1.0.0" {
				t.Fatalf("%+v", o)
			}
			names = append(names, o.Package.Name)
		}
	}
	if fmt.Sprint(names) != "[p0 p1 p2 p3 p4]" {
		t.Fatal(names)
	}
	_, _, b := call(t, "GET", r.URL+"-/v1/search?text=p6", "", nil)
	if p := decode[page](t, b); p.Total != 1 || p.Objects[0].Package.Name != "p6" {
		t.Fatalf("%s", b)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.r.URL
	older, olderKey, _ := f.r.AddToken("alice", TokenOptions{Created: t0.Add(-time.Hour), ReadOnly: true, CIDR: []string{"10.0.0.0/8"}})
	session, err := f.r.AddSessionToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	type listing struct {
		Objects []struct {
			Key, Token, Created string
			ReadOnly            bool     `json:"readonly"`
			CIDR                []string `json:"cidr_whitelist"`
		}
		Total int
		URLs  struct{ Next string }
	}
	list := func(tok string) (keys []string) {
		next := u + "-/npm/v1/tokens"
		for next != "" {
			st, _, b := call(t, "GET", next, tok, nil)
			if st != 200 {
				t.Fatalf("list: %d %s", st, b)
			}
			l := decode[listing](t, b)
			for _, o := range l.Objects {
				if strings.Contains(o.Token, tok[8:]) {
					t.Fatal("the list shows a whole token")
				}
				keys = append(keys, o.Key)
			}
			next = l.URLs.Next
		}
		return keys
	}
	// Create one over HTTP (password checked), then list: oldest first, pages of 2, session absent.
	if st, _, _ := call(t, "POST", u+"-/npm/v1/tokens", f.alice, map[string]any{"password": "wrong"}); st != 401 {
		t.Fatalf("wrong password: %d", st)
	}
	st, _, b := call(t, "POST", u+"-/npm/v1/tokens", f.alice, map[string]any{"password": "alice-password", "readonly": false, "cidr_whitelist": []string{}})
	if st != 200 {
		t.Fatalf("create: %d %s", st, b)
	}
	created := decode[struct{ Token, Key string }](t, b)
	keys := list(f.alice)
	if len(keys) != 3 || keys[0] != olderKey || !slices.Contains(keys, created.Key) {
		t.Fatalf("keys %v", keys)
	}
	// Revocation is real: the token is refused everywhere afterwards, reads included.
	if st, _, b := call(t, "DELETE", u+"-/npm/v1/tokens/token/"+created.Key, f.alice, nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, b)
	}
	for _, path := range []string{"-/whoami", "demo", "-/npm/v1/tokens"} {
		if st, _, _ := call(t, "GET", u+path, created.Token, nil); st != 401 {
			t.Fatalf("revoked token on %s: %d", path, st)
		}
	}
	if st, _, _ := call(t, "DELETE", u+"-/npm/v1/tokens/token/"+created.Key, f.alice, nil); st != 404 {
		t.Fatalf("second revoke: %d", st)
	}
	if st, _, _ := call(t, "DELETE", u+"-/npm/v1/tokens/token/"+olderKey, f.bob, nil); st != 404 {
		t.Fatalf("revoking another user's token: %d", st)
	}
	if st, _, _ := call(t, "PUT", u+"-/package/demo/dist-tags/x", older, "1.0.0"); st != 403 {
		t.Fatalf("read-only token wrote: %d", st)
	}
	// The login session works, is not listed, and survives.
	if st, _, b := call(t, "GET", u+"-/whoami", session, nil); st != 200 || !strings.Contains(string(b), "alice") {
		t.Fatalf("session whoami: %d %s", st, b)
	}
	if keys := list(session); len(keys) != 2 {
		t.Fatalf("after revoke: %v", keys)
	}
	f.r.RevokeSession(session)
	if f.r.TokenActive(session) {
		t.Fatal("session still active after logout")
	}
}

func TestOTPMode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.r.SetOTPRequired(true)
	u := f.r.URL
	st, h, b := call(t, "PUT", u+"-/package/demo/dist-tags/next", f.alice, "1.0.0")
	if st != 401 || h.Get("WWW-Authenticate") != "OTP" || !strings.Contains(string(b), "one-time password") {
		t.Fatalf("no challenge: %d %v %s", st, h, b)
	}
	if st, h, _ := call(t, "PUT", u+"-/package/demo/dist-tags/next", f.alice, "1.0.0", "npm-otp", "000000"); st != 401 || h.Get("WWW-Authenticate") != "OTP" {
		t.Fatalf("wrong code: %d", st)
	}
	if st, _, _ := call(t, "GET", u+"demo", f.alice, nil); st != 200 {
		t.Fatalf("reads need no OTP: %d", st)
	}
	if st, _, _ := call(t, "PUT", u+"-/package/demo/dist-tags/next", f.alice, "1.0.0", "npm-otp", f.r.OTPCode()); st != 200 {
		t.Fatalf("with OTP: %d", st)
	}
	if s := f.r.Stats(); s.Landed["PUT /-/package/demo/dist-tags/next"] != 1 || s.MutationsByRoute["PUT /-/package/<pkg>/dist-tags/<tag>"] != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	run := func(seed uint64, rl RateLimit) (statuses []int, retryAfter string) {
		r := NewRegistry(Options{Seed: seed})
		r.SetRateLimit(rl)
		r.Start()
		defer r.Close()
		for range 200 {
			st, h, _ := call(t, "GET", r.URL+"-/npm/v1/keys", "", nil)
			statuses = append(statuses, st)
			if st == 429 {
				retryAfter = h.Get("Retry-After")
			}
		}
		return statuses, retryAfter
	}
	a, ra := run(3, RateLimit{Fraction: 0.3, RetryAfter: 1})
	b, _ := run(3, RateLimit{Fraction: 0.3, RetryAfter: 1})
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different 429 pattern")
	}
	refused, run429, longest := 0, 0, 0
	for _, s := range a {
		if s == 429 {
			refused++
			run429++
			longest = max(longest, run429)
		} else {
			run429 = 0
		}
	}
	if refused < 40 || refused > 80 || ra != "1" {
		t.Fatalf("%d of 200 refused (Retry-After %q), want about 60", refused, ra)
	}
	if longest > 3 {
		t.Fatalf("%d 429s in a row on one path; the default cap is 3", longest)
	}
	c, _ := run(3, RateLimit{Fraction: 1, MaxConsecutive: -1})
	for _, s := range c {
		if s != 429 {
			t.Fatal("uncapped 100% let one through")
		}
	}
}

func TestLatencyFaultsAndCounters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.r.URL
	f.r.SetLatency(30 * time.Millisecond)
	start := time.Now()
	call(t, "GET", u+"-/npm/v1/keys", "", nil)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("latency not applied: %v", d)
	}
	f.r.SetLatency(0)
	f.r.ResetStats()

	var mu sync.Mutex
	var calls []Call
	f.r.SetFaultHook(func(c Call) *Fault {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		switch {
		case c.Route == "PUT /-/package/<pkg>/dist-tags/<tag>" && c.N == 1:
			return &Fault{Status: 503, Header: map[string]string{"Retry-After": "2"}}
		case c.Route == "DELETE /-/package/<pkg>/dist-tags/<tag>":
			return &Fault{Status: 502, AfterEffect: true}
		case c.Path == "/-/whoami":
			return &Fault{Drop: true}
		}
		return nil
	})
	st, h, _ := call(t, "PUT", u+"-/package/demo/dist-tags/next", f.alice, "1.0.0")
	if st != 503 || h.Get("Retry-After") != "2" || f.r.DistTags("demo")["next"] != "" {
		t.Fatalf("fault before effect: %d, tags %v", st, f.r.DistTags("demo"))
	}
	if st, _, _ := call(t, "PUT", u+"-/package/demo/dist-tags/next", f.alice, "1.0.0"); st != 200 {
		t.Fatalf("second attempt: %d", st)
	}
	if st, _, _ := call(t, "DELETE", u+"-/package/demo/dist-tags/next", f.alice, nil); st != 502 {
		t.Fatalf("after-effect fault: %d", st)
	}
	if _, ok := f.r.DistTags("demo")["next"]; ok {
		t.Fatal("after-effect fault did not apply the request")
	}
	// A fresh connection: on a reused one Go's transport would replay the GET once by itself.
	req, _ := http.NewRequest("GET", u+"-/whoami", nil)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("dropped connection answered")
	}
	s := f.r.Stats()
	if s.Requests != 4 || s.Mutations != 3 || s.MutationsByRoute["PUT /-/package/<pkg>/dist-tags/<tag>"] != 2 {
		t.Fatalf("stats %+v", s)
	}
	// Landed counts applied writes, including the one whose answer was replaced by a fault.
	if s.Landed["PUT /-/package/demo/dist-tags/next"] != 1 || s.Landed["DELETE /-/package/demo/dist-tags/next"] != 1 || len(s.Landed) != 2 {
		t.Fatalf("landed %v", s.Landed)
	}
	log := f.r.Log()
	if len(log) != 4 || log[0].Status != 503 || log[1].Status != 200 || log[1].User != "alice" || log[3].Status != 0 {
		t.Fatalf("log %+v", log)
	}
	if len(calls) != 4 || calls[1].N != 2 {
		t.Fatalf("hook calls %+v", calls)
	}
	f.r.ResetStats()
	if s := f.r.Stats(); s.Requests != 0 || len(s.Landed) != 0 || len(f.r.Log()) != 0 {
		t.Fatal("reset left counts")
	}
}

func TestScenario(t *testing.T) {
	t.Parallel()
	build := func() (*Registry, *Scenario) {
		r := NewRegistry(Options{Seed: 42, Now: func() time.Time { return t0.Add(72 * time.Hour) }})
		sc, err := SeedCompromisedMaintainer(r, ScenarioOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r, sc
	}
	start := time.Now()
	r, sc := build()
	t.Logf("seeded in %v", time.Since(start))
	if len(sc.Packages) != 300 || len(sc.Affected) != 40 || len(sc.LastOwner) != 10 || len(sc.CoOwned) != 30 {
		t.Fatalf("packages %d affected %d last-owner %d co-owned %d", len(sc.Packages), len(sc.Affected), len(sc.LastOwner), len(sc.CoOwned))
	}
	for _, p := range sc.LastOwner {
		if o := r.Owners(p); len(o) != 1 || o[0] != sc.Maintainer {
			t.Fatalf("%s owners %v", p, o)
		}
	}
	for _, p := range sc.CoOwned {
		if o := r.Owners(p); len(o) < 2 {
			t.Fatalf("%s owners %v", p, o)
		}
	}
	if len(sc.RogueTrust) == 0 || len(sc.AllowedTrust) != 30 || len(sc.AttackerTokens) != 3 {
		t.Fatalf("rogue trust %d allowed %d attacker tokens %d", len(sc.RogueTrust), len(sc.AllowedTrust), len(sc.AttackerTokens))
	}
	r.Start()
	defer r.Close()
	// Every affected package has exactly its bad versions at or after T, and the rest none.
	for _, name := range sc.Packages {
		_, _, b := call(t, "GET", r.URL+escapeName(name), "", nil)
		doc := decode[struct{ Time map[string]string }](t, b)
		var after []string
		for _, v := range []string{"1.0.0", "1.1.0", "1.1.1", "1.1.2"} {
			if ts, ok := doc.Time[v]; ok {
				at, _ := time.Parse(time.RFC3339, ts)
				if !at.Before(sc.Since) {
					after = append(after, v)
				}
			}
		}
		if fmt.Sprint(after) != fmt.Sprint(sc.Affected[name]) {
			t.Fatalf("%s: after T %v, scenario says %v", name, after, sc.Affected[name])
		}
	}
	_, _, b := call(t, "GET", r.URL+"-/user/"+sc.Maintainer+"/package", "", nil)
	if n := len(decode[map[string]string](t, b)); n != 300 {
		t.Fatalf("user listing %d", n)
	}
	_, _, b = call(t, "GET", r.URL+"-/v1/search?text=maintainer:"+sc.Maintainer+"&size=250", "", nil)
	if p := decode[struct{ Total int }](t, b); p.Total != 300 {
		t.Fatalf("search total %d", p.Total)
	}
	_, _, b = call(t, "GET", r.URL+"-/org/"+sc.Org+"/package", "", nil)
	if n := len(decode[map[string]string](t, b)); n != 60 {
		t.Fatalf("org listing %d", n)
	}
	st, _, b := call(t, "GET", r.URL+"-/npm/v1/tokens", sc.Token, nil)
	if l := decode[struct{ Total int }](t, b); st != 200 || l.Total != 1+24+3 {
		t.Fatalf("tokens %d %s", st, b)
	}
	if st, _, _ := call(t, "GET", r.URL+"-/whoami", sc.SessionToken, nil); st != 200 {
		t.Fatal("session token refused")
	}
	// Same seed, same bytes.
	r2, sc2 := build()
	r2.Start()
	defer r2.Close()
	if fmt.Sprint(sc2.AttackerTokens, sc2.RogueTrust, sc2.LastOwner) != fmt.Sprint(sc.AttackerTokens, sc.RogueTrust, sc.LastOwner) {
		t.Fatal("scenario differs across runs with one seed")
	}
	name := sc.LastOwner[0]
	_, _, a := call(t, "GET", r.URL+escapeName(name), "", nil)
	_, _, c := call(t, "GET", r2.URL+escapeName(name), "", nil)
	if string(bytes.ReplaceAll(a, []byte(r.URL), nil)) != string(bytes.ReplaceAll(c, []byte(r2.URL), nil)) {
		t.Fatal("packument differs across runs with one seed")
	}
}

func TestChangedCountsOnlyEffectiveWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.r.URL
	for range 2 {
		if st, _, _ := call(t, "PUT", u+"-/package/demo/dist-tags/next", f.alice, "1.0.0"); st != 200 {
			t.Fatal(st)
		}
		if st, _, _ := call(t, "POST", u+"-/package/demo/access", f.alice, map[string]any{"publish_requires_tfa": true}); st != 200 {
			t.Fatal(st)
		}
	}
	s := f.r.Stats()
	for _, k := range []string{"PUT /-/package/demo/dist-tags/next", "POST /-/package/demo/access"} {
		if s.Landed[k] != 2 || s.Changed[k] != 1 {
			t.Fatalf("%s: landed %d changed %d, want 2 and 1", k, s.Landed[k], s.Changed[k])
		}
	}
}
