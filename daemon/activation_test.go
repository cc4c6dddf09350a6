package daemon

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestActivationListeners(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	t.Run("none passed", func(t *testing.T) {
		ls, err := activationListeners(env(nil), os.Getpid(), listenFDsStart)
		if err != nil || ls != nil {
			t.Errorf("got %v, %v; want no listeners", ls, err)
		}
	})
	t.Run("for another process", func(t *testing.T) {
		ls, err := activationListeners(env(map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "1"}), os.Getpid(), listenFDsStart)
		if err != nil || ls != nil {
			t.Errorf("got %v, %v; want no listeners when LISTEN_PID is another process", ls, err)
		}
	})
	t.Run("a unix socket", func(t *testing.T) {
		path := sockPath(t)
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		f, err := l.(*net.UnixListener).File()
		if err != nil {
			t.Fatal(err)
		}
		fd, err := syscall.Dup(int(f.Fd())) // activationListeners closes what it takes
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ls, err := activationListeners(env(map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}), os.Getpid(), fd)
		if err != nil || len(ls) != 1 {
			t.Fatalf("got %v, %v; want one listener", ls, err)
		}
		defer ls[0].Close()
		if a := ls[0].Addr(); a.Network() != "unix" || a.String() != path {
			t.Errorf("listener on %s %s, want unix %s", a.Network(), a, path)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd, _ := syscall.Dup(int(f.Fd()))
		_, err = activationListeners(env(map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}), os.Getpid(), fd)
		if err == nil || !strings.Contains(err.Error(), "not a listening socket") {
			t.Errorf("err = %v, want 'not a listening socket'", err)
		}
	})
}

// TestSocketActivation runs the daemon in a child process that inherits
// a listening socket as fd 3, as systemd passes it, and talks to it there.
func TestSocketActivation(t *testing.T) {
	if os.Getenv("SIDEHOOK_TEST_ACTIVATED_CHILD") == "1" {
		// systemd sets LISTEN_PID after the fork; the child does it here.
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		err := Run(context.Background(), Options{ConfigFile: os.Getenv("SIDEHOOK_TEST_CONFIG"),
			DataDir: os.Getenv("SIDEHOOK_TEST_DATA"), Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	sock := sockPath(t)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // the socket unit owns the file
	f, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	dir := t.TempDir()
	configured := filepath.Join(filepath.Dir(sock), "configured.sock")
	path := writeTemp(t, "socket: "+configured+"\nwebhooks:\n  - id: activated\n    events: [Lead Creation]\n    url: http://127.0.0.1:1/x\n")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSocketActivation$")
	cmd.Env = append(os.Environ(), "SIDEHOOK_TEST_ACTIVATED_CHILD=1", "SIDEHOOK_TEST_CONFIG="+path,
		"SIDEHOOK_TEST_DATA="+filepath.Join(dir, "data"), "LISTEN_FDS=1", "LISTEN_FDNAMES=sidehook.socket")
	cmd.ExtraFiles = []*os.File{f} // fd 3
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v\n%s", err, out.String())
		}
	}()

	td := &testDaemon{client: unixClient(sock)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := newGet("/v1/webhooks")
		resp, err := td.client.Do(req)
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if !strings.Contains(b.String(), `"activated"`) {
				t.Fatalf("GET /v1/webhooks on the inherited socket = %s", b.String())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer on the inherited socket: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(configured); err == nil {
		t.Errorf("the configured socket %s was bound too; want only the inherited one", configured)
	}
}

func newGet(path string) (*http.Request, error) {
	return http.NewRequest("GET", "http://sidehook"+path, nil)
}
