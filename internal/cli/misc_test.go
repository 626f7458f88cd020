package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --events jsonl: stdout is JSON lines, one per op transition, then the document.
func TestEventsJSONL(t *testing.T) {
	t.Parallel()
	name := "events-pkg"
	seed(t, name, false)
	e := newEnv(t)
	r := run(t, e, "contain", name+"@1.1.1", "--yes", "--registry", verd.URL, "--events", "jsonl", "--output", "json", "--incident", "ev")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	ops := 0
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i+1, err, l)
		}
		if m["type"] == "op" {
			ops++
		}
		if i == len(lines)-1 && m["kind"] != "npmir.incident" {
			t.Errorf("last line is not the document: %s", l)
		}
	}
	if ops != 10 { // five ops, started and done each
		t.Errorf("%d op events, want 10", ops)
	}

	// audit verify: intact, then tampered.
	if a := run(t, e, "audit", "verify", "--incident", "ev"); a.code != 0 || !strings.Contains(a.stdout, "chain intact") || !strings.Contains(a.stdout, "every hash matches") {
		t.Fatalf("audit verify: exit %d\n%s%s", a.code, a.stdout, a.stderr)
	}
	log := filepath.Join(e["NPMIR_STATE_DIR"], "ev", "audit.jsonl")
	data, _ := os.ReadFile(log)
	_ = os.WriteFile(log, []byte(strings.Replace(string(data), "moved latest", "moved nothing", 1)), 0o600)
	if a := run(t, e, "audit", "verify", "--incident", "ev"); a.code == 0 || !strings.Contains(a.stderr, "line") {
		t.Errorf("tampered audit log accepted: exit %d\n%s", a.code, a.stderr)
	}
}

func TestConfigCheckNeverPrintsTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := run(t, e, "config", "check", "--registry", verd.URL)
	if r.code != 0 || !strings.Contains(r.stdout, "✓ admin") || !strings.Contains(r.stdout, "$NPM_TOKEN") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, verd.Token) {
		t.Error("token printed")
	}
	// The token from ~/.npmrc, the way npm reads it.
	e2 := env{"HOME": t.TempDir()}
	host := strings.TrimPrefix(verd.URL, "http:")
	_ = os.WriteFile(filepath.Join(e2["HOME"], ".npmrc"), []byte(host+":_authToken="+verd.Token+"\n"), 0o600)
	r = run(t, e2, "config", "check", "--registry", verd.URL)
	if r.code != 0 || !strings.Contains(r.stdout, "~/.npmrc") || !strings.Contains(r.stdout, "✓ admin") {
		t.Fatalf("npmrc: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e2["NPM_TOKEN"] = "npm_bogus_bogus_bogus"
	r = run(t, e2, "config", "check", "--registry", verd.URL)
	if r.code == 0 || strings.Contains(r.stdout+r.stderr, "npm_bogus_bogus_bogus") {
		t.Errorf("bogus token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
