package daemon

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/delivery"
)

// fakeSystemd is a NOTIFY_SOCKET listener in a short temp directory.
type fakeSystemd struct {
	path string
	conn *net.UnixConn
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeSystemd{path: path, conn: conn}
}

// next returns the next datagram that is not a watchdog ping or a status
// refresh (unless want says so), failing after a timeout.
func (s *fakeSystemd) next(t *testing.T, skipWatchdog bool) string {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(3 * time.Second)
	for {
		s.conn.SetReadDeadline(deadline)
		n, err := s.conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		msg := string(buf[:n])
		if skipWatchdog && msg == "WATCHDOG=1" {
			continue
		}
		return msg
	}
}

func startNotified(t *testing.T, env map[string]string) (*testDaemon, *fakeSystemd) {
	t.Helper()
	sd := newFakeSystemd(t)
	env["NOTIFY_SOCKET"] = sd.path
	dir := t.TempDir()
	sockDir, _ := os.MkdirTemp("", "sh")
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	path := filepath.Join(dir, "webhooks.yaml")
	writeConfig(t, path, "socket: "+filepath.Join(sockDir, "s.sock")+`
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://127.0.0.1:1/leads
    delay: 1h
`)
	d, err := Start(context.Background(), Options{ConfigFile: path, DataDir: filepath.Join(dir, "data"), Version: "test",
		Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return &testDaemon{Daemon: d, dir: dir, config: path, client: unixClient(d.Socket())}, sd
}

func TestNotify_Protocol(t *testing.T) {
	td, sd := startNotified(t, map[string]string{})

	if got := sd.next(t, true); got != "READY=1\nSTATUS=1 webhooks, 0 queued" {
		t.Errorf("first notification = %q, want READY=1 with a STATUS", got)
	}
	td.post(t, `{"event":"Lead Creation","data":{}}`)
	if err := td.Reload(); err != nil {
		t.Fatal(err)
	}
	got := sd.next(t, true)
	usec, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
	if n, err := strconv.ParseInt(usec, 10, 64); !ok || err != nil || n <= 0 || n > monotonicUsec() {
		t.Errorf("reload began with %q, want RELOADING=1 and MONOTONIC_USEC=<now>", got)
	}
	if got := sd.next(t, true); got != "READY=1\nSTATUS=1 webhooks, 1 queued" {
		t.Errorf("reload ended with %q, want READY=1 and the new STATUS", got)
	}

	// A refused file: still RELOADING then READY, and the STATUS says so.
	writeConfig(t, td.config, "webhooks: [\n")
	td.Reload()
	if got := sd.next(t, true); !strings.HasPrefix(got, "RELOADING=1\n") {
		t.Errorf("refused reload began with %q, want RELOADING=1", got)
	}
	if got := sd.next(t, true); !strings.HasPrefix(got, "READY=1\nSTATUS=1 webhooks, 1 queued; config file refused") {
		t.Errorf("refused reload ended with %q, want READY=1 and a STATUS naming the refusal", got)
	}

	td.Shutdown(context.Background())
	if got := sd.next(t, true); got != "STOPPING=1" {
		t.Errorf("shutdown sent %q, want STOPPING=1", got)
	}
}

func TestNotify_Watchdog(t *testing.T) {
	t.Run("half of WATCHDOG_USEC", func(t *testing.T) {
		_, sd := startNotified(t, map[string]string{"WATCHDOG_USEC": "200000", "WATCHDOG_PID": strconv.Itoa(os.Getpid())})
		if got := sd.next(t, false); !strings.HasPrefix(got, "READY=1") {
			t.Fatalf("first notification = %q, want READY=1", got)
		}
		start := time.Now()
		var pings int
		for pings < 4 {
			if got := sd.next(t, false); got == "WATCHDOG=1" {
				pings++
			}
		}
		// Four pings at 100ms: about 300-400ms (the first comes at once).
		if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
			t.Errorf("4 watchdog pings took %v, want about 300-400ms (every 100ms)", d)
		}
	})
	t.Run("another WATCHDOG_PID", func(t *testing.T) {
		_, sd := startNotified(t, map[string]string{"WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
		sd.next(t, false) // READY
		sd.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 512)
		if n, err := sd.conn.Read(buf); err == nil {
			t.Errorf("got %q, want no watchdog for another process's WATCHDOG_PID", buf[:n])
		}
	})
	t.Run("withheld while the engine is down", func(t *testing.T) {
		sd := newFakeSystemd(t)
		cfg, err := config.Load(writeTemp(t, "webhooks: []\n"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := delivery.Open(cfg, delivery.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		e.Start()
		d := &Daemon{engine: e, notify: newNotifier(sd.path), log: discardLogger(), bgCtx: context.Background()}
		d.feedWatchdog(time.Second)
		if got := sd.next(t, false); got != "WATCHDOG=1" {
			t.Fatalf("healthy engine: got %q, want WATCHDOG=1", got)
		}
		e.Close(context.Background())
		d.feedWatchdog(time.Second)
		sd.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 512)
		if n, err := sd.conn.Read(buf); err == nil {
			t.Errorf("closed engine: got %q, want no watchdog ping", buf[:n])
		}
	})
}

func TestNotify_NoSocket(t *testing.T) {
	n := newNotifier("")
	n.send("READY=1") // must not panic or block
	if n.enabled() {
		t.Error("notifier without NOTIFY_SOCKET is enabled")
	}
	if d := watchdogInterval(func(string) string { return "" }, 1); d != 0 {
		t.Errorf("watchdog interval without WATCHDOG_USEC = %v, want 0", d)
	}
	if d := watchdogInterval(func(k string) string { return map[string]string{"WATCHDOG_USEC": "30000000"}[k] }, 1); d != 15*time.Second {
		t.Errorf("watchdog interval for 30s = %v, want 15s", d)
	}
}

func writeTemp(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	writeConfig(t, path, body)
	return path
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
