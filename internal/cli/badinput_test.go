package cli

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmir/npmir/internal/incident"
	"github.com/npmir/npmir/internal/state"
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	name := "bad-input-pkg"
	seed(t, name, false)
	closed := closedPort(t)
	cases := []struct {
		name     string
		args     []string
		token    string
		wantCode int
		wantErr  string
	}{
		{"unknown package", []string{"contain", "no-such-pkg-xyz@1.0.0", "--yes"}, "", ExitUsage, "no-such-pkg-xyz does not exist"},
		{"unknown version", []string{"contain", name + "@9.9.9", "--yes"}, "", ExitUsage, name + "@9.9.9 is not on the registry"},
		{"malformed spec", []string{"contain", "Bad Name@1.0.0", "--yes"}, "", ExitUsage, "not a valid npm package name"},
		{"range instead of version", []string{"contain", name + "@^1.0.0", "--yes"}, "", ExitUsage, "not an exact version"},
		{"bare name without since", []string{"contain", name, "--yes"}, "", ExitUsage, "--since"},
		{"relative since", []string{"contain", name, "--since", "36h", "--yes"}, "", ExitUsage, "contain needs a fixed time"},
		{"no package", []string{"contain", "--yes"}, "", ExitUsage, "name at least one package"},
		{"bad flag", []string{"contain", name + "@1.1.1", "--frobnicate"}, "", ExitUsage, "unknown flag"},
		{"bad output", []string{"contain", name + "@1.1.1", "-o", "yaml"}, "", ExitUsage, "--output"},
		{"unreachable registry", []string{"contain", name + "@1.1.1", "--yes", "--registry", closed}, "", ExitError, strings.TrimSuffix(closed, "/")},
		{"rejected token", []string{"contain", name + "@1.1.1", "--yes"}, "npm_definitely-not-a-valid-token-0000", ExitAuth, "401"},
		{"no approval without a terminal", []string{"contain", name + "@1.1.1"}, "", ExitApproval, "--yes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.token != "" {
				e["NPM_TOKEN"] = tc.token
			}
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "--registry") {
				args = append(args, "--registry", verd.URL)
			}
			r := run(t, e, args...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.wantCode, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.wantErr) {
				t.Errorf("stderr does not mention %q:\n%s", tc.wantErr, r.stderr)
			}
			if tc.token != "" && strings.Contains(outputsOf(t, e, r), tc.token) {
				t.Error("the rejected token's value appears in the output or state")
			}
			if tc.wantCode == ExitApproval {
				if _, err := os.Stat(e["NPMIR_STATE_DIR"]); !os.IsNotExist(err) {
					t.Error("an approval stop wrote state")
				}
			}
		})
	}
	v := npmView(t, name)
	if v.DistTags["latest"] != "1.1.1" {
		t.Errorf("a failing case changed the registry: %v", v.DistTags)
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

// An incident whose registry goes away mid-incident keeps its state: the resume fails with the
// URL and cause, the recorded ops are intact, and a later resume finishes the work.
func TestUnreachableRegistryLeavesStateIntact(t *testing.T) {
	t.Parallel()
	name := "unreachable-pkg"
	seed(t, name, false)
	e := newEnv(t)
	e["NPMIR_FAULT"] = "after-started:4"
	if r, _ := runBin(t, e, "contain", name+"@1.1.1", "--incident", "unreach", "--yes", "--registry", verd.URL); r.code == 0 {
		t.Fatalf("the fault did not fire: %s", r.stderr)
	}
	delete(e, "NPMIR_FAULT")
	path := filepath.Join(e["NPMIR_STATE_DIR"], "unreach", "state.json")
	closed := closedPort(t)
	r := run(t, e, "resume", "--incident", "unreach", "--yes", "--registry", closed)
	if r.code != ExitError || !strings.Contains(r.stderr, strings.TrimSuffix(closed, "/")) || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("exit %d, want 1 naming %s and the cause:\n%s", r.code, closed, r.stderr)
	}
	after, err := state.Read(path)
	if err != nil {
		t.Fatalf("state unreadable after the failure: %v", err)
	}
	if len(after.Ops) != 5 || after.Ops[0].Status != state.Done {
		t.Errorf("recorded ops lost: %+v", after.Ops)
	}
	if r := run(t, e, "resume", "--incident", "unreach", "--yes", "--registry", verd.URL); r.code != 0 {
		t.Fatalf("resume once the registry is back: exit %d: %s", r.code, r.stderr)
	}
	auditDoneOnce(t, filepath.Dir(path), 5)
}

func TestCorruptAndNewerStateRefusedUntouched(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"corrupt": `{"schema_version": 1, "incident": {"id": "x"`,
		"newer":   `{"schema_version": 99, "incident": {"id": "x", "targets": []}}`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			spec, _ := incident.Build(incident.Options{Specs: []string{"corrupt-pkg@1.1.1"}})
			dir := filepath.Join(e["NPMIR_STATE_DIR"], spec.ID)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "state.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"contain", "corrupt-pkg@1.1.1", "--yes", "--registry", verd.URL},
				{"resume", "--incident", spec.ID, "--yes", "--registry", verd.URL},
				{"status", "--incident", spec.ID},
			} {
				r := run(t, e, args...)
				if r.code != ExitError || !strings.Contains(r.stderr, "left untouched") {
					t.Errorf("%v: exit %d, want 1 with a clear message:\n%s", args, r.code, r.stderr)
				}
				if name == "newer" && !strings.Contains(r.stderr, "newer") {
					t.Errorf("%v: message does not say the schema is newer: %s", args, r.stderr)
				}
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, []byte(content)) {
				t.Errorf("state file was modified: %s", got)
			}
		})
	}
}

func TestSecondConcurrentRunRefusesAtOnce(t *testing.T) {
	t.Parallel()
	name := "locked-pkg"
	seed(t, name, false)
	e := newEnv(t)
	spec, _ := incident.Build(incident.Options{Specs: []string{name + "@1.1.1"}})
	holder, err := state.Open(filepath.Join(e["NPMIR_STATE_DIR"], spec.ID, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	r := run(t, e, "contain", name+"@1.1.1", "--yes", "--registry", verd.URL)
	if r.code != ExitError || !strings.Contains(r.stderr, "locked by npmir pid") {
		t.Fatalf("exit %d, want 1 naming the holder:\n%s", r.code, r.stderr)
	}
	if v := npmView(t, name); v.DistTags["latest"] != "1.1.1" {
		t.Errorf("the refused run changed the registry: %v", v.DistTags)
	}
}
