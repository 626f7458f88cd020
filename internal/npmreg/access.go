package npmreg

import (
	"context"
	"net/http"
)

// AccessSettings is the body of POST /-/package/<pkg>/access, what `npm access set mfa=...` sends.
type AccessSettings struct {
	PublishRequiresTFA          bool `json:"publish_requires_tfa"`
	AutomationTokenOverridesTFA bool `json:"automation_token_overrides_tfa"`
}

// MFAPublish is `npm access set mfa=publish`: publishing needs a second factor and no token can
// bypass it, so a stolen token alone cannot publish.
var MFAPublish = AccessSettings{PublishRequiresTFA: true, AutomationTokenOverridesTFA: false}

// SetAccess sets a package's publishing requirements. Setting what is already set is harmless,
// which is what makes the op idempotent: the registry offers no route (in apis.md) to read the
// state back, so a check can only re-apply it.
// Route: POST /-/package/<pkg>/access. Verdaccio 6.8 does not serve it.
func (c *Client) SetAccess(ctx context.Context, pkg string, s AccessSettings) error {
	return c.do(ctx, request{method: http.MethodPost, path: "-/package/" + PathEscape(pkg) + "/access", body: s, write: true}, nil)
}

// Collaborators maps each account with access to pkg to "write" or "read". The registry answers
// "write"/"read" (libnpmaccess) or, per apis.md, "read-write"/"read-only"; both are normalised.
// Route: GET /-/package/<pkg>/collaborators. Verdaccio 6.8 does not serve it.
func (c *Client) Collaborators(ctx context.Context, pkg string) (map[string]string, error) {
	raw := map[string]string{}
	if err := c.do(ctx, request{method: http.MethodGet, path: "-/package/" + PathEscape(pkg) + "/collaborators"}, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for user, perm := range raw {
		out[user] = normalizePermission(perm)
	}
	return out, nil
}

func normalizePermission(p string) string {
	switch p {
	case "write", "read-write":
		return "write"
	case "read", "read-only":
		return "read"
	}
	return p
}
