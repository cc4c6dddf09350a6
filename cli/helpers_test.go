package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sidehook/sidehook/cli"
)

// shortTempDir returns a fresh directory with a path short enough for a
// Unix socket (t.TempDir's can pass the 108-byte limit).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fakeDaemon serves canned answers on a real Unix socket and records the
// requests it gets.
type fakeDaemon struct {
	socket string
	mux    *http.ServeMux

	mu   sync.Mutex
	reqs []fakeRequest
}

type fakeRequest struct {
	Method, Path, Query, ContentType, Body string
}

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	return newFakeDaemonAt(t, filepath.Join(shortTempDir(t), "d.sock"))
}

func newFakeDaemonAt(t *testing.T, socket string) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{socket: socket, mux: http.NewServeMux()}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, fakeRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), string(body)})
	f.mu.Unlock()
	f.mux.ServeHTTP(w, r)
}

// answer makes the daemon reply to pattern ("GET /v1/webhooks") with a
// status and a JSON body.
func (f *fakeDaemon) answer(pattern string, status int, body string) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

// last returns the newest request.
func (f *fakeDaemon) last(t *testing.T) fakeRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the daemon got no request")
	}
	return f.reqs[len(f.reqs)-1]
}

// result is what a user sees of one command.
type result struct {
	stdout, stderr string
	err            error
}

// exitCode is the status the binary would exit with.
func (r result) exitCode() int {
	var exit cli.ExitError
	switch {
	case r.err == nil:
		return 0
	case errors.As(r.err, &exit):
		return exit.Code
	}
	return 1
}

// sidehook runs the command line in-process. env adds to an environment
// whose SIDEHOOK_CONFIG names a missing file, so the host's config is
// never read.
func sidehook(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return sidehookCtx(context.Background(), t, env, stdin, args...)
}

// sidehookCtx is sidehook with a context, for "run", which serves until it
// is cancelled.
func sidehookCtx(ctx context.Context, t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	vars := map[string]string{"SIDEHOOK_CONFIG": filepath.Join(t.TempDir(), "missing.yaml")}
	for k, v := range env {
		vars[k] = v
	}
	var stdout, stderr bytes.Buffer
	m := &cli.Main{
		Stdin:   strings.NewReader(stdin),
		Stdout:  &stdout,
		Stderr:  &stderr,
		Getenv:  func(k string) string { return vars[k] },
		Version: "test",
	}
	err := m.Run(ctx, args)
	return result{stdout.String(), stderr.String(), err}
}

// against runs a command with --socket pointing at f.
func (f *fakeDaemon) run(t *testing.T, args ...string) result {
	t.Helper()
	return sidehook(t, nil, "", append(args, "--socket", f.socket)...)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantOutput(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", what, got, want)
	}
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s: missing %q in:\n%s", what, want, got)
		}
	}
}
