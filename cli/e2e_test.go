package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/daemon"
)

// receiver is a webhook endpoint that records the bodies it gets.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			rc.mu.Lock()
			rc.bodies = append(rc.bodies, string(b))
			rc.mu.Unlock()
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) received() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.bodies...)
}

// startDaemon runs the real daemon in-process on a config in dir.
func startDaemon(t *testing.T, cfg, dir string) *daemon.Daemon {
	t.Helper()
	d, err := daemon.Start(context.Background(), daemon.Options{
		ConfigFile: cfg,
		DataDir:    filepath.Join(dir, "data"),
		Version:    "test",
		Getenv:     func(string) string { return "" },
	})
	if err != nil && strings.Contains(err.Error(), "not implemented") {
		t.Skipf("the daemon is not implemented yet: %v", err)
	}
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d
}

// eventually retries check until it returns true or 10s pass.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	rc := newReceiver(t)
	dir := shortTempDir(t)
	cfg := filepath.Join(dir, "webhooks.yaml")
	goodConfig := "socket: s.sock\nwebhooks:\n  - id: crm-new-lead\n    events: [Lead Creation]\n    url: " + rc.URL + "/leads\n"
	writeFile(t, cfg, goodConfig)
	env := map[string]string{"SIDEHOOK_CONFIG": cfg}
	cmd := func(stdin string, args ...string) result {
		t.Helper()
		return sidehook(t, env, stdin, args...)
	}

	r := cmd("", "validate")
	wantOutput(t, "validate", r.stdout, cfg+": ok, 1 webhook, 1 event type subscribed\n")

	d := startDaemon(t, cfg, dir)
	if got, want := d.Socket(), filepath.Join(dir, "s.sock"); got != want {
		t.Errorf("daemon socket %s, want %s (the config's relative socket, as the CLI finds it)", got, want)
	}

	// send, with the data on stdin; the CLI finds the socket via SIDEHOOK_CONFIG.
	r = cmd(`{"ProspectID": "4711"}`, "send", "--event", "Lead Creation", "--id", "lead-4711", "--data", "-")
	if r.err != nil {
		t.Fatalf("send: %v\n%s", r.err, r.stderr)
	}
	wantContains(t, "send", r.stdout, "accepted for 1 delivery:", "crm-new-lead")
	eventually(t, "the receiver to get the event", func() bool { return len(rc.received()) == 1 })
	wantOutput(t, "received body", rc.received()[0], `{"ProspectID": "4711"}`)

	// history, until the delivery is recorded as a success.
	eventually(t, "a successful delivery in history", func() bool {
		return strings.Contains(cmd("", "history", "crm-new-lead").stdout, "Success")
	})
	var page struct {
		Deliveries []struct{ ID string } `json:"deliveries"`
	}
	r = cmd("", "history", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Deliveries) != 1 {
		t.Fatalf("history --json: %v (%d deliveries), want 1:\n%s", err, len(page.Deliveries), r.stdout)
	}
	id := page.Deliveries[0].ID

	r = cmd("", "show", id)
	wantContains(t, "show", r.stdout, "Delivery    "+id, "Status      Success",
		"Attempt 1 at ", "POST "+rc.URL+"/leads?", `{"ProspectID": "4711"}`, "Response: 200 OK")

	r = cmd("", "webhooks")
	wantContains(t, "webhooks", r.stdout, "crm-new-lead  Lead Creation  "+rc.URL+"/leads  yes      0         1        0")

	r = cmd("", "retry", id)
	if r.exitCode() != 0 {
		t.Errorf("retry: exit %d (%v), want 0", r.exitCode(), r.err)
	}
	wantContains(t, "retry", r.stdout, id+": attempt 2 answered 200 OK in ", "status: Success")
	wantContains(t, "show after retry", cmd("", "show", id).stdout, "(manual retry)")

	r = cmd("", "ping", "crm-new-lead")
	wantContains(t, "ping", r.stdout, "crm-new-lead: HEAD "+rc.URL+"/leads: 200 OK in ")

	r = cmd("", "events")
	wantContains(t, "events", r.stdout, "Lead Creation  ", "Lead_Post_Create")
	wantOutput(t, "events stderr", r.stderr, "")

	r = cmd("", "reload")
	wantOutput(t, "reload", r.stdout, "config reloaded: 1 webhook\n")

	// A broken file is refused; the webhooks listing warns about it.
	writeFile(t, cfg, strings.Replace(goodConfig, "[Lead Creation]", "[Lead Creaton]", 1))
	r = cmd("", "reload")
	if r.exitCode() != 1 {
		t.Errorf("reload of a broken file: exit %d (%v), want 1", r.exitCode(), r.err)
	}
	wantContains(t, "reload refused", r.stdout, cfg+`:4:14: `, `unknown event "Lead Creaton"`)
	r = cmd("", "webhooks")
	wantContains(t, "webhooks stderr", r.stderr, "warning: running config differs from the file: "+cfg+":4:14: ")
	if r.exitCode() != 0 {
		t.Errorf("webhooks with a config error: exit %d, want 0", r.exitCode())
	}
}

func TestRunCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := shortTempDir(t)
	cfg := filepath.Join(dir, "webhooks.yaml")
	writeFile(t, cfg, "socket: s.sock\nwebhooks: []\n")
	env := map[string]string{"SIDEHOOK_CONFIG": cfg, "SIDEHOOK_LOG_LEVEL": "debug"}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- sidehookCtx(ctx, t, env, "", "run", "--data", filepath.Join(dir, "data"), "--log-format", "json")
	}()
	defer cancel()

	eventually(t, "the daemon to answer", func() bool {
		select {
		case r := <-done:
			if r.err != nil && strings.Contains(r.err.Error(), "not implemented") {
				t.Skipf("the daemon is not implemented yet: %v", r.err)
			}
			t.Fatalf("run returned early: %v\n%s", r.err, r.stderr)
		default:
		}
		return sidehook(t, env, "", "webhooks").err == nil
	})
	cancel()
	r := <-done
	if r.err != nil {
		t.Errorf("run: %v, want a clean stop", r.err)
	}
	wantContains(t, "logs", r.stderr, `"msg":"sidehook ready"`, `"msg":"sidehook stopped"`)
}
