package sim

import (
	"fmt"
	"slices"
	"time"
)

// ScenarioOptions tune SeedCompromisedMaintainer; the zero value is the acceptance
// scenario (300 packages, 40 with versions after T, 10 of those solely owned).
type ScenarioOptions struct {
	Maintainer string    // the compromised account: "maint-compromised"
	Packages   int       // packages it owns: 300
	Affected   int       // of those, packages with versions published at or after Since: 40
	LastOwner  int       // of the affected, packages where it is the only owner: 10
	Since      time.Time // T: 2025-11-24T00:00:00Z (Shai-Hulud 2.0)
	Org        string    // npm org owning every fifth package (@org/lib-NNN): "mc-org"
	OldTokens  int       // listed tokens created before T besides the responder's: 24, so the list pages
}

// Scenario is what SeedCompromisedMaintainer seeded: everything a test or a rehearsal needs to
// check the outcome, all deterministic for the registry's seed.
type Scenario struct {
	Maintainer string
	Password   string
	// Token is the maintainer's token the responder holds (created long before T): npmir runs
	// with it, as the account's owner taking it back would.
	Token string
	// AttackerTokens were created after T and are listed by GET /-/npm/v1/tokens; AttackerKeys
	// are their keys, in the same order.
	AttackerTokens []string
	AttackerKeys   []string
	// SessionToken was issued by a login after T: it works, is not listed, cannot be revoked
	// through the tokens API.
	SessionToken string
	// CoOwners are the other maintainers, with their tokens.
	CoOwners map[string]string
	Org      string
	Since    time.Time
	Packages []string            // every package of Maintainer, sorted
	Affected map[string][]string // package → versions published at or after Since, ascending
	LastGood map[string]string   // affected package → its latest version before Since
	// LastOwner lists affected packages Maintainer owns alone (removing it must be refused);
	// CoOwned the affected packages with another owner.
	LastOwner []string
	CoOwned   []string
	// AllowedTrust maps packages to the trust configuration ids their maintainers set up;
	// RogueTrust to the ids the attacker added after T.
	AllowedTrust map[string]string
	RogueTrust   map[string]string
	// AllowedRepository is the GitHub repository of every allowed trust configuration's owner.
	AllowedRepository string
}

// SeedCompromisedMaintainer seeds r with a maintainer whose account was taken over at
// Since: its packages, co-owners, tokens (old, attacker's, a login session) and trust
// configurations. Package payloads are inert text shaped like Shai-Hulud 2.0's
// (preinstall: node setup_bun.js), so forensics rules have something to match.
func SeedCompromisedMaintainer(r *Registry, o ScenarioOptions) (*Scenario, error) {
	if o.Maintainer == "" {
		o.Maintainer = "maint-compromised"
	}
	if o.Packages == 0 {
		o.Packages = 300
	}
	if o.Affected == 0 {
		o.Affected = 40
	}
	if o.LastOwner == 0 {
		o.LastOwner = min(10, o.Affected)
	}
	if o.Since.IsZero() {
		o.Since = time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC)
	}
	if o.Org == "" {
		o.Org = "mc-org"
	}
	if o.OldTokens == 0 {
		o.OldTokens = 24
	}
	if o.Affected > o.Packages || o.LastOwner > o.Affected {
		return nil, fmt.Errorf("sim: scenario wants %d affected of %d packages, %d last-owner", o.Affected, o.Packages, o.LastOwner)
	}
	T := o.Since.UTC()
	seed := r.opts.Seed
	sc := &Scenario{Maintainer: o.Maintainer, Password: o.Maintainer + "-password", Org: o.Org, Since: T,
		CoOwners: map[string]string{}, Affected: map[string][]string{}, LastGood: map[string]string{},
		AllowedTrust: map[string]string{}, RogueTrust: map[string]string{}, AllowedRepository: o.Org + "/releases"}

	// No AddUser: its token would be dated Now, and every token here is dated relative to T.
	r.mu.Lock()
	r.addUserLocked(o.Maintainer, o.Maintainer+"@example.com")
	r.mu.Unlock()
	var err error
	if sc.Token, _, err = r.AddToken(o.Maintainer, TokenOptions{Created: T.AddDate(0, -6, 0)}); err != nil {
		return nil, err
	}
	for i := range o.OldTokens {
		if _, _, err := r.AddToken(o.Maintainer, TokenOptions{Created: T.AddDate(0, -5, i), Automation: i%3 == 0, ReadOnly: i%4 == 1}); err != nil {
			return nil, err
		}
	}
	for _, co := range []string{"maint-alice", "maint-bob"} {
		tok := r.AddUser(co, co+"@example.com")
		sc.CoOwners[co] = tok
	}
	r.AddOrg(o.Org)

	names := make([]string, o.Packages)
	for i := range names {
		if i%5 == 4 {
			names[i] = fmt.Sprintf("@%s/lib-%03d", o.Org, i)
		} else {
			names[i] = fmt.Sprintf("mc-pkg-%03d", i)
		}
	}
	// Choose the affected packages with a seeded shuffle, so they are spread over the list.
	order := make([]int, o.Packages)
	for i := range order {
		order[i] = i
	}
	for i := len(order) - 1; i > 0; i-- {
		j := int(mix64(seed^0xaffec7, uint64(i)) % uint64(i+1))
		order[i], order[j] = order[j], order[i]
	}
	affected := map[int]int{} // package index → rank among the affected
	for rank, i := range order[:o.Affected] {
		affected[i] = rank
	}

	for i, name := range names {
		base := map[string]any{
			"description": fmt.Sprintf("Synthetic package %d of the npmir rehearsal scenario", i),
			"main":        "index.js",
			"license":     "MIT",
			"repository":  map[string]any{"type": "git", "url": "git+https://github.com/" + sc.AllowedRepository + ".git"},
		}
		files := map[string][]byte{"index.js": fmt.Appendf(nil, "module.exports = function () { return %d }\n", i)}
		for k, v := range []string{"1.0.0", "1.1.0"} {
			at := T.AddDate(0, 0, -400+i%50).Add(time.Duration(k) * 24 * time.Hour * 180)
			if err := r.Publish(Version{Name: name, Version: v, Manifest: base, Files: files, Publisher: o.Maintainer, Time: at}); err != nil {
				return nil, err
			}
		}
		rank, isAffected := affected[i]
		switch {
		case isAffected && rank < o.LastOwner:
			// sole owner: nothing to add
		case isAffected:
			if err := r.AddOwner(name, "maint-alice"); err != nil {
				return nil, err
			}
			if rank%3 == 0 {
				if err := r.AddOwner(name, "maint-bob"); err != nil {
					return nil, err
				}
			}
		case mix64(seed^0xc0, uint64(i))%2 == 0:
			co := "maint-alice"
			if i%3 == 0 {
				co = "maint-bob"
			}
			if err := r.AddOwner(name, co); err != nil {
				return nil, err
			}
		}
		if i%10 == 0 {
			id, err := r.AddTrust(name, GitHubTrust(sc.AllowedRepository, "release.yml", "npm"))
			if err != nil {
				return nil, err
			}
			sc.AllowedTrust[name] = id
		}
		sc.Packages = append(sc.Packages, name)
		if !isAffected {
			continue
		}
		sc.LastGood[name] = "1.1.0"
		if rank < o.LastOwner {
			sc.LastOwner = append(sc.LastOwner, name)
		} else {
			sc.CoOwned = append(sc.CoOwned, name)
		}
		bad := []string{"1.1.1"}
		if rank%4 == 1 {
			bad = append(bad, "1.1.2")
		}
		worm := map[string]any{}
		for k, v := range base {
			worm[k] = v
		}
		worm["scripts"] = map[string]any{"preinstall": "node setup_bun.js"}
		wormFiles := map[string][]byte{
			"index.js":     files["index.js"],
			"setup_bun.js": []byte("// npmir rehearsal: inert stand-in for the Shai-Hulud 2.0 loader (setup_bun.js). Nothing runs.\n"),
		}
		for k, v := range bad {
			at := T.Add(time.Duration(rank*7+1)*time.Minute + time.Duration(k)*time.Hour)
			if err := r.Publish(Version{Name: name, Version: v, Manifest: worm, Files: wormFiles, Publisher: o.Maintainer, Time: at}); err != nil {
				return nil, err
			}
		}
		sc.Affected[name] = bad
		if rank%3 == 2 {
			id, err := r.AddTrust(name, GitHubTrust("attacker-gh/"+fmt.Sprintf("repo-%03d", rank), "formatter_1.yml", ""))
			if err != nil {
				return nil, err
			}
			sc.RogueTrust[name] = id
		}
	}
	slices.Sort(sc.Packages)
	slices.Sort(sc.LastOwner)
	slices.Sort(sc.CoOwned)

	for k := range 3 {
		tok, key, err := r.AddToken(o.Maintainer, TokenOptions{Created: T.Add(time.Duration(5+k*25) * time.Minute), Automation: k != 1})
		if err != nil {
			return nil, err
		}
		sc.AttackerTokens = append(sc.AttackerTokens, tok)
		sc.AttackerKeys = append(sc.AttackerKeys, key)
	}
	if sc.SessionToken, err = r.AddSessionToken(o.Maintainer); err != nil {
		return nil, err
	}
	return sc, nil
}
