package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/sim"
	"github.com/npmir/npmir/internal/state"
)

// Ctrl-C mid-run: the op in flight finishes, nothing new starts, the exit code is 5, and a
// resume completes the incident.
func TestInterruptStopsCleanlyAndResumes(t *testing.T) {
	t.Parallel()
	name := "interrupt-pkg"
	seed(t, name, false)
	// Slow writes down so the signal lands while the run is in its middle.
	u, _ := url.Parse(verd.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			time.Sleep(400 * time.Millisecond)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer slow.Close()
	e := newEnv(t)
	cmd := exec.Command(npmirBin, "contain", name+"@1.1.1", "--incident", "intr", "--yes", "--registry", slow.URL+"/")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e["NPMIR_STATE_DIR"], "intr", "state.json")
	first := "npm/dist-tag/" + name + "/latest" // the first registry write (slowed down above)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if p, err := state.ProgressOf(filepath.Join(filepath.Dir(path), "audit.jsonl")); err == nil && p[first].Last.Event == "started" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("op %s never started", first)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != ExitResumable {
		t.Fatalf("exit %d, want %d after Ctrl-C\n%s", code, ExitResumable, stderr.String())
	}
	f, err := state.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if op := f.Op(first); op.Status != state.Done {
		t.Errorf("the op in flight was abandoned: %s", op.Status)
	}
	if f.Ops[len(f.Ops)-1].Status != state.Pending {
		t.Errorf("ops kept starting after Ctrl-C: last is %s", f.Ops[len(f.Ops)-1].Status)
	}
	if !strings.Contains(stderr.String(), "npmir resume") {
		t.Errorf("the message does not say how to resume:\n%s", stderr.String())
	}
	if r := run(t, e, "resume", "--incident", "intr", "--yes", "--registry", verd.URL); r.code != 0 {
		t.Fatalf("resume: exit %d: %s", r.code, r.stderr)
	}
	if v := npmView(t, name, "1.1.1"); v.DistTags["latest"] != "1.1.0" || v.DistTags["next"] != "1.1.0" || v.Deprecated["1.1.1"] == "" {
		t.Errorf("after resume: %+v", v)
	}
}

// A registry that wants a one-time password: with no terminal and no --otp the run stops with
// exit 4 naming the flag; with --otp it completes. (Verdaccio has no 2FA; the simulator does.)
func TestOTPRequiredWithoutTerminal(t *testing.T) {
	t.Parallel()
	reg := sim.NewRegistry(sim.Options{OTPCode: "424242"})
	tok := reg.AddUser("maint", "maint@example.com")
	for _, v := range []string{"1.0.0", "1.1.0", "1.1.1"} {
		if err := reg.Publish(sim.Version{Name: "otp-pkg", Version: v, Publisher: "maint"}); err != nil {
			t.Fatal(err)
		}
	}
	reg.SetOTPRequired(true)
	reg.Start()
	defer reg.Close()
	e := newEnv(t)
	e["NPM_TOKEN"] = tok
	r := run(t, e, "contain", "otp-pkg@1.1.1", "--yes", "--registry", reg.URL)
	if r.code != ExitAuth || !strings.Contains(r.stderr, "--otp") {
		t.Fatalf("exit %d, want %d naming --otp:\n%s", r.code, ExitAuth, r.stderr)
	}
	r = run(t, e, "contain", "otp-pkg@1.1.1", "--yes", "--registry", reg.URL, "--otp", "424242")
	if r.code != 0 {
		t.Fatalf("with --otp: exit %d\n%s", r.code, r.stderr)
	}
	if tags := reg.DistTags("otp-pkg"); tags["latest"] != "1.1.0" {
		t.Errorf("tags %v", tags)
	}
	if strings.Contains(outputsOf(t, e, r), tok) || strings.Contains(outputsOf(t, e, r), "424242") {
		t.Error("token or OTP leaked")
	}
}
