package npmreg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// SearchResult is one page of GET /-/v1/search.
type SearchResult struct {
	Objects []SearchObject `json:"objects"`
	Total   int            `json:"total"`
	Time    string         `json:"time"`
}

// SearchObject is one hit.
type SearchObject struct {
	Package     SearchPackage `json:"package"`
	SearchScore float64       `json:"searchScore"`
}

// SearchPackage describes a hit's package at its latest version.
type SearchPackage struct {
	Name        string            `json:"name"`
	Scope       string            `json:"scope"`
	Version     string            `json:"version"`
	Description string            `json:"description"`
	Keywords    []string          `json:"keywords"`
	Date        string            `json:"date"` // RFC 3339; kept as text so an odd value does not fail a whole page
	Links       map[string]string `json:"links"`
	Publisher   SearchUser        `json:"publisher"`
	Maintainers []SearchUser      `json:"maintainers"`
}

// SearchUser is a maintainer or publisher as search names them (username, not name).
type SearchUser struct {
	Username string `json:"username"`
	Email    string `json:"email"`
}

// SearchPageSize is the largest page the registry serves.
const SearchPageSize = 250

// Search runs one page of a registry search (text may hold qualifiers such as maintainer:USER).
// Route: GET /-/v1/search?text=&size=&from=.
func (c *Client) Search(ctx context.Context, text string, size, from int) (*SearchResult, error) {
	q := url.Values{"text": {text}, "size": {strconv.Itoa(size)}, "from": {strconv.Itoa(from)}}
	var out SearchResult
	if err := c.do(ctx, request{method: http.MethodGet, path: "-/v1/search", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// searchAll pages through a search to its end. The page count is bounded so a registry that
// misreports total cannot keep npmir looping.
func (c *Client) searchAll(ctx context.Context, text string) ([]SearchObject, error) {
	var all []SearchObject
	for page := 0; page < 400; page++ {
		res, err := c.Search(ctx, text, SearchPageSize, len(all))
		if err != nil {
			return nil, err
		}
		all = append(all, res.Objects...)
		if len(res.Objects) == 0 || len(all) >= res.Total {
			return all, nil
		}
	}
	return nil, fmt.Errorf("search %q: more than %d results, stopped paging", text, 400*SearchPageSize)
}

// PackageList is every package an account or org can reach, and where npmir learned it.
type PackageList struct {
	Entity string
	// Source is "org" (GET /-/org/<scope>/package), "user" (GET /-/user/<user>/package) or
	// "search" (GET /-/v1/search, maintainer: or scope:). A search index can lag and some
	// registries (Verdaccio 6.8) do not index maintainers at all, so an empty "search" list is
	// not proof that the account owns nothing.
	Source string
	// Packages maps each name to "write" or "read"; search hits are "write" (the account is a
	// listed maintainer).
	Packages map[string]string
}

// PackagesOf lists the packages an account (or an org, named "@scope") can publish: the org
// listing for a scope, the user listing otherwise, falling back to a paginated search when the
// listing is not served (404). Search hits are kept only when the account is among their
// maintainers, since search also matches loosely.
// Routes: GET /-/org/<scope>/package | GET /-/user/<user>/package, then GET /-/v1/search.
func (c *Client) PackagesOf(ctx context.Context, entity string) (*PackageList, error) {
	scope, isOrg := strings.CutPrefix(entity, "@")
	out := &PackageList{Entity: entity, Source: "user", Packages: map[string]string{}}
	path, query := "-/user/"+url.PathEscape(entity)+"/package", "maintainer:"+entity
	if isOrg {
		out.Source, path, query = "org", "-/org/"+url.PathEscape(scope)+"/package", "scope:"+scope
	}
	listing := map[string]string{}
	err := c.do(ctx, request{method: http.MethodGet, path: path}, &listing)
	if err == nil {
		for name, perm := range listing {
			out.Packages[name] = normalizePermission(perm)
		}
		return out, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	hits, err := c.searchAll(ctx, query)
	if err != nil {
		return nil, err
	}
	out.Source = "search"
	for _, h := range hits {
		if !isOrg && len(h.Package.Maintainers) > 0 && !hasMaintainer(h.Package.Maintainers, entity) {
			continue
		}
		if isOrg && !strings.HasPrefix(h.Package.Name, "@"+scope+"/") {
			continue
		}
		out.Packages[h.Package.Name] = "write"
	}
	return out, nil
}

func hasMaintainer(ms []SearchUser, user string) bool {
	for _, m := range ms {
		if m.Username == user {
			return true
		}
	}
	return false
}
