package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// caller is who sent a request: nil token for anonymous reads.
type caller struct {
	tok     *token
	user    *user
	otp     string
	changed *bool // set by handlers whose request changed the registry (Stats.Changed)
}

func (c caller) mark() {
	if c.changed != nil {
		*c.changed = true
	}
}

type handlerFunc func(w http.ResponseWriter, req *http.Request, c caller)

// ServeHTTP routes a request through the modes (latency, faults, 429, authentication, OTP) to its
// handler.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	template, h := r.route(req)
	r.traffic.serve(w, req, template, func(w http.ResponseWriter, req *http.Request) outcome {
		c, ok := r.authenticate(w, req)
		if !ok {
			return outcome{}
		}
		out := outcome{}
		c.changed = &out.changed
		if c.user != nil {
			out.user = c.user.name
		}
		if isMutation(req.Method) && c.tok != nil {
			if c.tok.readonly {
				writeError(w, http.StatusForbidden, "this token is read-only: it cannot write")
				return out
			}
			r.mu.Lock()
			need := r.otpRequired
			r.mu.Unlock()
			if need && c.otp != r.opts.OTPCode {
				r.challenge(w, c.otp)
				return out
			}
		}
		h(w, req, c)
		return out
	})
}

// authenticate maps the bearer token to a user. A token that is unknown or revoked is refused
// on every route, reads included, as registry.npmjs.org does.
func (r *Registry) authenticate(w http.ResponseWriter, req *http.Request) (caller, bool) {
	c := caller{otp: req.Header.Get("npm-otp")}
	h := req.Header.Get("Authorization")
	if h == "" {
		return c, true
	}
	value, ok := strings.CutPrefix(h, "Bearer ")
	r.mu.Lock()
	t := r.tokens[strings.TrimSpace(value)]
	if ok && t != nil && !t.revoked {
		c.tok, c.user = t, r.users[t.user]
	}
	r.mu.Unlock()
	if c.tok == nil {
		writeError(w, http.StatusUnauthorized, "Unable to authenticate: the token is invalid, expired or revoked")
		return c, false
	}
	return c, true
}

// challenge answers the way npmjs asks for a one-time password: 401 with `WWW-Authenticate: OTP`.
func (r *Registry) challenge(w http.ResponseWriter, given string) {
	w.Header().Set("WWW-Authenticate", "OTP")
	msg := "This operation requires a one-time password from your authenticator."
	if given != "" {
		msg = "Invalid one-time password."
	}
	writeError(w, http.StatusUnauthorized, msg)
}

// route finds the handler and the route template (used by counters and fault hooks).
func (r *Registry) route(req *http.Request) (string, handlerFunc) {
	raw := strings.Split(strings.TrimPrefix(req.URL.EscapedPath(), "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return "unknown", notFound
		}
		segs[i] = u
	}
	m := req.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	if len(segs) >= 2 && segs[0] == "-" {
		return r.routeDash(m, segs[1:])
	}
	name, rest := packageName(segs)
	if name == "" {
		return "unknown", notFound
	}
	switch {
	case len(rest) == 0 && m == http.MethodGet:
		return "GET /<pkg>", func(w http.ResponseWriter, req *http.Request, c caller) { r.getPackument(w, req, name) }
	case len(rest) == 0 && m == http.MethodPut:
		return "PUT /<pkg>", func(w http.ResponseWriter, req *http.Request, c caller) { r.putPackage(w, req, c, name, "") }
	case len(rest) == 2 && rest[0] == "-rev" && m == http.MethodPut:
		return "PUT /<pkg>/-rev/<rev>", func(w http.ResponseWriter, req *http.Request, c caller) { r.putPackage(w, req, c, name, rest[1]) }
	case len(rest) == 2 && rest[0] == "-" && m == http.MethodGet:
		return "GET /<pkg>/-/<file>", func(w http.ResponseWriter, req *http.Request, c caller) { r.getTarball(w, name, rest[1]) }
	case len(rest) == 4 && rest[0] == "-" && rest[2] == "-rev" && m == http.MethodDelete:
		return "DELETE /<pkg>/-/<file>/-rev/<rev>", func(w http.ResponseWriter, req *http.Request, c caller) {
			r.deleteTarball(w, c, name, rest[1], rest[3])
		}
	}
	return "unknown", notFound
}

// routeDash routes /-/... paths (segs without the leading "-").
func (r *Registry) routeDash(m string, segs []string) (string, handlerFunc) {
	at := func(i int) string {
		if i < len(segs) {
			return segs[i]
		}
		return ""
	}
	switch {
	case len(segs) == 1 && segs[0] == "whoami" && m == http.MethodGet:
		return "GET /-/whoami", r.whoami
	case at(0) == "user" && len(segs) == 2 && strings.HasPrefix(segs[1], "org.couchdb.user:") && m == http.MethodGet:
		name := strings.TrimPrefix(segs[1], "org.couchdb.user:")
		return "GET /-/user/org.couchdb.user:<user>", func(w http.ResponseWriter, req *http.Request, c caller) { r.getUser(w, name) }
	case at(0) == "user" && len(segs) == 3 && segs[2] == "package" && m == http.MethodGet:
		return "GET /-/user/<user>/package", func(w http.ResponseWriter, req *http.Request, c caller) { r.userPackages(w, segs[1]) }
	case at(0) == "org" && len(segs) == 3 && segs[2] == "package" && m == http.MethodGet:
		return "GET /-/org/<scope>/package", func(w http.ResponseWriter, req *http.Request, c caller) { r.orgPackages(w, segs[1]) }
	case at(0) == "v1" && at(1) == "search" && len(segs) == 2 && m == http.MethodGet:
		return "GET /-/v1/search", r.search
	case at(0) == "npm" && at(1) == "v1":
		return r.routeNpmV1(m, segs[2:])
	case at(0) == "package":
		name, rest := packageName(segs[1:])
		if name == "" {
			break
		}
		return r.routePackageAPI(m, name, rest)
	}
	return "unknown", notFound
}

func (r *Registry) routeNpmV1(m string, segs []string) (string, handlerFunc) {
	switch {
	case len(segs) == 1 && segs[0] == "tokens" && m == http.MethodGet:
		return "GET /-/npm/v1/tokens", r.listTokens
	case len(segs) == 1 && segs[0] == "tokens" && m == http.MethodPost:
		return "POST /-/npm/v1/tokens", r.createToken
	case len(segs) == 3 && segs[0] == "tokens" && segs[1] == "token" && m == http.MethodDelete:
		return "DELETE /-/npm/v1/tokens/token/<key>", func(w http.ResponseWriter, req *http.Request, c caller) { r.revokeToken(w, c, segs[2]) }
	case len(segs) == 1 && segs[0] == "keys" && m == http.MethodGet:
		return "GET /-/npm/v1/keys", r.keys
	case len(segs) >= 2 && segs[0] == "attestations" && m == http.MethodGet:
		spec := strings.Join(segs[1:], "/") // a scoped spec may arrive as @scope/name@1.0.0
		return "GET /-/npm/v1/attestations/<pkg>@<version>", func(w http.ResponseWriter, req *http.Request, c caller) { r.attestations(w, spec) }
	}
	return "unknown", notFound
}

func (r *Registry) routePackageAPI(m, name string, rest []string) (string, handlerFunc) {
	at := func(i int) string {
		if i < len(rest) {
			return rest[i]
		}
		return ""
	}
	switch {
	case len(rest) == 1 && rest[0] == "dist-tags" && m == http.MethodGet:
		return "GET /-/package/<pkg>/dist-tags", func(w http.ResponseWriter, req *http.Request, c caller) { r.getDistTags(w, name) }
	case len(rest) == 2 && rest[0] == "dist-tags" && m == http.MethodPut:
		return "PUT /-/package/<pkg>/dist-tags/<tag>", func(w http.ResponseWriter, req *http.Request, c caller) { r.putDistTag(w, req, c, name, rest[1]) }
	case len(rest) == 2 && rest[0] == "dist-tags" && m == http.MethodDelete:
		return "DELETE /-/package/<pkg>/dist-tags/<tag>", func(w http.ResponseWriter, req *http.Request, c caller) { r.deleteDistTag(w, c, name, rest[1]) }
	case len(rest) == 1 && rest[0] == "access" && m == http.MethodPost:
		return "POST /-/package/<pkg>/access", func(w http.ResponseWriter, req *http.Request, c caller) { r.setAccess(w, req, c, name) }
	case len(rest) == 1 && rest[0] == "collaborators" && m == http.MethodGet:
		return "GET /-/package/<pkg>/collaborators", func(w http.ResponseWriter, req *http.Request, c caller) { r.collaborators(w, name) }
	case len(rest) == 1 && rest[0] == "trust" && m == http.MethodGet:
		return "GET /-/package/<pkg>/trust", func(w http.ResponseWriter, req *http.Request, c caller) { r.listTrust(w, c, name) }
	case len(rest) == 2 && at(0) == "trust" && m == http.MethodDelete:
		return "DELETE /-/package/<pkg>/trust/<id>", func(w http.ResponseWriter, req *http.Request, c caller) { r.deleteTrust(w, c, name, rest[1]) }
	}
	return "unknown", notFound
}

// packageName reads a package name from the front of decoded path segments: "@scope/name" may
// arrive as one segment (the npm client's @scope%2fname) or as two.
func packageName(segs []string) (string, []string) {
	if len(segs) == 0 || segs[0] == "" {
		return "", nil
	}
	first := segs[0]
	if !strings.HasPrefix(first, "@") {
		if strings.Contains(first, "/") {
			return "", nil
		}
		return first, segs[1:]
	}
	if strings.Count(first, "/") == 1 {
		return first, segs[1:]
	}
	if len(segs) < 2 || segs[1] == "" || strings.Contains(first, "/") {
		return "", nil
	}
	return first + "/" + segs[1], segs[2:]
}

func notFound(w http.ResponseWriter, _ *http.Request, _ caller) {
	writeError(w, http.StatusNotFound, "Not found")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func baseURL(req *http.Request) string {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + req.Host + "/"
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// requireMaintainer answers 401/403 and returns nil unless c may write p.
func (r *Registry) requireMaintainer(w http.ResponseWriter, c caller, name string) *pkg {
	if c.user == nil {
		writeError(w, http.StatusUnauthorized, "You must be logged in to write to "+name)
		return nil
	}
	p, ok := r.pkgs[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return nil
	}
	if !p.isMaintainer(c.user.name) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("You do not have permission to publish %q. Are you logged in as the correct user?", name))
		return nil
	}
	return p
}

// ---- packuments, publish, edits, tarballs

func (r *Registry) renderLocked(p *pkg, base string) map[string]any {
	versions := make(map[string]any, len(p.versions))
	for v, m := range p.versions {
		out := maps.Clone(m)
		if d, ok := m["dist"].(map[string]any); ok {
			d = maps.Clone(d)
			if s, ok := d["tarball"].(string); ok && !strings.Contains(s, "://") {
				d["tarball"] = base + s
			}
			if a, ok := d["attestations"].(map[string]any); ok {
				a = maps.Clone(a)
				if s, ok := a["url"].(string); ok && !strings.Contains(s, "://") {
					a["url"] = base + s
				}
				d["attestations"] = a
			}
			out["dist"] = d
		}
		versions[v] = out
	}
	times := make(map[string]string, len(p.times))
	for k, t := range p.times {
		times[k] = stamp(t)
	}
	doc := map[string]any{
		"_id": p.name, "_rev": r.rev(p), "name": p.name,
		"dist-tags": maps.Clone(p.distTags), "versions": versions, "time": times,
		"maintainers": slices.Clone(p.maintainers),
	}
	if p.description != "" {
		doc["description"] = p.description
	}
	return doc
}

// getPackument serves the full document. ?write=true gets the same answer: the simulator has no
// cache to bypass, and always includes _rev.
func (r *Registry) getPackument(w http.ResponseWriter, req *http.Request, name string) {
	r.mu.Lock()
	p, ok := r.pkgs[name]
	var doc map[string]any
	if ok {
		doc = r.renderLocked(p, baseURL(req))
	}
	r.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// putPackage is a publish (the body carries _attachments) or an edit of the document (deprecate,
// owners, unpublish of a version), which must carry the current _rev: stale means 409.
func (r *Registry) putPackage(w http.ResponseWriter, req *http.Request, c caller, name, urlRev string) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 256<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "unreadable body")
		return
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		writeError(w, http.StatusBadRequest, "body is not a JSON object")
		return
	}
	if c.user == nil {
		writeError(w, http.StatusUnauthorized, "You must be logged in to publish packages.")
		return
	}
	var attachments map[string]struct {
		Data string `json:"data"`
	}
	_ = json.Unmarshal(doc["_attachments"], &attachments)
	if urlRev == "" && len(attachments) > 0 {
		r.publishHTTP(w, req, c, name, doc, attachments)
		return
	}
	rev := urlRev
	if rev == "" {
		_ = json.Unmarshal(doc["_rev"], &rev)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.requireMaintainer(w, c, name)
	if p == nil {
		return
	}
	if rev != r.rev(p) {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "conflict", "reason": "Document update conflict."})
		return
	}
	status, msg, changed := r.editLocked(p, doc)
	if status != http.StatusOK {
		writeJSON(w, status, map[string]string{"error": "forbidden", "reason": msg})
		return
	}
	if changed {
		c.mark()
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "id": name, "rev": r.rev(p)})
}

func (r *Registry) publishHTTP(w http.ResponseWriter, req *http.Request, c caller, name string, doc map[string]json.RawMessage, attachments map[string]struct {
	Data string `json:"data"`
}) {
	var versions map[string]map[string]any
	var tags map[string]string
	if err := json.Unmarshal(doc["versions"], &versions); err != nil || len(versions) != 1 {
		writeError(w, http.StatusBadRequest, "a publish carries exactly one version")
		return
	}
	_ = json.Unmarshal(doc["dist-tags"], &tags)
	var version string
	var man map[string]any
	for v, m := range versions {
		version, man = v, m
	}
	att, ok := attachments[tarballFile(name, version)]
	if !ok {
		writeError(w, http.StatusBadRequest, "no attachment named "+tarballFile(name, version))
		return
	}
	tgz, err := base64.StdEncoding.DecodeString(att.Data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "attachment is not base64")
		return
	}
	sri, shasum := integrity(tgz)
	if d, ok := man["dist"].(map[string]any); ok {
		if s, _ := d["shasum"].(string); s != "" && s != shasum {
			writeError(w, http.StatusBadRequest, "shasum does not match the attachment")
			return
		}
		if s, _ := d["integrity"].(string); s != "" && s != sri {
			writeError(w, http.StatusBadRequest, "integrity does not match the attachment")
			return
		}
	}
	man["name"], man["version"] = name, version
	tag := ""
	for t, v := range tags {
		if v == version {
			tag = t
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pkgs[name]; ok && p.access.PublishRequiresTFA && !(c.tok.automation && p.access.AutomationTokenOverridesTFA) && c.otp != r.opts.OTPCode {
		r.challenge(w, c.otp)
		return
	}
	if status, msg := r.publishLocked(name, man, tgz, tag, c.user, nil, r.opts.Now()); status != http.StatusOK {
		writeError(w, status, msg)
		return
	}
	c.mark()
	writeJSON(w, http.StatusOK, map[string]any{"success": true})
}

// editLocked applies an edit of the document: the deprecation of each listed version, the
// removal of versions no longer listed (unpublish) and a new maintainers list. Everything else in
// a published version is immutable on the registry, so other changes are ignored.
func (r *Registry) editLocked(p *pkg, doc map[string]json.RawMessage) (int, string, bool) {
	changed := false
	if raw, ok := doc["maintainers"]; ok {
		var ms []person
		if err := json.Unmarshal(raw, &ms); err != nil {
			return http.StatusBadRequest, "maintainers should be a list of owners", false
		}
		// Unconfirmed: npm/cli refuses to remove the last owner before sending (EOWNERRM), so
		// its source never shows the registry's own answer. The old registry couchapp answered
		// validation failures with 403 {"error":"forbidden"}; the simulator does the same.
		if len(ms) == 0 {
			return http.StatusForbidden, "Cannot remove all owners of a package. Add someone else first.", false
		}
		next := make([]person, 0, len(ms))
		for _, m := range ms {
			u, ok := r.users[m.Name]
			if !ok {
				return http.StatusNotFound, "no such user: " + m.Name, false
			}
			if !slices.ContainsFunc(next, func(x person) bool { return x.Name == u.name }) {
				next = append(next, person{Name: u.name, Email: u.email})
			}
		}
		if !slices.Equal(next, p.maintainers) {
			p.maintainers, changed = next, true
		}
	}
	if raw, ok := doc["versions"]; ok {
		var vs map[string]map[string]json.RawMessage
		if err := json.Unmarshal(raw, &vs); err != nil {
			return http.StatusBadRequest, "versions must be an object", false
		}
		for v := range vs {
			if _, ok := p.versions[v]; !ok {
				return http.StatusBadRequest, "cannot add version " + v + " without its tarball: publish it", false
			}
		}
		for v, m := range p.versions {
			nm, listed := vs[v]
			if !listed {
				delete(p.versions, v)
				for tag, tv := range p.distTags {
					if tv == v {
						delete(p.distTags, tag)
					}
				}
				changed = true
				continue
			}
			var msg string
			if d, ok := nm["deprecated"]; ok {
				_ = json.Unmarshal(d, &msg)
			}
			cur, _ := m["deprecated"].(string)
			if msg != cur {
				m = maps.Clone(m) // renders in flight hold the old map
				if msg == "" {
					delete(m, "deprecated")
				} else {
					m["deprecated"] = msg
				}
				p.versions[v] = m
				changed = true
			}
		}
		if _, ok := p.distTags["latest"]; !ok && len(p.versions) > 0 {
			p.distTags["latest"] = highest(slices.Collect(maps.Keys(p.versions)))
		}
	}
	if changed {
		p.touch(r.opts.Now())
	}
	return http.StatusOK, "", changed
}

func (r *Registry) getTarball(w http.ResponseWriter, name, file string) {
	r.mu.Lock()
	var tgz []byte
	if p, ok := r.pkgs[name]; ok {
		tgz = p.tarballs[file]
	}
	r.mu.Unlock()
	if tgz == nil {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(tgz)))
	_, _ = w.Write(tgz)
}

// deleteTarball is the last step of unpublishing a version (after the PUT without it).
func (r *Registry) deleteTarball(w http.ResponseWriter, c caller, name, file, rev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.requireMaintainer(w, c, name)
	if p == nil {
		return
	}
	if rev != r.rev(p) {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "conflict", "reason": "Document update conflict."})
		return
	}
	if _, ok := p.tarballs[file]; !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	delete(p.tarballs, file)
	p.touch(r.opts.Now())
	c.mark()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// ---- dist-tags

func (r *Registry) getDistTags(w http.ResponseWriter, name string) {
	r.mu.Lock()
	p, ok := r.pkgs[name]
	var tags map[string]string
	if ok {
		tags = maps.Clone(p.distTags)
	}
	r.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeJSON(w, http.StatusOK, tags)
}

func (r *Registry) putDistTag(w http.ResponseWriter, req *http.Request, c caller, name, tag string) {
	var version string
	if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&version); err != nil {
		writeError(w, http.StatusBadRequest, `body must be a JSON string: "1.2.3"`)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.requireMaintainer(w, c, name)
	if p == nil {
		return
	}
	if _, ok := p.versions[version]; !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("version not found: %s@%s", name, version))
		return
	}
	if p.distTags[tag] != version {
		p.distTags[tag] = version
		p.touch(r.opts.Now())
		c.mark()
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (r *Registry) deleteDistTag(w http.ResponseWriter, c caller, name, tag string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.requireMaintainer(w, c, name)
	if p == nil {
		return
	}
	// npmjs refuses to remove latest (apis.md); the status is unconfirmed, 400 is the simulator's.
	if tag == "latest" {
		writeError(w, http.StatusBadRequest, "the latest tag cannot be removed")
		return
	}
	if _, ok := p.distTags[tag]; !ok {
		writeError(w, http.StatusNotFound, "no such tag: "+tag)
		return
	}
	delete(p.distTags, tag)
	p.touch(r.opts.Now())
	c.mark()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// ---- users, owners, listings, access, trust

func (r *Registry) whoami(w http.ResponseWriter, _ *http.Request, c caller) {
	if c.user == nil {
		writeError(w, http.StatusUnauthorized, "You must be logged in to use whoami")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"username": c.user.name})
}

func (r *Registry) getUser(w http.ResponseWriter, name string) {
	r.mu.Lock()
	u, ok := r.users[name]
	r.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"_id": "org.couchdb.user:" + u.name, "name": u.name, "email": u.email})
}

func (r *Registry) userPackages(w http.ResponseWriter, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.users[name]; !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	out := map[string]string{}
	for n, p := range r.pkgs {
		if p.isMaintainer(name) {
			out[n] = "write"
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) orgPackages(w http.ResponseWriter, scope string) {
	scope = strings.TrimPrefix(scope, "@")
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.orgs[scope] {
		writeError(w, http.StatusNotFound, "Scope not found")
		return
	}
	out := map[string]string{}
	for n := range r.pkgs {
		if strings.HasPrefix(n, "@"+scope+"/") {
			out[n] = "write"
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// collaborators answers {user: "write"} for each maintainer: the raw values npm's libnpmaccess
// receives ("read"/"write"; the npm CLI shows them as read-only/read-write).
func (r *Registry) collaborators(w http.ResponseWriter, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pkgs[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	out := map[string]string{}
	for _, m := range p.maintainers {
		out[m.Name] = "write"
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) setAccess(w http.ResponseWriter, req *http.Request, c caller, name string) {
	var body struct {
		PublishRequiresTFA          *bool   `json:"publish_requires_tfa"`
		AutomationTokenOverridesTFA *bool   `json:"automation_token_overrides_tfa"`
		Access                      *string `json:"access"`
	}
	if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "body must be a JSON object")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.requireMaintainer(w, c, name)
	if p == nil {
		return
	}
	before := p.access
	if body.PublishRequiresTFA != nil {
		p.access.PublishRequiresTFA = *body.PublishRequiresTFA
	}
	if body.AutomationTokenOverridesTFA != nil {
		p.access.AutomationTokenOverridesTFA = *body.AutomationTokenOverridesTFA
	}
	if p.access != before {
		c.mark()
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (r *Registry) listTrust(w http.ResponseWriter, c caller, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.requireMaintainer(w, c, name)
	if p == nil {
		return
	}
	out := make([]TrustConfig, 0, len(p.trust))
	out = append(out, p.trust...)
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) deleteTrust(w http.ResponseWriter, c caller, name, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.requireMaintainer(w, c, name)
	if p == nil {
		return
	}
	i := slices.IndexFunc(p.trust, func(t TrustConfig) bool { return t.ID == id })
	if i < 0 {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	p.trust = slices.Delete(slices.Clone(p.trust), i, i+1)
	c.mark()
	w.WriteHeader(http.StatusNoContent)
}

// ---- search

// search implements the qualifiers npmir relies on (maintainer:, scope:, keywords:) plus plain
// words matched against name, description and keywords. Results come sorted by name, so pages
// are stable (npmjs sorts by score).
func (r *Registry) search(w http.ResponseWriter, req *http.Request, _ caller) {
	q := req.URL.Query()
	size := atoiDefault(q.Get("size"), 20)
	if size < 1 {
		size = 1
	}
	size = min(size, 250)
	from := max(atoiDefault(q.Get("from"), 0), 0)
	var maintainer, scope string
	var keywords, words []string
	for _, f := range strings.Fields(q.Get("text")) {
		switch {
		case strings.HasPrefix(f, "maintainer:"):
			maintainer = strings.TrimPrefix(f, "maintainer:")
		case strings.HasPrefix(f, "scope:"):
			scope = strings.TrimPrefix(strings.TrimPrefix(f, "scope:"), "@")
		case strings.HasPrefix(f, "keywords:"):
			keywords = append(keywords, strings.Split(strings.TrimPrefix(f, "keywords:"), ",")...)
		case strings.Contains(f, ":"): // is:, not:, author:, boost-exact: ... not simulated
		default:
			words = append(words, strings.ToLower(f))
		}
	}
	r.mu.Lock()
	names := slices.Sorted(maps.Keys(r.pkgs))
	var objects []any
	total := 0
	for _, n := range names {
		p := r.pkgs[n]
		latest := p.versions[p.distTags["latest"]]
		if latest == nil {
			continue // fully unpublished
		}
		kw := stringsOf(latest["keywords"])
		if maintainer != "" && !p.isMaintainer(maintainer) {
			continue
		}
		if scope != "" && !strings.HasPrefix(n, "@"+scope+"/") {
			continue
		}
		if len(keywords) > 0 && !slices.ContainsFunc(keywords, func(k string) bool { return slices.Contains(kw, k) }) {
			continue
		}
		hay := strings.ToLower(n + " " + p.description + " " + strings.Join(kw, " "))
		if slices.ContainsFunc(words, func(wd string) bool { return !strings.Contains(hay, wd) }) {
			continue
		}
		total++
		if total <= from || len(objects) >= size {
			continue
		}
		objects = append(objects, searchObject(p, latest, kw))
	}
	r.mu.Unlock()
	if objects == nil {
		objects = []any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"objects": objects, "total": total,
		"time": r.opts.Now().UTC().Format("Mon Jan 02 2006 15:04:05 GMT+0000 (Coordinated Universal Time)"),
	})
}

func searchObject(p *pkg, latest map[string]any, kw []string) map[string]any {
	scope := "unscoped"
	if strings.HasPrefix(p.name, "@") {
		scope = strings.TrimPrefix(p.name[:strings.IndexByte(p.name, '/')], "@")
	}
	var publisher map[string]string
	if u, ok := latest["_npmUser"].(map[string]any); ok {
		name, _ := u["name"].(string)
		email, _ := u["email"].(string)
		publisher = map[string]string{"username": name, "email": email}
	}
	ms := make([]map[string]string, 0, len(p.maintainers))
	for _, m := range p.maintainers {
		ms = append(ms, map[string]string{"username": m.Name, "email": m.Email})
	}
	pk := map[string]any{
		"name": p.name, "scope": scope, "version": latest["version"], "date": stamp(p.times["modified"]),
		"links": map[string]string{"npm": "https://www.npmjs.com/package/" + p.name}, "publisher": publisher, "maintainers": ms,
	}
	if p.description != "" {
		pk["description"] = p.description
	}
	if len(kw) > 0 {
		pk["keywords"] = kw
	}
	return map[string]any{
		"package":     pk,
		"score":       map[string]any{"final": 1, "detail": map[string]any{"quality": 1, "popularity": 1, "maintenance": 1}},
		"searchScore": 1,
	}
}

func stringsOf(v any) []string {
	var out []string
	if xs, ok := v.([]any); ok {
		for _, x := range xs {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func atoiDefault(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// ---- tokens

type tokenJSON struct {
	Token         string   `json:"token"`
	Key           string   `json:"key"`
	CIDRWhitelist []string `json:"cidr_whitelist"`
	ReadOnly      bool     `json:"readonly"`
	Automation    bool     `json:"automation"`
	Created       string   `json:"created"`
	Updated       string   `json:"updated"`
	created       time.Time
}

// listTokens pages through the caller's tokens (login sessions excluded), oldest first, with
// ?page= (from 0) and ?perPage=; urls.next is absolute while more remain.
func (r *Registry) listTokens(w http.ResponseWriter, req *http.Request, c caller) {
	if c.user == nil {
		writeError(w, http.StatusUnauthorized, "You must be logged in to list tokens")
		return
	}
	q := req.URL.Query()
	page := max(atoiDefault(q.Get("page"), 0), 0)
	per := atoiDefault(q.Get("perPage"), r.opts.TokensPerPage)
	if per < 1 {
		per = r.opts.TokensPerPage
	}
	r.mu.Lock()
	var all []tokenJSON
	for _, t := range r.tokens {
		if t.user != c.user.name || t.session || t.revoked {
			continue
		}
		all = append(all, tokenJSON{Token: t.value[:8] + "…", Key: t.key, CIDRWhitelist: t.cidr, ReadOnly: t.readonly,
			Automation: t.automation, Created: stamp(t.created), Updated: stamp(t.created), created: t.created})
	}
	r.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if !all[i].created.Equal(all[j].created) {
			return all[i].created.Before(all[j].created)
		}
		return all[i].Key < all[j].Key
	})
	lo := min(page*per, len(all))
	hi := min(lo+per, len(all))
	next := ""
	if hi < len(all) {
		next = fmt.Sprintf("%s-/npm/v1/tokens?page=%d&perPage=%d", baseURL(req), page+1, per)
	}
	objects := all[lo:hi]
	if objects == nil {
		objects = []tokenJSON{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"objects": objects, "total": len(all), "urls": map[string]string{"next": next}})
}

func (r *Registry) createToken(w http.ResponseWriter, req *http.Request, c caller) {
	var body struct {
		Password      string   `json:"password"`
		ReadOnly      bool     `json:"readonly"`
		CIDRWhitelist []string `json:"cidr_whitelist"`
	}
	if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "body must be a JSON object")
		return
	}
	if c.user == nil {
		writeError(w, http.StatusUnauthorized, "You must be logged in to create tokens")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if body.Password != c.user.password {
		writeError(w, http.StatusUnauthorized, "incorrect password")
		return
	}
	t := r.newTokenLocked(c.user.name, TokenOptions{ReadOnly: body.ReadOnly, CIDR: body.CIDRWhitelist})
	c.mark()
	writeJSON(w, http.StatusOK, tokenJSON{Token: t.value, Key: t.key, CIDRWhitelist: t.cidr, ReadOnly: t.readonly,
		Created: stamp(t.created), Updated: stamp(t.created)})
}

// revokeToken revokes one of the caller's listed tokens: from then on it is refused everywhere.
// Unknown, already revoked and login-session keys answer 404 (unconfirmed on npmjs; Verdaccio 6.8
// answers 200 whatever the key).
func (r *Registry) revokeToken(w http.ResponseWriter, c caller, key string) {
	if c.user == nil {
		writeError(w, http.StatusUnauthorized, "You must be logged in to revoke tokens")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tokens {
		if t.key == key && t.user == c.user.name && !t.session && !t.revoked {
			t.revoked = true
			c.mark()
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
	}
	writeError(w, http.StatusNotFound, "Not found")
}

// ---- provenance and keys

func (r *Registry) attestations(w http.ResponseWriter, spec string) {
	i := strings.LastIndexByte(spec, '@')
	if i <= 0 {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	name, version := spec[:i], spec[i+1:]
	r.mu.Lock()
	var atts []any
	if p, ok := r.pkgs[name]; ok {
		if _, ok := p.versions[version]; ok {
			atts = p.attestations[version]
		}
	}
	r.mu.Unlock()
	if len(atts) == 0 {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"attestations": atts})
}

func (r *Registry) keys(w http.ResponseWriter, _ *http.Request, _ caller) {
	writeJSON(w, http.StatusOK, map[string]any{"keys": []any{map[string]any{
		"expires": nil, "keyid": r.signer.keyID, "keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256", "key": r.signer.spki,
	}}})
}

// highest returns the highest of semver-ish versions (numeric major.minor.patch; prereleases
// below their release), enough to pick a new latest after an unpublish.
func highest(vs []string) string {
	slices.SortFunc(vs, compareVersions)
	return vs[len(vs)-1]
}

func compareVersions(a, b string) int {
	pa, prea, _ := strings.Cut(a, "-")
	pb, preb, _ := strings.Cut(b, "-")
	na, nb := strings.Split(pa, "."), strings.Split(pb, ".")
	for i := 0; i < max(len(na), len(nb)); i++ {
		var x, y int
		if i < len(na) {
			x, _ = strconv.Atoi(na[i])
		}
		if i < len(nb) {
			y, _ = strconv.Atoi(nb[i])
		}
		if x != y {
			return x - y
		}
	}
	switch {
	case prea == preb:
		return 0
	case prea == "":
		return 1
	case preb == "":
		return -1
	}
	return strings.Compare(prea, preb)
}
