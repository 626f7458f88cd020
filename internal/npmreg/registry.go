package npmreg

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Packument reads the full packument. write=true adds `?write=true`, which bypasses caches and
// returns the document with `_rev` ready to be edited and PUT back.
func (c *Client) Packument(ctx context.Context, name string, write bool) (*Packument, error) {
	var p Packument
	if err := c.do(ctx, c.packumentRequest(name, write), &p); err != nil {
		return nil, err
	}
	if p.Name == "" {
		p.Name = name
	}
	return &p, nil
}

func (c *Client) packumentRequest(name string, write bool) request {
	r := request{method: http.MethodGet, path: PathEscape(name)}
	if write {
		r.query = url.Values{"write": {"true"}}
	}
	return r
}

// rawPackument reads the write view of the packument as raw JSON fields so a PUT back keeps
// every field the registry sent, including ones npmir does not model.
func (c *Client) rawPackument(ctx context.Context, name string) (map[string]json.RawMessage, error) {
	var raw map[string]json.RawMessage
	if err := c.do(ctx, c.packumentRequest(name, true), &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// DistTags reads a package's dist-tags.
func (c *Client) DistTags(ctx context.Context, name string) (map[string]string, error) {
	tags := map[string]string{}
	err := c.do(ctx, request{method: http.MethodGet, path: "-/package/" + PathEscape(name) + "/dist-tags"}, &tags)
	return tags, err
}

// SetDistTag points tag at version (adding or moving it).
func (c *Client) SetDistTag(ctx context.Context, name, tag, version string) error {
	return c.do(ctx, request{method: http.MethodPut, path: "-/package/" + PathEscape(name) + "/dist-tags/" + url.PathEscape(tag), body: version, write: true}, nil)
}

// DeleteDistTag removes tag (npmjs refuses to remove latest).
func (c *Client) DeleteDistTag(ctx context.Context, name, tag string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "-/package/" + PathEscape(name) + "/dist-tags/" + url.PathEscape(tag), write: true}, nil)
}

// Deprecate sets the deprecation message of version (an empty message undeprecates) the way the
// npm client does: GET ?write=true, edit versions[v].deprecated, PUT the whole document back with
// its _rev. It reports whether anything changed; a version already carrying msg is left alone.
// A 409 (someone else wrote in between) is retried on a fresh read.
func (c *Client) Deprecate(ctx context.Context, name, version, msg string) (changed bool, err error) {
	for attempt := 0; ; attempt++ {
		changed, err = c.deprecateOnce(ctx, name, version, msg)
		if err == nil || attempt >= 3 || !isConflict(err) {
			return changed, err
		}
	}
}

func isConflict(err error) bool {
	he, ok := err.(*HTTPError)
	return ok && he.Status == http.StatusConflict
}

func (c *Client) deprecateOnce(ctx context.Context, name, version, msg string) (bool, error) {
	raw, err := c.rawPackument(ctx, name)
	if err != nil {
		return false, err
	}
	var versions map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw["versions"], &versions); err != nil {
		return false, fmt.Errorf("packument of %s: versions: %w", name, err)
	}
	man, ok := versions[version]
	if !ok {
		return false, &HTTPError{Method: http.MethodGet, URL: c.url(PathEscape(name), nil), Status: http.StatusNotFound, Body: fmt.Sprintf("version %s is not in the packument", version)}
	}
	var cur string
	if d, ok := man["deprecated"]; ok {
		_ = json.Unmarshal(d, &cur)
	}
	if cur == msg {
		return false, nil
	}
	enc, _ := json.Marshal(msg)
	man["deprecated"] = enc
	if raw["versions"], err = json.Marshal(versions); err != nil {
		return false, err
	}
	if err := c.do(ctx, request{method: http.MethodPut, path: PathEscape(name), body: raw, write: true}, nil); err != nil {
		return false, err
	}
	return true, nil
}

// Whoami returns the user name the token authenticates as. token overrides the client's own
// token when non-empty (used to prove a revoked token is refused).
func (c *Client) Whoami(ctx context.Context, token string) (string, error) {
	var out struct {
		Username string `json:"username"`
	}
	r := request{method: http.MethodGet, path: "-/whoami"}
	if token != "" {
		r.token = &token
	}
	err := c.do(ctx, r, &out)
	return out.Username, err
}

// Tarball opens a version's tarball. The token is sent only when the tarball lives on the
// registry's own host and scheme: a packument can point anywhere, and a token must not follow it
// (nor go out over plain http because a packument said so). Like every
// read, it is retried on 429, 5xx and connection errors.
func (c *Client) Tarball(ctx context.Context, tarballURL string) (io.ReadCloser, error) {
	u, err := url.Parse(tarballURL)
	if err != nil {
		return nil, fmt.Errorf("tarball URL %q: %w", tarballURL, err)
	}
	if !u.IsAbs() {
		u = c.base.ResolveReference(u)
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", c.UserAgent)
		if c.token != "" && u.Host == c.base.Host && u.Scheme == c.base.Scheme {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.OnRequest != nil {
			c.OnRequest(http.MethodGet, u.EscapedPath())
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() == nil && attempt < c.Retries {
				if serr := c.sleep(ctx, c.backoff(attempt, 0)); serr != nil {
					return nil, serr
				}
				continue
			}
			return nil, &NetError{Method: http.MethodGet, URL: u.Redacted(), Err: fmt.Errorf("%s", c.Redact(err.Error()))}
		}
		if resp.StatusCode == http.StatusOK {
			return resp.Body, nil
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) && attempt < c.Retries {
			if serr := c.sleep(ctx, c.backoff(attempt, retryAfter(resp))); serr != nil {
				return nil, serr
			}
			continue
		}
		return nil, &HTTPError{Method: http.MethodGet, URL: u.Redacted(), Status: resp.StatusCode, Body: snippet(c.Redact(string(b)))}
	}
}

// RawPackument returns the packument exactly as the registry sent it (`?write=true`, uncached),
// for evidence that must be byte-faithful.
func (c *Client) RawPackument(ctx context.Context, name string) ([]byte, error) {
	var raw json.RawMessage
	if err := c.do(ctx, c.packumentRequest(name, true), &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// PackumentURL is where the packument of name is read from (for evidence manifests).
func (c *Client) PackumentURL(name string) string { return c.url(PathEscape(name), nil) }
