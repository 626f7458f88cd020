package npmreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// ErrLastOwner: the change would leave a package without an owner. The registry refuses that,
// and npmir refuses before sending, as the npm client does (EOWNERRM).
var ErrLastOwner = errors.New("last owner")

// ErrOwnersUnknown: the packument lists no maintainers at all, so npmir cannot tell who owns the
// package (Verdaccio 6.8 records none for packages published with a token). Reporting "not an
// owner, nothing to do" there would be a false all-clear.
var ErrOwnersUnknown = errors.New("the registry records no owners for this package")

// LastOwnerError names the package and the user that could not be removed, and what to do.
type LastOwnerError struct {
	Package string
	User    string
}

func (e *LastOwnerError) Error() string {
	return fmt.Sprintf("cannot remove %s from the owners of %s: it is the only owner and the registry keeps at least one. "+
		"Add a trusted co-maintainer first (npm owner add <user> %s) and run again, or, if nobody else can own it, "+
		"keep the bad versions deprecated, require 2FA, revoke the account's tokens and ask npm support to take the package over",
		e.User, e.Package, e.Package)
}

// Is makes errors.Is(err, ErrLastOwner) true.
func (e *LastOwnerError) Is(target error) bool { return target == ErrLastOwner }

// User reads an account's public record, to build a maintainer entry.
// Route: GET /-/user/org.couchdb.user:<user>. Verdaccio 6.8 answers only {ok}: then the returned
// Person carries the name asked for and no email.
func (c *Client) User(ctx context.Context, name string) (Person, error) {
	var out Person
	err := c.do(ctx, request{method: http.MethodGet, path: "-/user/org.couchdb.user:" + url.PathEscape(name)}, &out)
	if err != nil {
		return Person{}, err
	}
	if out.Name == "" {
		out.Name = name
	}
	return out, nil
}

// Owners lists a package's maintainers, the accounts that can publish it. An empty list means the
// registry records none (Verdaccio 6.8 for packages published with a token), not "nobody".
// Route: GET /<pkg>?write=true (the packument's maintainers; ?write=true skips caches, so an owner
// change just made is visible).
func (c *Client) Owners(ctx context.Context, pkg string) ([]Person, error) {
	p, err := c.Packument(ctx, pkg, true)
	if err != nil {
		return nil, err
	}
	return p.Maintainers, nil
}

// RemoveOwner removes user from pkg's owners. It reports whether anything changed: a user who is
// not an owner is left alone (changed=false, nil). Removing the last owner is refused with a
// *LastOwnerError before anything is sent; a packument without maintainers gives ErrOwnersUnknown.
// Routes: GET /<pkg>?write=true, then PUT /<pkg>/-rev/<rev> with {_id, _rev, maintainers}.
// A 409 (the document changed in between) is retried on a fresh read.
func (c *Client) RemoveOwner(ctx context.Context, pkg, user string) (changed bool, err error) {
	return c.changeOwners(ctx, pkg, func(cur []Person) ([]Person, bool, error) {
		next := slices.DeleteFunc(slices.Clone(cur), func(p Person) bool { return p.Name == user })
		if len(next) == len(cur) {
			return nil, false, nil
		}
		if len(next) == 0 {
			return nil, false, &LastOwnerError{Package: pkg, User: user}
		}
		return next, true, nil
	})
}

// AddOwner makes user an owner of pkg (changed=false when it already is).
// Routes: GET /-/user/org.couchdb.user:<user>, GET /<pkg>?write=true, PUT /<pkg>/-rev/<rev>.
func (c *Client) AddOwner(ctx context.Context, pkg, user string) (changed bool, err error) {
	u, err := c.User(ctx, user)
	if err != nil {
		return false, fmt.Errorf("add %s to the owners of %s: %w", user, pkg, err)
	}
	return c.changeOwners(ctx, pkg, func(cur []Person) ([]Person, bool, error) {
		if slices.ContainsFunc(cur, func(p Person) bool { return p.Name == u.Name }) {
			return nil, false, nil
		}
		return append(slices.Clone(cur), Person{Name: u.Name, Email: u.Email}), true, nil
	})
}

// changeOwners reads the document, lets edit decide the new maintainers, and writes them with
// the _rev just read, the way `npm owner` does.
func (c *Client) changeOwners(ctx context.Context, pkg string, edit func([]Person) ([]Person, bool, error)) (bool, error) {
	for attempt := 0; ; attempt++ {
		changed, err := c.changeOwnersOnce(ctx, pkg, edit)
		if err == nil || attempt >= 3 || !isConflict(err) {
			return changed, err
		}
	}
}

func (c *Client) changeOwnersOnce(ctx context.Context, pkg string, edit func([]Person) ([]Person, bool, error)) (bool, error) {
	raw, err := c.rawPackument(ctx, pkg)
	if err != nil {
		return false, err
	}
	var id, rev string
	var cur []Person
	_ = json.Unmarshal(raw["_id"], &id)
	_ = json.Unmarshal(raw["_rev"], &rev)
	if m, ok := raw["maintainers"]; ok {
		if err := json.Unmarshal(m, &cur); err != nil {
			return false, fmt.Errorf("packument of %s: maintainers: %w", pkg, err)
		}
	}
	if len(cur) == 0 {
		return false, fmt.Errorf("owners of %s: %w (its packument has no maintainers; check the registry's own access control)", pkg, ErrOwnersUnknown)
	}
	next, changed, err := edit(cur)
	if err != nil || !changed {
		return false, err
	}
	if rev == "" {
		return false, fmt.Errorf("packument of %s has no _rev: the registry cannot take an owner change", pkg)
	}
	if id == "" {
		id = pkg
	}
	body := map[string]any{"_id": id, "_rev": rev, "maintainers": next}
	err = c.do(ctx, request{method: http.MethodPut, path: PathEscape(pkg) + "/-rev/" + url.PathEscape(rev), body: body, write: true}, nil)
	if err != nil {
		return false, err
	}
	return true, nil
}
