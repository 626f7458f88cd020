// Package verdaccio starts a real Verdaccio (the version pinned in testdata/verdaccio, installed
// with `npm ci`) on a free 127.0.0.1 port for integration tests and `make demo`, and seeds it
// with synthetic packages. Nothing here talks to any other host.
package verdaccio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is one running Verdaccio.
type Server struct {
	URL    string // http://127.0.0.1:PORT/
	Dir    string // config, storage, logs
	Npmrc  string // an .npmrc with the admin's login token, for the real npm client
	User   string
	Token  string // the login-issued token of User
	cmd    *exec.Cmd
	logBuf *os.File
}

// Options tune Start.
type Options struct {
	Dir  string // working folder; a new temp folder when empty
	Root string // repository root; found from the working directory when empty
}

// RepoRoot walks up from the working directory to the folder holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of the pinned Verdaccio, or an error telling how to install it.
func Binary(root string) (string, error) {
	bin := filepath.Join(root, "testdata", "verdaccio", "node_modules", ".bin", "verdaccio")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("verdaccio is not installed at %s: run `make deps` (npm ci in testdata/verdaccio)", bin)
	}
	return bin, nil
}

const configTmpl = `storage: %[1]s/storage
auth:
  htpasswd:
    file: %[1]s/htpasswd
    max_users: 1000
security:
  api:
    legacy: true
uplinks: {}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
server:
  keepAliveTimeout: 60
max_body_size: 200mb
flags:
  token: true
log: { type: stdout, format: json, level: warn }
listen: 127.0.0.1:%[2]d
`

// Start launches Verdaccio, waits until it answers, and creates the admin user.
func Start(ctx context.Context, o Options) (*Server, error) {
	root := o.Root
	if root == "" {
		var err error
		if root, err = RepoRoot(); err != nil {
			return nil, err
		}
	}
	bin, err := Binary(root)
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "npmir-verdaccio-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := startOn(ctx, bin, dir, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startOn(ctx context.Context, bin, dir string, port int) (*Server, error) {
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, configTmpl, dir, port), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "verdaccio.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start verdaccio: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), Dir: dir, cmd: cmd, logBuf: logf}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("verdaccio did not answer on %s within 60s; log: %s", s.URL, tail(filepath.Join(dir, "verdaccio.log")))
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("verdaccio exited (%v); log: %s", err, tail(filepath.Join(dir, "verdaccio.log")))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(s.URL + "-/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
	}
	s.User = "admin"
	tok, err := s.AddUser(ctx, s.User, "admin-password-1")
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Token = tok
	s.Npmrc = filepath.Join(dir, "npmrc")
	hostPath := strings.TrimPrefix(s.URL, "http:")
	npmrc := fmt.Sprintf("registry=%s\n%s:_authToken=%s\n", s.URL, hostPath, tok)
	if err := os.WriteFile(s.Npmrc, []byte(npmrc), 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// AddUser registers a user the way `npm adduser` does and returns the login-issued token.
func (s *Server) AddUser(ctx context.Context, name, password string) (string, error) {
	body, _ := json.Marshal(map[string]any{"_id": "org.couchdb.user:" + name, "name": name, "password": password, "type": "user", "roles": []string{}, "date": time.Now().UTC().Format(time.RFC3339)})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+"-/user/org.couchdb.user:"+name, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode/100 != 2 || out.Token == "" {
		return "", fmt.Errorf("add user %s: verdaccio said %d %s", name, resp.StatusCode, out.Error)
	}
	return out.Token, nil
}

// Stop ends Verdaccio and its children.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	if s.logBuf != nil {
		s.logBuf.Close()
	}
}

// Log returns the tail of Verdaccio's log, for failing tests.
func (s *Server) Log() string { return tail(filepath.Join(s.Dir, "verdaccio.log")) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strconv.Quote(string(b))
}
