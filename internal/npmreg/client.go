package npmreg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultRegistry is the public npm registry.
const DefaultRegistry = "https://registry.npmjs.org/"

// Client talks to one registry. The zero value is not usable: build it with New.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client

	// OTP is sent as `npm-otp` on writes when set. OTPPrompt, when set, is asked for a code the
	// first time the registry challenges; nil means "no TTY: fail with ErrOTPRequired".
	OTPPrompt func(ctx context.Context) (string, error)
	otpMu     sync.Mutex
	otp       string
	promptMu  sync.Mutex // one OTP prompt at a time

	// Retries bounds retries of one request on 429/5xx and connection errors.
	Retries int
	// MaxBackoff caps one wait between retries (Retry-After is honoured up to this).
	MaxBackoff time.Duration
	// OnRequest, when set, is told of every request sent (method, path); the dry-run tests and
	// the benchmarks count with it.
	OnRequest func(method, path string)
	// UserAgent identifies npmir to the registry.
	UserAgent string

	sleep func(ctx context.Context, d time.Duration) error
}

// Options configure New.
type Options struct {
	Registry      string // base URL; DefaultRegistry when empty
	Token         string // bearer token; never logged
	OTP           string
	AllowInsecure bool          // permit plain http:// to a non-loopback host
	Timeout       time.Duration // per request; 30s when zero
	HTTPClient    *http.Client  // overrides the built client (tests)
}

// New validates the registry URL and returns a client. Plain http is refused for anything but
// loopback unless AllowInsecure: a token must not cross a network in clear text by accident.
func New(o Options) (*Client, error) {
	raw := o.Registry
	if raw == "" {
		raw = DefaultRegistry
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, &UsageError{Msg: fmt.Sprintf("registry URL %q is not an http(s) URL", raw)}
	}
	if u.Scheme == "http" && !o.AllowInsecure && !IsLoopback(u.Hostname()) {
		return nil, &UsageError{Msg: fmt.Sprintf("registry %s uses plain http to a non-loopback host; use https or pass --allow-insecure", u.Redacted())}
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	hc := o.HTTPClient
	if hc == nil {
		timeout := o.Timeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Timeout: timeout, Transport: tr, CheckRedirect: keepAuthOnSameScheme}
	}
	return &Client{
		base: u, token: o.Token, http: hc, otp: o.OTP,
		Retries: 5, MaxBackoff: 30 * time.Second, UserAgent: "npmir",
		sleep: sleepCtx,
	}, nil
}

// keepAuthOnSameScheme follows redirects but drops the token when one changes the scheme (Go
// already drops it when the host changes): an https registry must not hand it to http.
func keepAuthOnSameScheme(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Scheme != via[0].URL.Scheme {
		req.Header.Del("Authorization")
	}
	return nil
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Registry returns the base URL (no credentials ever live in it).
func (c *Client) Registry() string { return c.base.String() }

// HasToken reports whether the client authenticates.
func (c *Client) HasToken() bool { return c.token != "" }

// Redact removes the client's token from s; every error string passes through it.
func (c *Client) Redact(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "[redacted]")
}

// request describes one call; path is relative to the registry base and already escaped.
type request struct {
	method string
	path   string
	query  url.Values
	body   any // marshalled as JSON when non-nil
	write  bool
	// token overrides the client's token (the post-revoke whoami check).
	token *string
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.RawPath = ""
	rel, _ := url.Parse(path)
	full := u.ResolveReference(&url.URL{Path: u.Path + rel.Path, RawPath: u.Path + rel.EscapedPath()})
	if q != nil {
		full.RawQuery = q.Encode()
	}
	return full.String()
}

// do sends r with retries and decodes a JSON answer into out (when non-nil). It returns an
// *HTTPError for any non-2xx answer.
func (c *Client) do(ctx context.Context, r request, out any) error {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("encode %s %s: %w", r.method, r.path, err)
		}
	}
	target := c.url(r.path, r.query)
	promptedOTP := false
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, r.method, target, bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.method, target, err)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", c.UserAgent)
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		tok := c.token
		if r.token != nil {
			tok = *r.token
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		sentOTP := ""
		if r.write {
			if hook, ok := ctx.Value(beforeWriteKey{}).(func()); ok {
				hook()
			}
			c.otpMu.Lock()
			sentOTP = c.otp
			c.otpMu.Unlock()
			if sentOTP != "" {
				req.Header.Set("npm-otp", sentOTP)
			}
		}
		if c.OnRequest != nil {
			c.OnRequest(r.method, req.URL.EscapedPath())
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A write is retried here only when the connection was never made: then it cannot
			// have landed. Anything else goes back to the engine, which checks before retrying.
			if attempt < c.Retries && (!r.write || isDialError(err)) {
				if serr := c.sleep(ctx, c.backoff(attempt, 0)); serr != nil {
					return serr
				}
				continue
			}
			return &NetError{Method: r.method, URL: c.Redact(target), Err: errors.New(c.Redact(err.Error()))}
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		resp.Body.Close()
		if rerr != nil {
			if attempt < c.Retries && !r.write {
				continue
			}
			return &NetError{Method: r.method, URL: c.Redact(target), Err: rerr}
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if out != nil && len(body) > 0 {
				if err := json.Unmarshal(body, out); err != nil {
					return fmt.Errorf("%s %s: registry answered %d with a body that is not the expected JSON: %w", r.method, c.Redact(target), resp.StatusCode, err)
				}
			}
			return nil
		}
		herr := &HTTPError{Method: r.method, URL: c.Redact(target), Status: resp.StatusCode, Body: snippet(c.Redact(string(body)))}
		if resp.StatusCode == http.StatusUnauthorized && isOTPChallenge(resp, body) {
			herr.OTPRequired = true
			// One prompt for all: concurrent ops challenged at once wait here, and those that
			// find a code newer than the one they sent retry with it instead of asking again.
			c.promptMu.Lock()
			c.otpMu.Lock()
			cur := c.otp
			c.otpMu.Unlock()
			if cur != "" && (cur != sentOTP || !r.write) {
				c.promptMu.Unlock()
				// A challenged read, or a code someone else just entered: npm's client
				// retries any challenged request with the code, not only writes.
				r.write = true
				continue
			}
			if c.OTPPrompt != nil && !promptedOTP {
				promptedOTP = true
				code, perr := c.OTPPrompt(ctx)
				if perr != nil {
					c.promptMu.Unlock()
					return perr
				}
				c.otpMu.Lock()
				c.otp = code
				c.otpMu.Unlock()
				c.promptMu.Unlock()
				r.write = true // the code goes on the retried request whatever its method
				continue
			}
			c.promptMu.Unlock()
			return herr
		}
		// 429 means the registry refused before doing anything: safe to retry even a write.
		// 5xx may have landed, so only reads retry it here.
		retryable := resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode >= 500 && !r.write)
		if retryable && attempt < c.Retries {
			if serr := c.sleep(ctx, c.backoff(attempt, retryAfter(resp))); serr != nil {
				return serr
			}
			continue
		}
		return herr
	}
}

func isOTPChallenge(resp *http.Response, body []byte) bool {
	if strings.Contains(strings.ToLower(resp.Header.Get("Www-Authenticate")), "otp") {
		return true
	}
	b := strings.ToLower(string(body))
	return strings.Contains(b, "one-time pass")
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backoff is exponential with full jitter, at least Retry-After when the server named one.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	base := 200 * time.Millisecond << min(attempt, 8)
	d := time.Duration(rand.Int64N(int64(base))) + base/2
	if retryAfter > d {
		d = retryAfter + time.Duration(rand.Int64N(int64(100*time.Millisecond)))
	}
	return min(d, c.MaxBackoff)
}

func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// snippet shortens a response body for an error message. Callers redact first: a cut could
// leave part of a secret the redaction no longer recognises.
func snippet(body string) string {
	s := strings.TrimSpace(body)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Token returns the client's token, for matching it against the registry's token list. Callers
// must treat it as a secret.
func (c *Client) Token() string { return c.token }

// TokenMatches reports whether a token list entry (a prefix such as "npm_AbCd", or a masked form
// such as "AbCd...wxyz") is the given secret value. Too short an entry never matches.
func TokenMatches(listed, value string) bool {
	if listed == "" || value == "" {
		return false
	}
	for _, sep := range []string{"...", "…"} {
		if head, tail, ok := strings.Cut(listed, sep); ok {
			return len(head)+len(tail) >= 6 && strings.HasPrefix(value, head) && strings.HasSuffix(value, tail)
		}
	}
	listed = strings.TrimRight(listed, "*")
	return len(listed) >= 6 && strings.HasPrefix(value, listed)
}

type beforeWriteKey struct{}

// WithBeforeWrite returns a context under which fn runs once, just before the first write
// request is sent: after an op's reads, before its mutation. The engine's fault injection uses it
// to stop a process in the middle of an op that the client performs as read-then-write.
func WithBeforeWrite(ctx context.Context, fn func()) context.Context {
	var once sync.Once
	return context.WithValue(ctx, beforeWriteKey{}, func() { once.Do(fn) })
}
