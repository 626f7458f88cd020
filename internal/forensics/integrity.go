package forensics

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strings"
)

// Integrity is the result of checking a tarball against its manifest's dist fields.
type Integrity struct {
	Expected     string `json:"expected,omitempty"`        // dist.integrity as published
	Actual       string `json:"actual,omitempty"`          // sha512 SRI of the bytes fetched
	ShasumExpect string `json:"shasum_expected,omitempty"` // dist.shasum
	ShasumActual string `json:"shasum_actual,omitempty"`
	SHA256       string `json:"sha256,omitempty"` // of the tarball bytes, to match evidence
	// OK is true when every digest the manifest carries matched and at least one was checked.
	OK bool `json:"ok"`
}

// checkIntegrity compares tgz with an SRI string (one or more space-separated "alg-base64" items;
// the strongest algorithm present decides, as npm's ssri does) and a sha1 hex shasum.
func checkIntegrity(tgz []byte, sri, shasum string, rules *RuleSet) (Integrity, []Finding) {
	s512 := sha512.Sum512(tgz)
	s1 := sha1.Sum(tgz)
	s256 := sha256.Sum256(tgz)
	in := Integrity{
		Expected:     sri,
		Actual:       "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
		ShasumExpect: shasum,
		ShasumActual: hex.EncodeToString(s1[:]),
		SHA256:       hex.EncodeToString(s256[:]),
	}
	var out []Finding
	checked, ok := 0, true
	if sri != "" {
		alg, want := strongestSRI(sri)
		var h hash.Hash
		switch alg {
		case "sha512":
			h = sha512.New()
		case "sha384":
			h = sha512.New384()
		case "sha256":
			h = sha256.New()
		case "sha1":
			h = sha1.New()
		}
		if h == nil {
			out = append(out, rules.finding("integrity.missing", "integrity", "", sri, "dist.integrity %q names no algorithm npmir checks", sri))
		} else {
			h.Write(tgz)
			got := h.Sum(nil)
			checked++
			if subtle.ConstantTimeCompare(got, want) != 1 {
				ok = false
				out = append(out, rules.finding("integrity.sri-mismatch", "integrity", "", sri,
					"tarball bytes do not match dist.integrity: published %s, fetched %s-%s (tampered in transit or on a mirror, or replaced on the registry)",
					sri, alg, base64.StdEncoding.EncodeToString(got)))
			}
		}
	}
	if shasum != "" {
		checked++
		if !strings.EqualFold(shasum, in.ShasumActual) {
			ok = false
			out = append(out, rules.finding("integrity.shasum-mismatch", "integrity", "", shasum,
				"tarball bytes do not match dist.shasum: published %s, fetched %s", shasum, in.ShasumActual))
		}
	}
	if checked == 0 {
		out = append(out, rules.finding("integrity.missing", "integrity", "", "", "the manifest carries neither dist.integrity nor dist.shasum: the tarball cannot be authenticated"))
	}
	in.OK = ok && checked > 0
	return in, out
}

var sriRank = map[string]int{"sha1": 1, "sha256": 2, "sha384": 3, "sha512": 4}

// strongestSRI picks the strongest parseable item of an SRI string.
func strongestSRI(sri string) (alg string, digest []byte) {
	best := 0
	for _, item := range strings.Fields(sri) {
		a, b64, ok := strings.Cut(item, "-")
		if !ok {
			continue
		}
		if i := strings.IndexByte(b64, '?'); i >= 0 { // SRI options
			b64 = b64[:i]
		}
		d, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if r := sriRank[a]; r > best {
			best, alg, digest = r, a, d
		}
	}
	return alg, digest
}
