package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/npmir/npmir/internal/report"
	"github.com/npmir/npmir/internal/testenv/verdaccio"
)

// One real Verdaccio and one built npmir binary serve every test in this package; each test
// works on its own package names, so tests can run in parallel.
var (
	verd     *verdaccio.Server
	npmirBin string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	verd, err = verdaccio.Start(ctx, verdaccio.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start verdaccio:", err)
		return 1
	}
	defer verd.Stop()
	dir, err := os.MkdirTemp("", "npmir-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	npmirBin = filepath.Join(dir, "npmir")
	root, _ := verdaccio.RepoRoot()
	build := exec.Command("go", "build", "-o", npmirBin, "./cmd/npmir")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build npmir: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// counter is a reverse proxy in front of a registry that counts the requests that reach it, so
// "zero writes" is measured at the server's door, not taken on the client's word.
type counter struct {
	URL    string
	writes atomic.Int64
	reads  atomic.Int64
	mu     sync.Mutex
	log    []string
}

func newCounter(t *testing.T, target string) *counter {
	t.Helper()
	u, _ := url.Parse(target)
	c := &counter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			c.reads.Add(1)
		} else {
			c.writes.Add(1)
		}
		c.mu.Lock()
		c.log = append(c.log, r.Method+" "+r.URL.RequestURI())
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL + "/"
	return c
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) doc(t *testing.T) *report.Document {
	t.Helper()
	var d report.Document
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return &d
}

// env is a test's environment: its own state dir and HOME, the registry token.
type env map[string]string

func newEnv(t *testing.T) env {
	home := t.TempDir()
	return env{"HOME": home, "NPMIR_STATE_DIR": filepath.Join(home, "state"), "NPM_TOKEN": verd.Token}
}

// run executes npmir in-process (no TTY) and returns its outputs and exit code.
func run(t *testing.T, e env, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	f := &Factory{IO: io, Getenv: func(k string) string { return e[k] }, Now: time.Now}
	code := Run(context.Background(), args, f)
	return result{out.String(), errOut.String(), code}
}

// runBin executes the built binary as a separate process (for kill tests).
func runBin(t *testing.T, e env, args ...string) (result, *os.ProcessState) {
	t.Helper()
	cmd := exec.Command(npmirBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	return result{out.String(), errOut.String(), cmd.ProcessState.ExitCode()}, cmd.ProcessState
}

// registryView is what the real npm client reports about a package.
type registryView struct {
	DistTags   map[string]string `json:"dist-tags"`
	Deprecated map[string]string
}

func npmView(t *testing.T, name string, versions ...string) registryView {
	t.Helper()
	ctx := context.Background()
	out, err := verd.Npm(ctx, t.TempDir(), "view", name, "dist-tags", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v registryView
	if err := json.Unmarshal([]byte(out), &v.DistTags); err != nil {
		t.Fatalf("npm view %s dist-tags: %v: %s", name, err, out)
	}
	v.Deprecated = map[string]string{}
	for _, ver := range versions {
		out, err := verd.Npm(ctx, t.TempDir(), "view", name+"@"+ver, "deprecated")
		if err != nil {
			t.Fatal(err)
		}
		v.Deprecated[ver] = strings.TrimSpace(out)
	}
	return v
}

func seed(t *testing.T, name string, npmClient bool) {
	t.Helper()
	if err := verd.SeedCompromised(context.Background(), name, npmClient); err != nil {
		t.Fatal(err)
	}
}

func opIDs(d *report.Document) []string {
	var ids []string
	for _, st := range d.Stages {
		for _, s := range st.Steps {
			for _, op := range s.Ops {
				ids = append(ids, op.ID)
			}
		}
	}
	return ids
}

// outputsOf collects every byte npmir left behind for a secrets grep: outputs and every file
// under the state dir.
func outputsOf(t *testing.T, e env, rs ...result) string {
	t.Helper()
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.stdout)
		b.WriteString(r.stderr)
	}
	_ = filepath.Walk(e["NPMIR_STATE_DIR"], func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			data, _ := os.ReadFile(p)
			b.Write(data)
		}
		return nil
	})
	return b.String()
}
