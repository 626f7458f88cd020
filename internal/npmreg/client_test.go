package npmreg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fastClient records the waits instead of sleeping them.
func fastClient(t *testing.T, url, token string) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := New(Options{Registry: url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return c, &waits
}

func TestRetriesHonourRetryAfterAndNeverRetryAWriteThatMayHaveLanded(t *testing.T) {
	t.Parallel()
	var gets, puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && gets.Add(1) <= 2:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		case r.Method == http.MethodGet:
			w.Write([]byte(`{"latest":"1.0.0"}`))
		case r.Method == http.MethodPut:
			puts.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	c, waits := fastClient(t, srv.URL, "")
	tags, err := c.DistTags(context.Background(), "x")
	if err != nil || tags["latest"] != "1.0.0" {
		t.Fatalf("DistTags = %v, %v", tags, err)
	}
	if len(*waits) != 2 || (*waits)[0] < 3*time.Second {
		t.Errorf("waits %v, want two of at least Retry-After (3s)", *waits)
	}
	err = c.SetDistTag(context.Background(), "x", "latest", "1.0.0")
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadGateway || puts.Load() != 1 {
		t.Errorf("PUT answered 502: err %v after %d attempts; a write that may have landed must go back to the engine's check, not be resent", err, puts.Load())
	}
}

func TestOTPChallenge(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("npm-otp") != "123456" {
			w.Header().Set("WWW-Authenticate", "OTP")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"You must provide a one-time pass."}`))
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, _ := fastClient(t, srv.URL, "tok")
	err := c.SetDistTag(context.Background(), "x", "latest", "1.0.0")
	if !errors.Is(err, ErrOTPRequired) || errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "--otp") {
		t.Fatalf("without a code: %v, want ErrOTPRequired naming --otp", err)
	}
	asked := 0
	c.OTPPrompt = func(context.Context) (string, error) { asked++; return "123456", nil }
	if err := c.SetDistTag(context.Background(), "x", "latest", "1.0.0"); err != nil || asked != 1 {
		t.Fatalf("with a prompt: %v (asked %d)", err, asked)
	}
	c2, _ := fastClient(t, srv.URL, "tok")
	c2.otp = "123456"
	if err := c2.SetDistTag(context.Background(), "x", "latest", "1.0.0"); err != nil {
		t.Fatalf("with --otp: %v", err)
	}
}

func TestErrorsNeverCarryTheToken(t *testing.T) {
	t.Parallel()
	const token = "npm_SECRETSECRETSECRET"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error":"token ` + token + ` may not publish"}`)) // a registry echoing it back
	}))
	defer srv.Close()
	c, _ := fastClient(t, srv.URL, token)
	err := c.SetDistTag(context.Background(), "x", "latest", "1.0.0")
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), token) {
		t.Fatalf("err %v", err)
	}
}

func TestNewRefusesPlainHTTPToRemoteHosts(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Registry: "http://registry.example.com/"}); err == nil {
		t.Error("plain http to a remote host accepted")
	}
	if _, err := New(Options{Registry: "http://registry.example.com/", AllowInsecure: true}); err != nil {
		t.Error(err)
	}
	for _, ok := range []string{"http://127.0.0.1:4873/", "http://localhost:4873", "https://registry.npmjs.org/"} {
		if _, err := New(Options{Registry: ok}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := New(Options{Registry: "ftp://x/"}); err == nil {
		t.Error("ftp accepted")
	}
}

func TestTokenFromNpmrc(t *testing.T) { // not parallel: Setenv
	dir := t.TempDir()
	rc := filepath.Join(dir, ".npmrc")
	t.Setenv("NPMIR_TEST_TOKEN", "from-env")
	_ = os.WriteFile(rc, []byte(`registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken=public-token
//npm.corp.example/private/:_authToken="${NPMIR_TEST_TOKEN}"
; //127.0.0.1:4873/:_authToken=commented
//127.0.0.1:4873/:_authToken=local
`), 0o600)
	for reg, want := range map[string]string{
		"https://registry.npmjs.org/":                 "public-token",
		"https://registry.npmjs.org":                  "public-token",
		"https://npm.corp.example/private/npm-group/": "from-env",
		"https://npm.corp.example/other/":             "",
		"http://127.0.0.1:4873/":                      "local",
	} {
		if got := TokenFromNpmrc(rc, reg); got != want {
			t.Errorf("%s: %q, want %q", reg, got, want)
		}
	}
	if got := TokenFromNpmrc(filepath.Join(dir, "missing"), "https://registry.npmjs.org/"); got != "" {
		t.Errorf("missing file: %q", got)
	}
}

func TestPathEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"debug": "debug", "@ctrl/tinycolor": "@ctrl%2ftinycolor"} {
		if got := PathEscape(in); got != want {
			t.Errorf("%s: %s", in, got)
		}
	}
}

func TestLastKnownGood(t *testing.T) {
	t.Parallel()
	mk := func(vs map[string]string, deprecated ...string) *Packument {
		p := &Packument{Name: "x", Versions: map[string]*Version{}, Time: map[string]string{}}
		for v, ts := range vs {
			p.Versions[v] = &Version{Version: v}
			if ts != "" {
				p.Time[v] = ts
			}
		}
		for _, v := range deprecated {
			p.Versions[v].Deprecated = "bad"
		}
		return p
	}
	const t0 = "2025-09-08T13:16:00Z"
	cases := []struct {
		name string
		p    *Packument
		bad  []string
		want string
		ok   bool
	}{
		{"highest before earliest bad", mk(map[string]string{"4.0.0": "2025-01-01T00:00:00Z", "4.1.0": "2025-02-01T00:00:00Z", "4.1.1": "2025-09-15T00:00:00Z", "4.1.2": "2025-09-15T00:10:00Z"}), []string{"4.1.1", "4.1.2"}, "4.1.0", true},
		{"only what is named is bad", mk(map[string]string{"4.1.0": "2025-02-01T00:00:00Z", "4.1.1": "2025-09-15T00:00:00Z", "4.1.2": "2025-09-15T00:10:00Z"}), []string{"4.1.2"}, "4.1.1", true},
		// A backport published before the incident with a higher version than the bad one.
		{"published order, not version order", mk(map[string]string{"3.9.9": "2025-01-01T00:00:00Z", "4.2.0": "2025-03-01T00:00:00Z", "4.1.1": "2025-09-15T00:00:00Z", "5.0.0": "2025-10-01T00:00:00Z"}), []string{"4.1.1"}, "4.2.0", true},
		{"same publish time: version order", mk(map[string]string{"1.0.0": t0, "1.1.0": t0, "1.1.1": t0}), []string{"1.1.1"}, "1.1.0", true},
		{"prerelease skipped", mk(map[string]string{"1.0.0": "2025-01-01T00:00:00Z", "2.0.0-beta.1": "2025-02-01T00:00:00Z", "1.0.1": "2025-09-01T00:00:00Z"}), []string{"1.0.1"}, "1.0.0", true},
		{"deprecated skipped", mk(map[string]string{"1.0.0": "2025-01-01T00:00:00Z", "1.0.1": "2025-02-01T00:00:00Z", "1.0.2": "2025-09-01T00:00:00Z"}, "1.0.1"), []string{"1.0.2"}, "1.0.0", true},
		{"only a deprecated one", mk(map[string]string{"1.0.1": "2025-02-01T00:00:00Z", "1.0.2": "2025-09-01T00:00:00Z"}, "1.0.1"), []string{"1.0.2"}, "1.0.1", true},
		{"no times: below the lowest bad", mk(map[string]string{"1.0.0": "", "1.1.0": "", "1.2.0": "", "2.0.0": ""}), []string{"1.2.0"}, "1.1.0", true},
		{"nothing before", mk(map[string]string{"1.0.0": "2025-01-01T00:00:00Z"}), []string{"1.0.0"}, "", false},
		{"no bad versions", mk(map[string]string{"1.0.0": "2025-01-01T00:00:00Z"}), nil, "", false},
	}
	for _, tc := range cases {
		got, ok := tc.p.LastKnownGood(tc.bad)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %q %v, want %q %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// Ops challenged for a one-time password at once share one prompt.
func TestConcurrentOTPChallengesAskOnce(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("npm-otp") != "654321" {
			w.Header().Set("WWW-Authenticate", "OTP")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, _ := fastClient(t, srv.URL, "tok")
	var asked atomic.Int32
	c.OTPPrompt = func(context.Context) (string, error) { asked.Add(1); return "654321", nil }
	errs := make(chan error, 10)
	for i := range 10 {
		go func() { errs <- c.SetDistTag(context.Background(), "x", fmt.Sprint("t", i), "1.0.0") }()
	}
	for range 10 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("asked %d times, want once", n)
	}
}
