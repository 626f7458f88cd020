package npmreg

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// TrustConfig is a trusted-publisher (OIDC) configuration: which CI workflow may publish the
// package without a token. Claims differ per provider; the accessors read GitHub's and GitLab's.
type TrustConfig struct {
	ID     string          `json:"id"`
	Type   string          `json:"type"` // "github", "gitlab", ...
	Claims json.RawMessage `json:"claims"`
}

type trustClaims struct {
	Repository  string `json:"repository"`   // github
	ProjectPath string `json:"project_path"` // gitlab
	Environment string `json:"environment"`
	WorkflowRef struct {
		File string `json:"file"`
	} `json:"workflow_ref"` // github
	CIConfigRefURI struct {
		File string `json:"file"`
	} `json:"ci_config_ref_uri"` // gitlab
}

func (t TrustConfig) claims() trustClaims {
	var c trustClaims
	_ = json.Unmarshal(t.Claims, &c)
	return c
}

// Repository is the repository (GitHub owner/repo) or project path (GitLab) allowed to publish.
func (t TrustConfig) Repository() string {
	c := t.claims()
	if c.Repository != "" {
		return c.Repository
	}
	return c.ProjectPath
}

// File is the workflow (GitHub) or pipeline file (GitLab) allowed to publish.
func (t TrustConfig) File() string {
	c := t.claims()
	if c.WorkflowRef.File != "" {
		return c.WorkflowRef.File
	}
	return c.CIConfigRefURI.File
}

// Environment is the CI environment the publish must run in ("" when any).
func (t TrustConfig) Environment() string { return t.claims().Environment }

// TrustConfigs lists a package's trusted-publisher configurations. The npm client wraps this read
// in its OTP retry, so it is sent as a write would be (with the OTP when one is set).
// Route: GET /-/package/<pkg>/trust. Verdaccio 6.8 does not serve it.
func (c *Client) TrustConfigs(ctx context.Context, pkg string) ([]TrustConfig, error) {
	var out []TrustConfig
	if err := c.do(ctx, request{method: http.MethodGet, path: "-/package/" + PathEscape(pkg) + "/trust", write: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteTrust removes one trusted-publisher configuration; an id the registry does not know
// (404) is taken as already removed: changed=false.
// Route: DELETE /-/package/<pkg>/trust/<id>.
func (c *Client) DeleteTrust(ctx context.Context, pkg, id string) (changed bool, err error) {
	if id == "" {
		return false, errors.New("delete trust configuration: empty id")
	}
	err = c.do(ctx, request{method: http.MethodDelete, path: "-/package/" + PathEscape(pkg) + "/trust/" + url.PathEscape(id), write: true}, nil)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Attestation is one provenance or publish attestation of a version.
type Attestation struct {
	PredicateType string          `json:"predicateType"`
	Bundle        json.RawMessage `json:"bundle"` // sigstore bundle, kept whole for evidence
}

// Attestations reads a version's attestations. errors.Is(err, ErrNotFound) means the version has
// none (or the registry does not serve the route: Verdaccio 6.8 does not).
// Route: GET /-/npm/v1/attestations/<pkg>@<version>.
func (c *Client) Attestations(ctx context.Context, pkg, version string) ([]Attestation, error) {
	var out struct {
		Attestations []Attestation `json:"attestations"`
	}
	path := "-/npm/v1/attestations/" + PathEscape(pkg) + "@" + url.PathEscape(version)
	if err := c.do(ctx, request{method: http.MethodGet, path: path}, &out); err != nil {
		return nil, err
	}
	return out.Attestations, nil
}
