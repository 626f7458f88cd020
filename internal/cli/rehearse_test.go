package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tabletop exercise runs the whole runbook against the simulated incident and scores it.
func TestRehearse(t *testing.T) {
	t.Parallel()
	e := env{"HOME": t.TempDir(), "NPM_TOKEN": "npm_operator_real_token_must_not_be_used"}
	keep := t.TempDir()
	r := run(t, e, "rehearse", "--packages", "30", "--affected", "6", "--last-owner", "2", "--keep", keep)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "✗") || strings.Count(r.stderr, "✓ ") < 5 {
		t.Errorf("scorecard:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(keep, "rehearsal", "audit.jsonl")); err != nil {
		t.Errorf("--keep did not keep the audit log: %v", err)
	}
	if strings.Contains(outputsOf(t, env{"NPMIR_STATE_DIR": keep}, r), "npm_operator_real_token") {
		t.Error("the operator's real token reached the rehearsal")
	}
	dry := run(t, e, "rehearse", "--packages", "10", "--affected", "3", "--last-owner", "1", "--dry-run")
	if dry.code != 0 || !strings.Contains(dry.stderr, "0 mutating requests") {
		t.Fatalf("dry run: exit %d\n%s", dry.code, dry.stderr)
	}
}
