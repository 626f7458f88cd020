package sim

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure NewRegistry.
type Options struct {
	// Seed makes tokens, _rev values, trust ids, the signing key and the 429 draws reproducible.
	Seed uint64
	// Now is the clock for writes made over HTTP (publish, tokens, edits); time.Now when nil.
	Now func() time.Time
	// OTPCode is the one-time password every account's authenticator shows: "123456" when empty.
	// It is asked for on all writes once SetOTPRequired(true), and on publishes to packages whose
	// access requires 2FA.
	OTPCode string
	// TokensPerPage is the page size of GET /-/npm/v1/tokens when the client names none (20 when 0).
	TokensPerPage int
}

// Registry is a simulated npm registry. Seed it through the Go methods (no HTTP, no counters),
// then Start it or mount Handler. Every method is safe for concurrent use.
type Registry struct {
	traffic

	// URL is the base URL once started, with a trailing slash like the Verdaccio harness's
	// ("http://127.0.0.1:PORT/").
	URL string

	opts   Options
	signer *signer
	srv    *httptest.Server

	mu          sync.Mutex
	users       map[string]*user
	tokens      map[string]*token // by token value
	tokenSeq    uint64
	pkgs        map[string]*pkg
	orgs        map[string]bool
	otpRequired bool
}

type user struct{ name, email, password string }

type token struct {
	value, key, user string
	created          time.Time
	readonly         bool
	automation       bool
	session          bool // issued by a login: authenticates, absent from the token list, not revocable there
	revoked          bool
	cidr             []string
}

type person struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// pkg is one package's state. Manifests are kept as decoded JSON so a publish over HTTP keeps
// every field the client sent.
type pkg struct {
	name         string
	revN         int
	versions     map[string]map[string]any
	distTags     map[string]string
	times        map[string]time.Time // "created", "modified" and one per version (kept after unpublish)
	maintainers  []person
	tarballs     map[string][]byte // by file name
	access       AccessState
	trust        []TrustConfig
	attestations map[string][]any // by version
	description  string
}

// AccessState is what POST /-/package/<pkg>/access last set. The registry has no route to read it
// back that apis.md lists, so tests read it with Registry.Access.
type AccessState struct {
	PublishRequiresTFA          bool `json:"publish_requires_tfa"`
	AutomationTokenOverridesTFA bool `json:"automation_token_overrides_tfa"`
}

// TrustConfig is a trusted-publisher (OIDC) configuration, in the shape npm's
// GET /-/package/<pkg>/trust answers: {id, type, claims}.
type TrustConfig struct {
	ID     string         `json:"id"`
	Type   string         `json:"type"` // "github", "gitlab", ...
	Claims map[string]any `json:"claims"`
}

// GitHubTrust is a GitHub Actions trust configuration as `npm trust github` creates it.
func GitHubTrust(repository, workflowFile, environment string) TrustConfig {
	claims := map[string]any{"repository": repository, "workflow_ref": map[string]any{"file": workflowFile}}
	if environment != "" {
		claims["environment"] = environment
	}
	return TrustConfig{Type: "github", Claims: claims}
}

// TrustedPublisher marks a version as published by GitHub Actions through OIDC.
type TrustedPublisher struct {
	Repository string // owner/repo
	Workflow   string // workflow file name
}

// Version is one version to seed with Publish.
type Version struct {
	Name     string
	Version  string
	Manifest map[string]any    // package.json fields besides name and version (scripts, dependencies, ...)
	Files    map[string][]byte // files besides package.json, by path inside the package
	Tag      string            // dist-tag to point at it; "latest" when empty (latest is also set when missing)
	// Publisher is the account that publishes: it must exist and, for an existing package, be a
	// maintainer; a new package gets it as its first owner.
	Publisher string
	// TrustedPublisher, when set, makes this an OIDC publish from GitHub Actions: _npmUser is
	// "GitHub Actions" and provenance is recorded. Publisher still names the owner of a new package.
	TrustedPublisher *TrustedPublisher
	Time             time.Time // publish time; Options.Now() when zero
}

// TokenOptions describe a token seeded with AddToken.
type TokenOptions struct {
	ReadOnly   bool
	Automation bool // bypasses 2FA on publish unless the package's access says otherwise
	CIDR       []string
	Created    time.Time // Options.Now() when zero
}

// NewRegistry returns an empty registry.
func NewRegistry(o Options) *Registry {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OTPCode == "" {
		o.OTPCode = "123456"
	}
	if o.TokensPerPage <= 0 {
		o.TokensPerPage = 20
	}
	return &Registry{
		traffic: newTraffic(o.Seed),
		opts:    o,
		signer:  newSigner(o.Seed),
		users:   map[string]*user{},
		tokens:  map[string]*token{},
		pkgs:    map[string]*pkg{},
		orgs:    map[string]bool{},
	}
}

// Start serves the registry on a new 127.0.0.1 port and sets URL.
func (r *Registry) Start() *Registry {
	r.srv = httptest.NewServer(r)
	r.URL = r.srv.URL + "/"
	return r
}

// Close stops the server started by Start.
func (r *Registry) Close() {
	if r.srv != nil {
		r.srv.Close()
	}
}

// Handler is the registry as an http.Handler, for serving it on a listener of one's own
// (`npmir rehearse`).
func (r *Registry) Handler() http.Handler { return r }

// OTPCode is the one-time password the simulated authenticator shows.
func (r *Registry) OTPCode() string { return r.opts.OTPCode }

// SetOTPRequired turns the OTP challenge on every write on or off (an account with 2FA for
// "auth-and-writes").
func (r *Registry) SetOTPRequired(on bool) {
	r.mu.Lock()
	r.otpRequired = on
	r.mu.Unlock()
}

// AddUser creates an account (password "<name>-password") and returns a fresh publish token for it.
func (r *Registry) AddUser(name, email string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addUserLocked(name, email)
	return r.newTokenLocked(name, TokenOptions{}).value
}

func (r *Registry) addUserLocked(name, email string) {
	if _, ok := r.users[name]; !ok {
		r.users[name] = &user{name: name, email: email, password: name + "-password"}
	}
}

// SetPassword changes an account's password (POST /-/npm/v1/tokens checks it).
func (r *Registry) SetPassword(name, password string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.users[name]
	if !ok {
		return fmt.Errorf("sim: no user %q", name)
	}
	u.password = password
	return nil
}

// AddToken issues a listed token to an existing user and returns it with its key.
func (r *Registry) AddToken(name string, o TokenOptions) (tok, key string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.users[name]; !ok {
		return "", "", fmt.Errorf("sim: no user %q", name)
	}
	t := r.newTokenLocked(name, o)
	return t.value, t.key, nil
}

// AddSessionToken issues the token a login (`npm login`) returns: it authenticates like any
// other, but GET /-/npm/v1/tokens does not list it and no route here revokes it, the seed
// article's "session token" case. Revoke it in Go with RevokeSession (the user logging out).
func (r *Registry) AddSessionToken(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.users[name]; !ok {
		return "", fmt.Errorf("sim: no user %q", name)
	}
	t := r.newTokenLocked(name, TokenOptions{})
	t.session = true
	return t.value, nil
}

// RevokeSession ends a login session (what `npm logout` or a password reset does).
func (r *Registry) RevokeSession(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tokens[tok]; ok {
		t.revoked = true
	}
}

// TokenActive reports whether tok still authenticates.
func (r *Registry) TokenActive(tok string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tokens[tok]
	return ok && !t.revoked
}

func (r *Registry) newTokenLocked(name string, o TokenOptions) *token {
	r.tokenSeq++
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	b.WriteString("npm_")
	for i := range 36 {
		b.WriteByte(alphabet[mix64(r.opts.Seed^0x5ca1ab1e, r.tokenSeq*64+uint64(i))%uint64(len(alphabet))])
	}
	value := b.String()
	sum := sha512.Sum512([]byte(value))
	created := o.Created
	if created.IsZero() {
		created = r.opts.Now()
	}
	t := &token{value: value, key: hex.EncodeToString(sum[:]), user: name, created: created.UTC(),
		readonly: o.ReadOnly, automation: o.Automation, cidr: slices.Clone(o.CIDR)}
	r.tokens[value] = t
	return t
}

// AddOrg registers an npm organisation (scope, without "@"), so GET /-/org/<scope>/package
// lists its @scope/ packages.
func (r *Registry) AddOrg(scope string) {
	r.mu.Lock()
	r.orgs[strings.TrimPrefix(scope, "@")] = true
	r.mu.Unlock()
}

// Publish seeds one version, as `npm publish` would have at v.Time.
func (r *Registry) Publish(v Version) error {
	files := map[string][]byte{}
	maps.Copy(files, v.Files)
	man := map[string]any{}
	maps.Copy(man, v.Manifest)
	man["name"], man["version"] = v.Name, v.Version
	pj, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fmt.Errorf("sim: manifest of %s@%s: %w", v.Name, v.Version, err)
	}
	files["package.json"] = append(pj, '\n')
	tgz := packTarball(files)
	at := v.Time
	if at.IsZero() {
		at = r.opts.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.users[v.Publisher]
	if !ok {
		return fmt.Errorf("sim: publish %s@%s: no user %q", v.Name, v.Version, v.Publisher)
	}
	if st, msg := r.publishLocked(v.Name, man, tgz, v.Tag, u, v.TrustedPublisher, at); st != http.StatusOK {
		return fmt.Errorf("sim: publish %s@%s: %d %s", v.Name, v.Version, st, msg)
	}
	return nil
}

// publishLocked adds one version. It returns an HTTP status and, on refusal, the message.
func (r *Registry) publishLocked(name string, man map[string]any, tgz []byte, tag string, u *user, tp *TrustedPublisher, at time.Time) (int, string) {
	version, _ := man["version"].(string)
	if name == "" || version == "" {
		return http.StatusBadRequest, "name and version are required"
	}
	p, exists := r.pkgs[name]
	if exists && !p.isMaintainer(u.name) {
		return http.StatusForbidden, fmt.Sprintf("You do not have permission to publish %q. Are you logged in as the correct user?", name)
	}
	if exists {
		if _, ok := p.times[version]; ok {
			return http.StatusForbidden, fmt.Sprintf("You cannot publish over the previously published versions: %s.", version)
		}
	}
	if tp != nil && !exists {
		return http.StatusBadRequest, "a trusted publisher can only publish an existing package"
	}
	at = at.UTC()
	if !exists {
		p = &pkg{name: name, versions: map[string]map[string]any{}, distTags: map[string]string{},
			times: map[string]time.Time{"created": at}, maintainers: []person{{Name: u.name, Email: u.email}},
			tarballs: map[string][]byte{}, attestations: map[string][]any{}}
		r.pkgs[name] = p
	}
	sri, shasum := integrity(tgz)
	file := tarballFile(name, version)
	npmUser := map[string]any{"name": u.name, "email": u.email}
	dist := map[string]any{
		"integrity": sri, "shasum": shasum, "tarball": tarballPath(name, file),
		"fileCount": 1, "unpackedSize": len(tgz),
		"signatures": []any{map[string]any{"keyid": r.signer.keyID, "sig": r.signer.sign(name, version, sri)}},
	}
	if tp != nil {
		npmUser = map[string]any{"name": "GitHub Actions", "email": "npm-oidc-no-reply@github.com",
			"trustedPublisher": map[string]any{"id": "github", "oidcConfigId": r.trustIDLocked(p, tp)}}
		dist["attestations"] = map[string]any{
			"url":        attestationsPath(name, version),
			"provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"},
		}
		p.attestations[version] = provenance(name, version, sri, tp)
	}
	out := map[string]any{}
	maps.Copy(out, man)
	out["_id"] = name + "@" + version
	out["_npmUser"] = npmUser
	out["_npmVersion"] = "10.9.2"
	out["_nodeVersion"] = "20.19.0"
	out["maintainers"] = slices.Clone(p.maintainers)
	out["dist"] = dist
	delete(out, "_attachments")
	p.versions[version] = out
	p.tarballs[file] = tgz
	p.times[version] = at
	if d, ok := man["description"].(string); ok {
		p.description = d
	}
	if tag == "" {
		tag = "latest"
	}
	p.distTags[tag] = version
	if _, ok := p.distTags["latest"]; !ok {
		p.distTags["latest"] = version
	}
	p.touch(at)
	return http.StatusOK, ""
}

// trustIDLocked finds the trust configuration a trusted publish went through, creating it when
// the seed did not (a trusted publish needs one).
func (r *Registry) trustIDLocked(p *pkg, tp *TrustedPublisher) string {
	for _, c := range p.trust {
		if c.Type == "github" && c.Claims["repository"] == tp.Repository {
			return c.ID
		}
	}
	c := GitHubTrust(tp.Repository, tp.Workflow, "")
	c.ID = r.newTrustID(p)
	p.trust = append(p.trust, c)
	return c.ID
}

func (r *Registry) newTrustID(p *pkg) string {
	x := mix64(r.opts.Seed^0x7e57, uint64(len(p.trust))+uint64(len(p.name))*1000003+hashString(p.name))
	y := mix64(x, 1)
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(x>>32), uint16(x>>16), uint16(x)&0xfff, uint16(y>>48)&0xfff, y&0xffffffffffff)
}

func hashString(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// provenance is a stand-in for the sigstore bundles npm serves: the shape (predicateType,
// bundle.dsseEnvelope with an in-toto statement naming the source repository) is real, the
// signatures are not, and nothing here claims they verify.
func provenance(name, version, sri string, tp *TrustedPublisher) []any {
	digest, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sri, "sha512-"))
	stmt := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "pkg:npm/" + strings.Replace(name, "@", "%40", 1) + "@" + version, "digest": map[string]any{"sha512": hex.EncodeToString(digest)}}},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": map[string]any{"buildDefinition": map[string]any{
			"buildType":          "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
			"externalParameters": map[string]any{"workflow": map[string]any{"repository": "https://github.com/" + tp.Repository, "path": ".github/workflows/" + tp.Workflow}},
		}},
	}
	payload, _ := json.Marshal(stmt)
	return []any{map[string]any{
		"predicateType": "https://slsa.dev/provenance/v1",
		"bundle": map[string]any{
			"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
			"dsseEnvelope": map[string]any{
				"payload":     base64.StdEncoding.EncodeToString(payload),
				"payloadType": "application/vnd.in-toto+json",
				"signatures":  []any{map[string]any{"sig": "c2ltdWxhdGVk", "keyid": ""}},
			},
		},
	}}
}

// AddOwner makes an existing user an owner of an existing package.
func (r *Registry) AddOwner(pkgName, userName string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pkgs[pkgName]
	if !ok {
		return fmt.Errorf("sim: no package %q", pkgName)
	}
	u, ok := r.users[userName]
	if !ok {
		return fmt.Errorf("sim: no user %q", userName)
	}
	if !p.isMaintainer(userName) {
		p.maintainers = append(p.maintainers, person{Name: u.name, Email: u.email})
		p.touch(p.times["modified"])
	}
	return nil
}

// AddTrust adds a trusted-publisher configuration to a package and returns its id.
func (r *Registry) AddTrust(pkgName string, c TrustConfig) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pkgs[pkgName]
	if !ok {
		return "", fmt.Errorf("sim: no package %q", pkgName)
	}
	if c.ID == "" {
		c.ID = r.newTrustID(p)
	}
	c.Claims = maps.Clone(c.Claims)
	p.trust = append(p.trust, c)
	return c.ID, nil
}

// SetAccess sets a package's access state in Go (seeding a package that already requires 2FA).
func (r *Registry) SetAccess(pkgName string, a AccessState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pkgs[pkgName]
	if !ok {
		return fmt.Errorf("sim: no package %q", pkgName)
	}
	p.access = a
	return nil
}

// Owners returns a package's maintainers' names, in order (nil for an unknown package).
func (r *Registry) Owners(pkgName string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pkgs[pkgName]
	if !ok {
		return nil
	}
	var out []string
	for _, m := range p.maintainers {
		out = append(out, m.Name)
	}
	return out
}

// Access returns a package's access state.
func (r *Registry) Access(pkgName string) (AccessState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pkgs[pkgName]
	if !ok {
		return AccessState{}, false
	}
	return p.access, true
}

// DistTags returns a copy of a package's dist-tags.
func (r *Registry) DistTags(pkgName string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pkgs[pkgName]; ok {
		return maps.Clone(p.distTags)
	}
	return nil
}

// Deprecation returns a version's deprecation message ("" when none).
func (r *Registry) Deprecation(pkgName, version string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pkgs[pkgName]; ok {
		if m, ok := p.versions[version]; ok {
			s, _ := m["deprecated"].(string)
			return s
		}
	}
	return ""
}

// Versions returns a package's versions, sorted as strings.
func (r *Registry) Versions(pkgName string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pkgs[pkgName]; ok {
		return slices.Sorted(maps.Keys(p.versions))
	}
	return nil
}

// Trust returns a copy of a package's trust configurations.
func (r *Registry) Trust(pkgName string) []TrustConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pkgs[pkgName]; ok {
		return slices.Clone(p.trust)
	}
	return nil
}

// Packages returns every package name, sorted.
func (r *Registry) Packages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.pkgs))
}

func (p *pkg) isMaintainer(name string) bool {
	return slices.ContainsFunc(p.maintainers, func(m person) bool { return m.Name == name })
}

// touch records a change: a new _rev and time.modified.
func (p *pkg) touch(at time.Time) {
	p.revN++
	if at.After(p.times["modified"]) {
		p.times["modified"] = at.UTC()
	}
}

func (r *Registry) rev(p *pkg) string {
	return fmt.Sprintf("%d-%016x", p.revN, mix64(r.opts.Seed^hashString(p.name), uint64(p.revN)))
}

// tarballPath is the tarball's path below the registry root, as npmjs spells it: the scoped name
// keeps its slash unencoded.
func tarballPath(name, file string) string { return name + "/-/" + file }

func attestationsPath(name, version string) string {
	return "-/npm/v1/attestations/" + escapeName(name) + "@" + version
}

// escapeName encodes a package name for a path the way the npm client does (@scope%2fname).
func escapeName(name string) string {
	if strings.HasPrefix(name, "@") {
		return strings.Replace(name, "/", "%2f", 1)
	}
	return name
}
