package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sidehook/sidehook/delivery"
)

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// webhookIDs lists the ids GET /v1/webhooks shows, and its config_error.
func (td *testDaemon) webhookIDs(t *testing.T) ([]string, *string) {
	t.Helper()
	_, b := td.do(t, "GET", "/v1/webhooks", "", "")
	var wl struct {
		Webhooks []struct {
			ID  string
			URL string
		}
		ConfigError *string `json:"config_error"`
	}
	if err := json.Unmarshal([]byte(b), &wl); err != nil {
		t.Fatalf("GET /v1/webhooks: %v: %s", err, b)
	}
	var ids []string
	for _, w := range wl.Webhooks {
		ids = append(ids, w.ID)
	}
	return ids, wl.ConfigError
}

// waitWebhooks waits (within a second, the promise) until the daemon
// runs exactly the webhooks want.
func (td *testDaemon) waitWebhooks(t *testing.T, what string, want ...string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if got, _ = td.webhookIDs(t); strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: webhooks = %v after 1s, want %v", what, got, want)
}

// writeAtomic replaces a file by rename, as GitOps tools do, so that no
// reader sees it half written.
func writeAtomic(t *testing.T, path, body string) {
	t.Helper()
	writeConfig(t, path+".new", body)
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// sockPath returns a short socket path.
func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// hooks renders a config with one webhook per id, all on url.
func hooks(sock string, ids ...string) string {
	s := "socket: " + sock + "\nwebhooks:\n"
	for _, id := range ids {
		s += fmt.Sprintf("  - id: %s\n    events: [Lead Creation]\n    url: http://127.0.0.1:1/%s\n    delay: 1h\n", id, id)
	}
	return s
}

// startAt starts a daemon on an existing config path.
func startAt(t *testing.T, path string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	d, err := Start(context.Background(), Options{ConfigFile: path, DataDir: filepath.Join(dir, "data"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return &testDaemon{Daemon: d, dir: dir, config: path, client: unixClient(d.Socket())}
}

func TestReload_FileChanges(t *testing.T) {
	t.Run("write in place", func(t *testing.T) {
		sock := sockPath(t)
		path := writeTemp(t, hooks(sock, "a"))
		td := startAt(t, path)
		writeConfig(t, path, hooks(sock, "a", "b"))
		td.waitWebhooks(t, "after writing in place", "a", "b")
	})
	t.Run("editor rename over", func(t *testing.T) {
		sock := sockPath(t)
		path := writeTemp(t, hooks(sock, "a"))
		td := startAt(t, path)
		tmp := path + ".tmp~"
		writeConfig(t, tmp, hooks(sock, "b"))
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		td.waitWebhooks(t, "after rename", "b")
		writeConfig(t, tmp, hooks(sock, "c"))
		os.Rename(tmp, path)
		td.waitWebhooks(t, "after a second rename", "c")
	})
	t.Run("configmap symlink swap", func(t *testing.T) {
		sock := sockPath(t)
		dir := t.TempDir()
		v1 := filepath.Join(dir, "..2026_01_01_00_00_00.1")
		os.Mkdir(v1, 0o755)
		writeConfig(t, filepath.Join(v1, "webhooks.yaml"), hooks(sock, "a"))
		os.Symlink(filepath.Base(v1), filepath.Join(dir, "..data"))
		path := filepath.Join(dir, "webhooks.yaml")
		os.Symlink("..data/webhooks.yaml", path)
		td := startAt(t, path)

		v2 := filepath.Join(dir, "..2026_01_01_00_01_00.2")
		os.Mkdir(v2, 0o755)
		writeConfig(t, filepath.Join(v2, "webhooks.yaml"), hooks(sock, "a", "b"))
		os.Symlink(filepath.Base(v2), filepath.Join(dir, "..data_tmp"))
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(v1)
		td.waitWebhooks(t, "after the ..data swap", "a", "b")
	})
	t.Run("git checkout", func(t *testing.T) {
		if _, err := exec.LookPath("git"); err != nil {
			t.Skip("git not installed")
		}
		sock := sockPath(t)
		repo := t.TempDir()
		git := func(args ...string) {
			t.Helper()
			cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"}, args...)...)
			cmd.Dir = repo
			cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+repo)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
		path := filepath.Join(repo, "webhooks.yaml")
		git("init", "-q")
		writeConfig(t, path, hooks(sock, "a"))
		git("add", "webhooks.yaml")
		git("commit", "-q", "-m", "one")
		git("checkout", "-q", "-b", "two")
		writeConfig(t, path, hooks(sock, "a", "b", "c"))
		git("commit", "-q", "-am", "two")
		git("checkout", "-q", "main")

		td := startAt(t, path)
		td.waitWebhooks(t, "at start", "a")
		git("checkout", "-q", "two")
		td.waitWebhooks(t, "after git checkout", "a", "b", "c")
		git("checkout", "-q", "main")
		td.waitWebhooks(t, "after checking out main again", "a")
	})
	t.Run("drop-in added and removed", func(t *testing.T) {
		sock := sockPath(t)
		path := writeTemp(t, hooks(sock, "a"))
		td := startAt(t, path)
		dropIns := filepath.Join(filepath.Dir(path), "webhooks.d")
		os.Mkdir(dropIns, 0o755)
		extra := filepath.Join(dropIns, "extra.yaml")
		writeConfig(t, extra, "webhooks:\n  - id: extra\n    events: [Lead Creation]\n    url: http://127.0.0.1:1/x\n")
		td.waitWebhooks(t, "after adding a drop-in", "a", "extra")
		os.Remove(extra)
		td.waitWebhooks(t, "after removing it", "a")
	})
	t.Run("broken file then fixed", func(t *testing.T) {
		sock := sockPath(t)
		path := writeTemp(t, hooks(sock, "a"))
		td := startAt(t, path)
		writeConfig(t, path, hooks(sock, "a", "b")+"  - id: c\n    events: [Lead Creaton]\n    url: http://127.0.0.1:1/c\n")
		var cerr *string
		eventually(t, time.Second, "config_error shown", func() bool { _, cerr = td.webhookIDs(t); return cerr != nil })
		if !strings.Contains(*cerr, "webhooks.yaml:") || !strings.Contains(*cerr, "Lead Creaton") {
			t.Errorf("config_error = %q, want file:line:col and the problem", *cerr)
		}
		if ids, _ := td.webhookIDs(t); strings.Join(ids, ",") != "a" {
			t.Errorf("webhooks = %v, want the previous config's [a]", ids)
		}
		if s, b := td.do(t, "GET", "/readyz", "", ""); s != 200 || !strings.Contains(b, "Lead Creaton") {
			t.Errorf("readyz = %d %s, want 200 with the config error", s, b)
		}
		_, m := td.do(t, "GET", "/metrics", "", "")
		if v := metricValue(m, "sidehook_config_stale"); v != 1 {
			t.Errorf("sidehook_config_stale = %v, want 1", v)
		}
		if v := metricValue(m, "sidehook_config_reloads_total", `result="error"`); v != 1 {
			t.Errorf("reloads{error} = %v, want 1", v)
		}

		writeConfig(t, path, hooks(sock, "a", "b"))
		td.waitWebhooks(t, "after the fix", "a", "b")
		if _, cerr := td.webhookIDs(t); cerr != nil {
			t.Errorf("config_error after the fix = %q, want null", *cerr)
		}
		_, m = td.do(t, "GET", "/metrics", "", "")
		if v := metricValue(m, "sidehook_config_stale"); v != 0 {
			t.Errorf("sidehook_config_stale after the fix = %v, want 0", v)
		}
	})
	t.Run("same bytes are not reloaded", func(t *testing.T) {
		sock := sockPath(t)
		body := hooks(sock, "a")
		path := writeTemp(t, body)
		td := startAt(t, path)
		for range 3 {
			writeConfig(t, path, body)
			os.Chtimes(path, time.Now(), time.Now())
		}
		time.Sleep(400 * time.Millisecond)
		_, m := td.do(t, "GET", "/metrics", "", "")
		if v := metricValue(m, "sidehook_config_reloads_total", `result="ok"`); v != 0 {
			t.Errorf("reloads after rewriting the same bytes = %v, want 0", v)
		}
	})
}

func TestReload_SIGHUP(t *testing.T) {
	// The URL comes from a file the watcher does not watch: only the
	// signal can pick up its change.
	sock := sockPath(t)
	urlFile := filepath.Join(t.TempDir(), "url")
	writeConfig(t, urlFile, "http://127.0.0.1:1/one\n")
	path := writeTemp(t, "socket: "+sock+"\nwebhooks:\n  - id: a\n    events: [Lead Creation]\n    url: ${file:"+urlFile+"}\n")

	// Keep SIGHUP from killing the test binary should it come early.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigFile: path, DataDir: filepath.Join(t.TempDir(), "data"), Version: "test"})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	td := &testDaemon{client: unixClient(sock)}
	url := func() string {
		req, _ := http.NewRequest("GET", "http://sidehook/v1/webhooks", nil)
		resp, err := td.client.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var wl struct{ Webhooks []struct{ URL string } }
		json.NewDecoder(resp.Body).Decode(&wl)
		if len(wl.Webhooks) != 1 {
			return ""
		}
		return wl.Webhooks[0].URL
	}
	eventually(t, 5*time.Second, "daemon up", func() bool { return url() == "http://127.0.0.1:1/one" })
	time.Sleep(50 * time.Millisecond) // Run registers its signals right after Start

	writeConfig(t, urlFile, "http://127.0.0.1:1/two\n")
	time.Sleep(300 * time.Millisecond)
	if got := url(); got != "http://127.0.0.1:1/one" {
		t.Fatalf("URL changed to %q without a signal", got)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually(t, time.Second, "SIGHUP applies the new URL", func() bool { return url() == "http://127.0.0.1:1/two" })
}

// receiver is an httptest server that records what it gets.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	code func(n int) int // answer to the n-th request (from 0)
}

type received struct {
	path, eventType string
	body            string
}

func newReceiver(t *testing.T, code func(n int) int) *receiver {
	r := &receiver{code: code}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.got)
		r.got = append(r.got, received{path: req.URL.Path, eventType: req.URL.Query().Get("eventType"), body: string(b)})
		r.mu.Unlock()
		status := 200
		if r.code != nil {
			status = r.code(n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func TestReload_QueuedDeliveries(t *testing.T) {
	t.Run("a fixed URL heals queued deliveries", func(t *testing.T) {
		recv := newReceiver(t, nil)
		sock := sockPath(t)
		tmpl := "socket: " + sock + `
webhooks:
  - id: a
    events: [Lead Creation]
    url: %s
    retry: { attempts: 50, backoff: 50ms, max_backoff: 100ms }
`
		path := writeTemp(t, fmt.Sprintf(tmpl, "http://127.0.0.1:1/dead"))
		td := startAt(t, path)
		for i := range 3 {
			td.post(t, fmt.Sprintf(`{"event":"Lead Creation","data":{"n":%d}}`, i))
		}
		eventually(t, 5*time.Second, "failed attempts", func() bool {
			page, _ := td.Engine().List(delivery.Query{Webhook: "a"})
			for _, d := range page.Deliveries {
				if d.AttemptCount < 2 {
					return false
				}
			}
			return len(page.Deliveries) == 3
		})
		if c := td.Engine().Counts("a"); c.InQueue != 3 {
			t.Fatalf("counts = %+v, want 3 in queue while the URL is dead", c)
		}
		writeConfig(t, path, fmt.Sprintf(tmpl, recv.URL+"/fixed"))
		eventually(t, 3*time.Second, "deliveries arrive at the fixed URL", func() bool { return td.Engine().Counts("a").Success == 3 })
		for _, r := range recv.received() {
			if r.path != "/fixed" {
				t.Errorf("receiver got %s, want /fixed", r.path)
			}
		}
	})
	t.Run("a paused webhook keeps its deliveries until resumed", func(t *testing.T) {
		recv := newReceiver(t, nil)
		sock := sockPath(t)
		tmpl := "socket: " + sock + `
webhooks:
  - id: a
    events: [Lead Creation]
    url: ` + recv.URL + `/a
    enabled: %v
`
		path := writeTemp(t, fmt.Sprintf(tmpl, false))
		td := startAt(t, path)
		for i := range 3 {
			td.post(t, fmt.Sprintf(`{"event":"Lead Creation","data":{"n":%d}}`, i))
		}
		time.Sleep(300 * time.Millisecond)
		if n := len(recv.received()); n != 0 {
			t.Fatalf("a paused webhook sent %d requests", n)
		}
		if c := td.Engine().Counts("a"); c.InQueue != 3 {
			t.Fatalf("counts while paused = %+v, want 3 in queue", c)
		}
		_, m := td.do(t, "GET", "/metrics", "", "")
		if v := metricValue(m, "sidehook_webhook_queue_depth", `webhook="a"`); v != 3 {
			t.Errorf("sidehook_webhook_queue_depth{a} = %v, want 3", v)
		}
		if v := metricValue(m, "sidehook_webhook_oldest_due_age_seconds", `webhook="a"`); v < 0.2 {
			t.Errorf("oldest due age while paused = %v, want at least 0.2s", v)
		}
		writeConfig(t, path, fmt.Sprintf(tmpl, true))
		eventually(t, 2*time.Second, "resumed deliveries arrive", func() bool { return td.Engine().Counts("a").Success == 3 })
	})
	t.Run("a removed webhook fails its queued deliveries", func(t *testing.T) {
		sock := sockPath(t)
		path := writeTemp(t, hooks(sock, "a", "gone"))
		td := startAt(t, path)
		for i := range 2 {
			td.post(t, fmt.Sprintf(`{"event":"Lead Creation","data":{"n":%d}}`, i))
		}
		if c := td.Engine().Counts("gone"); c.InQueue != 2 {
			t.Fatalf("counts = %+v, want 2 queued", c)
		}
		writeConfig(t, path, hooks(sock, "a"))
		eventually(t, 2*time.Second, "deliveries of the removed webhook fail", func() bool { return td.Engine().Counts("gone").Failure == 2 })
		page, err := td.Engine().List(delivery.Query{Webhook: "gone"})
		if err != nil || len(page.Deliveries) != 2 {
			t.Fatalf("list: %v %+v", err, page)
		}
		d, err := td.Engine().Get(page.Deliveries[0].ID)
		if err != nil || len(d.Attempts) == 0 || !strings.Contains(d.Attempts[len(d.Attempts)-1].Error, "removed") {
			t.Errorf("delivery = %+v (err %v), want a last attempt saying the webhook was removed", d, err)
		}
		if c := td.Engine().Counts("a"); c.InQueue != 2 {
			t.Errorf("the remaining webhook's counts = %+v, want its 2 deliveries still queued", c)
		}
	})
}

// TestReload_UnderLoad posts events steadily while the webhook's
// subscription flips between two event types 20 times. Every
// acknowledged delivery must arrive, and a delivery may exist only if
// its event type was subscribed by a config in force while it was
// ingested.
func TestReload_UnderLoad(t *testing.T) {
	recv := newReceiver(t, nil)
	sock := sockPath(t)
	types := []string{"Lead Creation", "Task Complete"}
	codes := []string{"Lead_Post_Create", "Task_Post_Complete"}
	render := func(gen int) string {
		return "socket: " + sock + "\nwebhooks:\n  - id: w\n    events: [" + types[gen%2] + "]\n    url: " + recv.URL + "/w\n" +
			"    concurrency: 8\n  - id: all\n    events: [Lead Creation, Task Complete]\n    url: " + recv.URL + "/all\n    concurrency: 8\n"
	}
	path := writeTemp(t, render(0))
	td := startAt(t, path)

	// Each generation's time in force: from the start of the write that
	// begins it (the watcher may load it at once) to the end of the
	// Reload that ends it.
	type span struct{ from, to time.Time }
	var mu sync.Mutex
	gens := []span{{from: time.Time{}, to: time.Time{}}}

	type posted struct {
		typ        int
		start, end time.Time
		deliveries []delivery.Planned
		n          int
	}
	var (
		pmu   sync.Mutex
		posts []posted
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := w*100000 + i
				typ := n % 2
				start := time.Now()
				req, _ := http.NewRequest("POST", "http://sidehook/v1/events",
					strings.NewReader(fmt.Sprintf(`{"event":%q,"data":{"n":%d}}`, types[typ], n)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := td.client.Do(req)
				if err != nil {
					t.Errorf("post: %v", err)
					return
				}
				var acc delivery.Accepted
				json.NewDecoder(resp.Body).Decode(&acc)
				resp.Body.Close()
				if resp.StatusCode != 202 {
					t.Errorf("post answered %d", resp.StatusCode)
					return
				}
				pmu.Lock()
				posts = append(posts, posted{typ: typ, start: start, end: time.Now(), deliveries: acc.Deliveries, n: n})
				pmu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	// Between two reloads, at least 5 events go in.
	postsSince := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			pmu.Lock()
			got := len(posts)
			pmu.Unlock()
			if got >= n+5 {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	for gen := 1; gen <= 20; gen++ {
		pmu.Lock()
		n := len(posts)
		pmu.Unlock()
		postsSince(n)
		from := time.Now()
		writeAtomic(t, path, render(gen))
		if err := td.Reload(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		gens[gen-1].to = time.Now()
		gens = append(gens, span{from: from})
		mu.Unlock()
	}
	time.Sleep(30 * time.Millisecond)
	close(stop)
	wg.Wait()
	gens[len(gens)-1].to = time.Now().Add(time.Hour)

	// What may have been in force during [start, end]: every generation
	// whose span overlaps it.
	subscribed := func(p posted) (some, all bool) {
		all = true
		for g, s := range gens {
			if s.from.After(p.end) || (g < len(gens)-1 && s.to.Before(p.start)) {
				continue
			}
			if g%2 == p.typ {
				some = true
			} else {
				all = false
			}
		}
		return some, all
	}
	wantW := 0
	var bodies = map[string]string{} // body -> webhook path expected
	for _, p := range posts {
		some, all := subscribed(p)
		toW, toAll := false, false
		for _, d := range p.deliveries {
			switch d.Webhook {
			case "w":
				toW = true
			case "all":
				toAll = true
			}
		}
		if !toAll {
			t.Errorf("event %d: no delivery for the webhook subscribed to everything", p.n)
		}
		switch {
		case toW && !some:
			t.Errorf("event %d (%s) got a delivery for w, but no config in force while it was posted subscribed w to it", p.n, types[p.typ])
		case !toW && all:
			t.Errorf("event %d (%s) got no delivery for w, though every config in force subscribed w to it", p.n, types[p.typ])
		}
		if toW {
			wantW++
			bodies[fmt.Sprintf(`{"n":%d}`, p.n)+"/w"] = codes[p.typ]
		}
		bodies[fmt.Sprintf(`{"n":%d}`, p.n)+"/all"] = codes[p.typ]
	}
	if len(posts) < 100 {
		t.Errorf("only %d events posted during the reloads", len(posts))
	}
	want := len(posts) + wantW
	eventually(t, 20*time.Second, "every acknowledged delivery arrives", func() bool { return len(recv.received()) >= want })
	seen := map[string]bool{}
	for _, r := range recv.received() {
		k := r.body + r.path
		code, ok := bodies[k]
		switch {
		case !ok:
			t.Errorf("receiver got %s at %s, which no acknowledged delivery carries", r.body, r.path)
		case code != r.eventType:
			t.Errorf("receiver got %s at %s as %s, want %s", r.body, r.path, r.eventType, code)
		}
		seen[k] = true
	}
	if len(seen) != len(bodies) {
		t.Errorf("receiver saw %d distinct deliveries, want %d", len(seen), len(bodies))
	}
	t.Logf("%d events, %d deliveries, %d reloads", len(posts), want, len(gens)-1)
}

func TestHandshake(t *testing.T) {
	var heads sync.Map
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Store(r.URL.Path, r.Header.Get("X-Api-Key"))
		}
		w.WriteHeader(204)
	}))
	defer recv.Close()
	sock := sockPath(t)
	tmpl := "socket: " + sock + `
webhooks:
  - id: shaken
    events: [Lead Creation]
    url: %s
    headers: { X-Api-Key: k1 }
    handshake: true
  - id: plain
    events: [Lead Creation]
    url: ` + recv.URL + `/plain
`
	path := writeTemp(t, fmt.Sprintf(tmpl, recv.URL+"/shaken"))
	td := startAt(t, path)
	type hs struct {
		Status    int     `json:"status"`
		LatencyMS float64 `json:"latency_ms"`
		Error     string  `json:"error"`
		At        time.Time
	}
	get := func() map[string]*hs {
		_, b := td.do(t, "GET", "/v1/webhooks", "", "")
		var wl struct {
			Webhooks []struct {
				ID        string
				Handshake *hs `json:"handshake"`
			}
		}
		json.Unmarshal([]byte(b), &wl)
		out := map[string]*hs{}
		for _, w := range wl.Webhooks {
			out[w.ID] = w.Handshake
		}
		return out
	}
	eventually(t, 2*time.Second, "handshake at start", func() bool { return get()["shaken"] != nil })
	got := get()
	if h := got["shaken"]; h.Status != 204 || h.Error != "" || h.At.IsZero() {
		t.Errorf("handshake = %+v, want status 204 and a time", h)
	}
	if got["plain"] != nil {
		t.Errorf("webhook without handshake: true shows %+v, want null", got["plain"])
	}
	if k, _ := heads.Load("/shaken"); k != "k1" {
		t.Errorf("HEAD carried X-Api-Key %v, want the webhook's header", k)
	}
	if _, ok := heads.Load("/plain"); ok {
		t.Error("a webhook without handshake: true was pinged")
	}

	// Every load pings again: a dead URL shows its error.
	writeConfig(t, path, fmt.Sprintf(tmpl, "http://127.0.0.1:1/dead"))
	eventually(t, 2*time.Second, "handshake after reload", func() bool {
		h := get()["shaken"]
		return h != nil && h.Error != ""
	})
	if h := get()["shaken"]; h.Status != 0 || !strings.Contains(h.Error, "refused") {
		t.Errorf("handshake with a dead URL = %+v, want a connection error", h)
	}
}
