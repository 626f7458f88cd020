package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmir/npmir/internal/state"
)

// npmir verify through real Verdaccio: the seeded bad version (an nx-like postinstall running
// telemetry.js) is judged, the evidence is preserved with matching hashes and recorded in the
// audit log, and a second run preserves nothing new.
func TestVerifyCommandAgainstVerdaccio(t *testing.T) {
	t.Parallel()
	name := "verify-cli-pkg"
	seed(t, name, false)
	e := newEnv(t)
	r := run(t, e, "verify", name+"@1.1.1", "--registry", verd.URL, "--output", "json", "--incident", "v1")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var doc struct {
		SchemaVersion int `json:"schema_version"`
		Reports       []struct {
			Package   string `json:"package"`
			KnownGood string `json:"known_good"`
			Versions  []struct {
				Version  string `json:"version"`
				Verdict  string `json:"verdict"`
				Findings []struct {
					RuleID string `json:"rule_id"`
				} `json:"findings"`
			} `json:"versions"`
		} `json:"reports"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(doc.Reports) != 1 || doc.Reports[0].KnownGood != "1.1.0" || len(doc.Reports[0].Versions) != 1 {
		t.Fatalf("report %+v", doc)
	}
	v := doc.Reports[0].Versions[0]
	if v.Verdict == "clean" {
		t.Errorf("1.1.1 (postinstall: node telemetry.js) judged clean: %+v", v)
	}
	dir := filepath.Join(e["NPMIR_STATE_DIR"], "v1")
	store, err := state.OpenEvidence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := store.Verify(); err != nil || len(problems) != 0 {
		t.Fatalf("evidence does not match its manifest: %v %v", problems, err)
	}
	if n := len(store.Entries()); n < 2 {
		t.Errorf("%d evidence entries, want the packument and the tarball", n)
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if strings.Count(string(audit), `"event":"evidence"`) < 2 {
		t.Errorf("evidence not in the audit log:\n%s", audit)
	}
	before := len(store.Entries())
	if r := run(t, e, "verify", name+"@1.1.1", "--registry", verd.URL, "--incident", "v1"); r.code != 0 || !strings.Contains(r.stdout, "1.1.1") {
		t.Fatalf("second run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	store2, _ := state.OpenEvidence(dir)
	if len(store2.Entries()) != before {
		t.Errorf("a second verify preserved again: %d → %d entries", before, len(store2.Entries()))
	}
	if strings.Contains(outputsOf(t, e, r), verd.Token) {
		t.Error("token leaked")
	}
	if r := run(t, e, "verify", "no-such-verify-pkg@1.0.0", "--registry", verd.URL, "--no-evidence"); r.code != ExitUsage || !strings.Contains(r.stderr, "no-such-verify-pkg") {
		t.Errorf("verify of an unknown package: exit %d, want 2 naming it\n%s", r.code, r.stderr)
	}
}
