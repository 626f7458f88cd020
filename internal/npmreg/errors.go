package npmreg

import (
	"errors"
	"fmt"
	"net/http"
)

// HTTPError is a non-2xx registry answer. Its text never carries the token.
type HTTPError struct {
	Method      string
	URL         string
	Status      int
	Body        string
	OTPRequired bool
}

func (e *HTTPError) Error() string {
	hint := ""
	switch {
	case e.OTPRequired:
		hint = " (the registry wants a one-time password: pass --otp CODE or set NPMIR_NPM_OTP)"
	case e.Status == http.StatusUnauthorized:
		hint = " (token missing, expired or revoked: set NPM_TOKEN or an _authToken line in ~/.npmrc)"
	case e.Status == http.StatusForbidden:
		hint = " (the token lacks rights on this package; is it a maintainer's token, and is it revoked already?)"
	case e.Status == http.StatusNotFound:
		hint = " (no such package or version on this registry)"
	}
	msg := fmt.Sprintf("%s %s: registry said %d", e.Method, e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg + hint
}

// Is lets callers test with errors.Is against the sentinels below.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrAuth:
		return (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) && !e.OTPRequired
	case ErrOTPRequired:
		return e.OTPRequired
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

var (
	// ErrNotFound: the registry has no such package (or version, or tag).
	ErrNotFound = errors.New("not found")
	// ErrAuth: the registry refused the credentials (401/403 without an OTP challenge).
	ErrAuth = errors.New("authentication or authorization failed")
	// ErrOTPRequired: the registry wants a one-time password and none could be asked for.
	ErrOTPRequired = errors.New("one-time password required")
	// ErrConflict: a write raced another (stale _rev).
	ErrConflict = errors.New("conflict")
)

// NetError is a registry that could not be reached or answered mid-way.
type NetError struct {
	Method string
	URL    string
	Err    error
}

func (e *NetError) Error() string {
	return fmt.Sprintf("%s %s: registry unreachable: %v", e.Method, e.URL, e.Err)
}

func (e *NetError) Unwrap() error { return e.Err }

// UsageError is bad configuration given to the client (a malformed registry URL, say).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }
