package forensics

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerifyPair10MB verifies one suspect version against its known-good one, each tarball
// carrying a 10 MB high-entropy file (the size of Shai-Hulud 2.0's bun_environment.js): fetch
// from memory, integrity, safe read with every string rule, diff, rules, verdict.
func BenchmarkVerifyPair10MB(b *testing.B) {
	const size = 10 << 20
	reg := newFakeRegistry()
	good := goodPackage("posthog-node", "5.11.2")
	good.Files["dist/vendor.js"] = randomBase64(size)
	reg.add(good, day0)
	bad := shaiHulud2Like(good, "5.11.3", size)
	delete(bad.Files, "dist/vendor.js")
	reg.add(bad, day0.Add(time.Hour))
	var total int64
	for _, tgz := range reg.tarballs {
		total += int64(len(tgz))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	ctx := context.Background()
	req := Request{Package: "posthog-node", Versions: []string{"5.11.3"}}
	for b.Loop() {
		rep, err := Verify(ctx, reg, req)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Versions[0].Verdict != VerdictMalicious {
			b.Fatalf("verdict %s", rep.Versions[0].Verdict)
		}
	}
}
