package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/delivery"
)

// testDaemon is a daemon started in-process on a temp socket, with a
// client that speaks to it over that socket.
type testDaemon struct {
	*Daemon
	dir    string
	config string
	client *http.Client
}

func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDaemon writes cfg (with %s standing for the socket path) and starts
// a daemon on it.
func startDaemon(t *testing.T, cfg string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	// Unix socket paths are short; t.TempDir can be long.
	sockDir, err := os.MkdirTemp("", "sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "s.sock")
	path := filepath.Join(dir, "webhooks.yaml")
	writeConfig(t, path, fmt.Sprintf(cfg, sock))
	d, err := Start(context.Background(), Options{ConfigFile: path, DataDir: filepath.Join(dir, "data"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return &testDaemon{Daemon: d, dir: dir, config: path, client: unixClient(d.Socket())}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

func (td *testDaemon) do(t *testing.T, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://sidehook"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := td.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (td *testDaemon) post(t *testing.T, body string) (int, string) {
	return td.do(t, "POST", "/v1/events", "application/json", body)
}

const oneHook = `
socket: %s
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://127.0.0.1:1/leads
    delay: 1h
  - id: tasks
    events: [Task Complete]
    url: http://127.0.0.1:1/tasks
    delay: 1h
`

func TestPostEvents_Rejections(t *testing.T) {
	td := startDaemon(t, oneHook)
	big := `{"event":"Lead Creation","data":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name, contentType, body string
		status                  int
		msg                     string
	}{
		{"wrong content type", "text/plain", `{"event":"Lead Creation","data":{}}`, 415, "Content-Type must be application/json"},
		{"no content type", "", `{"event":"Lead Creation","data":{}}`, 415, "Content-Type must be application/json"},
		{"over the limit", "application/json", big, 413, "body is 1048611 bytes; the limit is 1048576 (limits.max_body)"},
		{"malformed", "application/json", `{"event":`, 400, "malformed JSON"},
		{"empty", "application/json", ``, 400, "empty body"},
		{"missing event", "application/json", `{"data":{}}`, 400, `missing "event"`},
		{"missing data", "application/json", `{"event":"Lead Creation"}`, 400, `missing "data"`},
		{"unknown event", "application/json", `{"event":"Lead Creaton","data":{}}`, 400, `unknown event "Lead Creaton" (did you mean "Lead Creation"?`},
		{"unknown field", "application/json", `{"event":"Lead Creation","data":{},"extra":1}`, 400, `unknown field "extra"`},
		{"long key", "application/json", `{"event":"Lead Creation","data":{},"id":"` + strings.Repeat("k", 300) + `"}`, 400, `"id" is 300 bytes; idempotency keys are at most 256 (limits.max_key)`},
		{"too deep", "application/json", `{"event":"Lead Creation","data":` + nested(65) + `}`, 400, "data nests 65 levels deep; the limit is 64 (limits.max_depth)"},
		{"too deep in array", "application/json", `[{"event":"Lead Creation","data":1},{"event":"Lead Creation","data":` + nested(70) + `}]`, 400, "event [1]: data nests 70 levels deep; the limit is 64 (limits.max_depth)"},
		{"deeper than JSON allows", "application/json", `{"event":"Lead Creation","data":` + nested(20000) + `}`, 400, "malformed JSON"},
		{"empty array", "application/json", `[]`, 400, "empty array"},
		{"one bad in array", "application/json", `[{"event":"Lead Creation","data":1},{"event":"Nope","data":2}]`, 400, "event [1]: unknown event"},
		{"array too long", "application/json", "[" + strings.Repeat(`{"event":"Lead Creation","data":1},`, 1000) + `{"event":"Lead Creation","data":1}]`, 413, "1001 events; the limit is 1000 in one array (limits.max_events)"},
		{"array of tiny values", "application/json", "[" + strings.Repeat(`0,`, 400000) + `0]`, 413, "400001 events; the limit is 1000"},
		{"text after the object", "application/json", `{"event":"Lead Creation","data":1}]`, 400, `malformed JSON: invalid character ']' after the value`},
		{"text after the array", "application/json", `[{"event":"Lead Creation","data":1}]}`, 400, `malformed JSON: invalid character '}' after the value`},
		{"two values", "application/json", `{"event":"Lead Creation","data":1} {}`, 400, "more than one value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := td.do(t, "POST", "/v1/events", tt.contentType, tt.body)
			if status != tt.status {
				t.Errorf("status = %d, want %d (body %s)", status, tt.status, body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("body = %s, want a JSON error containing %q", body, tt.msg)
			}
		})
	}
	// A rejected request writes nothing.
	if n := td.Engine().QueueDepth(); n != 0 {
		t.Errorf("queue depth after rejections = %d, want 0", n)
	}
	page, err := td.Engine().List(delivery.Query{})
	if err != nil || len(page.Deliveries) != 0 {
		t.Errorf("deliveries after rejections = %d (err %v), want 0", len(page.Deliveries), err)
	}
}

func TestPostEvents_Accepted(t *testing.T) {
	td := startDaemon(t, oneHook)
	status, body := td.post(t, `{"event":"Lead Creation","data":{"ProspectID":"4711"}}`)
	if status != 202 {
		t.Fatalf("status = %d, want 202: %s", status, body)
	}
	var acc delivery.Accepted
	if err := json.Unmarshal([]byte(body), &acc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(acc.ID, "evt_") || len(acc.Deliveries) != 1 || acc.Deliveries[0].Webhook != "crm-new-lead" {
		t.Fatalf("answer = %s, want an event id and one delivery for crm-new-lead", body)
	}
	if d := time.Until(acc.Deliveries[0].DueAt); d < 59*time.Minute || d > time.Hour {
		t.Errorf("due_at = %v from now, want the webhook's delay of 1h", d)
	}

	// An event by its code, and one that matches no webhook.
	status, body = td.post(t, `[{"event":"Task_Post_Complete","data":1},{"event":"lead update","data":null}]`)
	var arr []delivery.Accepted
	if status != 202 || json.Unmarshal([]byte(body), &arr) != nil || len(arr) != 2 {
		t.Fatalf("array answer = %d %s, want 202 with two results", status, body)
	}
	if len(arr[0].Deliveries) != 1 || arr[0].Deliveries[0].Webhook != "tasks" || len(arr[1].Deliveries) != 0 {
		t.Errorf("array answer = %s, want tasks for the first and no delivery for the second", body)
	}
	if n := td.Engine().QueueDepth(); n != 2 {
		t.Errorf("queue depth = %d, want 2", n)
	}
}

func TestPostEvents_IdempotentAcrossRestart(t *testing.T) {
	td := startDaemon(t, oneHook)
	ev := `{"event":"Lead Creation","id":"lead-4711-created","data":{"ProspectID":"4711"}}`
	s1, b1 := td.post(t, ev)
	s2, b2 := td.post(t, ev)
	if s1 != 202 || s2 != s1 || b2 != b1 {
		t.Fatalf("repeat answered %d %s, want the first answer %d %s", s2, b2, s1, b1)
	}
	// Restart on the same data directory.
	td.Shutdown(context.Background())
	d, err := Start(context.Background(), Options{ConfigFile: td.config, DataDir: filepath.Join(td.dir, "data"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	td2 := &testDaemon{Daemon: d, client: unixClient(d.Socket())}
	s3, b3 := td2.post(t, ev)
	if s3 != s1 || b3 != b1 {
		t.Fatalf("after restart answered %d %s, want the first answer %d %s", s3, b3, s1, b1)
	}
	if n := d.Engine().QueueDepth(); n != 1 {
		t.Errorf("queue depth = %d, want 1 (one delivery, not three)", n)
	}
}

func TestDaemon_DeliversAndShowsHistory(t *testing.T) {
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.URL.RawQuery+" "+string(b))
		w.Header().Set("X-Receiver", "yes")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer recv.Close()
	td := startDaemon(t, `
socket: %s
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: `+recv.URL+`/leads/add
    headers: { Authorization: "Bearer abc" }
`)
	status, body := td.post(t, `{"event":"Lead Creation","data":{"FirstName":"Ada"}}`)
	if status != 202 {
		t.Fatalf("post: %d %s", status, body)
	}
	var acc delivery.Accepted
	json.Unmarshal([]byte(body), &acc)
	id := acc.Deliveries[0].ID

	var dl delivery.Delivery
	deadline := time.Now().Add(10 * time.Second)
	for dl.Status != delivery.StatusSuccess && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		_, b := td.do(t, "GET", "/v1/deliveries/"+id, "", "")
		json.Unmarshal([]byte(b), &dl)
	}
	if dl.Status != delivery.StatusSuccess || len(dl.Attempts) != 1 {
		t.Fatalf("delivery = %+v, want success after one attempt", dl)
	}
	a := dl.Attempts[0]
	if a.Request.Headers["Authorization"] != "[redacted]" || a.Response.Body != `{"ok":true}` || a.Response.Headers["X-Receiver"] != "yes" {
		t.Errorf("attempt = %+v, want Authorization redacted and the response recorded", a)
	}
	if want := "entityType=Webhook&entityId=crm-new-lead&eventType=Lead_Post_Create {\"FirstName\":\"Ada\"}"; len(got) != 1 || got[0] != want {
		t.Errorf("receiver got %q, want [%q]", got, want)
	}

	// The webhook list shows the count; the per-webhook listing the delivery.
	_, b := td.do(t, "GET", "/v1/webhooks", "", "")
	var wl struct {
		Webhooks []struct {
			ID     string
			Events []string
			Counts delivery.Counts
		}
		ConfigError *string `json:"config_error"`
	}
	if err := json.Unmarshal([]byte(b), &wl); err != nil || len(wl.Webhooks) != 1 || wl.Webhooks[0].Counts.Success != 1 || wl.ConfigError != nil {
		t.Errorf("GET /v1/webhooks = %s, want crm-new-lead with one success and no config error", b)
	}
	if wl.Webhooks[0].Events[0] != "Lead Creation" {
		t.Errorf("events = %v, want [Lead Creation]", wl.Webhooks[0].Events)
	}
	_, b = td.do(t, "GET", "/v1/webhooks/crm-new-lead/deliveries?status=success", "", "")
	var page delivery.Page
	if json.Unmarshal([]byte(b), &page); len(page.Deliveries) != 1 || page.Deliveries[0].ID != id || page.NextCursor != nil {
		t.Errorf("listing = %s, want the one delivery and no next cursor", b)
	}
	if s, _ := td.do(t, "GET", "/v1/webhooks/nope/deliveries", "", ""); s != 404 {
		t.Errorf("unknown webhook listing = %d, want 404", s)
	}
	if s, _ := td.do(t, "GET", "/v1/deliveries?status=done", "", ""); s != 400 {
		t.Errorf("bad status filter = %d, want 400", s)
	}
	if s, _ := td.do(t, "GET", "/v1/deliveries?cursor=xyz", "", ""); s != 400 {
		t.Errorf("bad cursor = %d, want 400", s)
	}
	if s, _ := td.do(t, "GET", "/v1/deliveries/dlv_nope", "", ""); s != 404 {
		t.Errorf("unknown delivery = %d, want 404", s)
	}

	// Manual retry: one more attempt, marked manual.
	s, b := td.do(t, "POST", "/v1/deliveries/"+id+"/retry", "", "")
	json.Unmarshal([]byte(b), &dl)
	if s != 202 || len(dl.Attempts) != 2 || !dl.Attempts[1].Manual || dl.Status != delivery.StatusSuccess {
		t.Errorf("retry = %d %s, want 202 and a second, manual attempt", s, b)
	}

	// Metrics count the accepted event.
	_, m := td.do(t, "GET", "/metrics", "", "")
	if !strings.Contains(m, `sidehook_events_accepted_total{event_type="Lead_Post_Create"} 1`) {
		t.Errorf("metrics lack the accepted event:\n%s", grep(m, "sidehook_"))
	}
}

func TestReload_BrokenFileKeepsOldConfig(t *testing.T) {
	td := startDaemon(t, oneHook)
	good, _ := os.ReadFile(td.config)
	writeConfig(t, td.config, string(good)+"  - id: BAD ID\n    events: [Lead Creaton]\n")
	s, b := td.do(t, "POST", "/v1/reload", "", "")
	if s != 422 || !strings.Contains(b, "webhooks.yaml:") {
		t.Fatalf("reload of a broken file = %d %s, want 422 with file:line:col errors", s, b)
	}
	_, b = td.do(t, "GET", "/v1/webhooks", "", "")
	if !strings.Contains(b, `"crm-new-lead"`) || !strings.Contains(b, `did you mean \"Lead Creation\"`) {
		t.Errorf("GET /v1/webhooks = %s, want the old webhooks and the config error", b)
	}
	s, b = td.do(t, "GET", "/readyz", "", "")
	if s != 200 || !strings.Contains(b, "config_error") || strings.Contains(b, `"config_error":null`) {
		t.Errorf("readyz = %d %s, want 200 with the config error", s, b)
	}
	// Events keep flowing under the old config.
	if s, b := td.post(t, `{"event":"Lead Creation","data":{}}`); s != 202 {
		t.Errorf("post under the old config = %d %s", s, b)
	}
	writeConfig(t, td.config, strings.Replace(string(good), "delay: 1h\n", "delay: 2h\n", 1))
	s, b = td.do(t, "POST", "/v1/reload", "", "")
	if s != 200 {
		t.Fatalf("reload of the fixed file = %d %s", s, b)
	}
	if _, b = td.do(t, "GET", "/readyz", "", ""); !strings.Contains(b, `"config_error":null`) {
		t.Errorf("readyz after the fix = %s, want no config error", b)
	}
}

func TestSocket(t *testing.T) {
	t.Run("mode 0660", func(t *testing.T) {
		td := startDaemon(t, oneHook)
		fi, err := os.Stat(td.Socket())
		if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("socket mode = %v (err %v), want a socket with 0660", fi.Mode(), err)
		}
	})
	t.Run("stale socket replaced", func(t *testing.T) {
		dir, _ := os.MkdirTemp("", "sh")
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "s.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close() // the file stays, nobody listens: a crash's leftover
		l2, err := listenUnix(path)
		if err != nil {
			t.Fatalf("listen over a stale socket: %v", err)
		}
		l2.Close()
	})
	t.Run("live socket refused", func(t *testing.T) {
		td := startDaemon(t, oneHook)
		if _, err := listenUnix(td.Socket()); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("listen on a live socket: err = %v, want 'in use'", err)
		}
	})
	t.Run("non-socket refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		os.WriteFile(path, []byte("keep me"), 0o644)
		if _, err := listenUnix(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("err = %v, want 'not a socket'", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep me" {
			t.Errorf("the file was changed")
		}
	})
	t.Run("non-loopback listen refused", func(t *testing.T) {
		if _, err := listenLoopback("0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("err = %v, want a loopback-only refusal", err)
		}
		l, err := listenLoopback("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	})
}

func TestHealthAndReady(t *testing.T) {
	td := startDaemon(t, oneHook)
	if s, _ := td.do(t, "GET", "/healthz", "", ""); s != 200 {
		t.Errorf("healthz = %d", s)
	}
	if s, b := td.do(t, "GET", "/readyz", "", ""); s != 200 || !strings.Contains(b, `"ok":true`) {
		t.Errorf("readyz = %d %s", s, b)
	}
	if s, b := td.do(t, "GET", "/v1/events", "", ""); s != 200 || !strings.Contains(b, `"code":"Lead_Post_Create"`) {
		t.Errorf("GET /v1/events = %d %s", s, b)
	}
}

func grep(s, sub string) string {
	var out bytes.Buffer
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out.WriteString(line + "\n")
		}
	}
	return out.String()
}

// A body that ends before its Content-Length is a 400, and nothing of it
// is accepted.
func TestPostEvents_BodyShorterThanItsLength(t *testing.T) {
	td := startDaemon(t, oneHook)
	conn, err := net.Dial("unix", td.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"event":"Lead Creation","data":{}}`
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: sidehook\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body)+10, body)
	conn.(*net.UnixConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 400")) || !bytes.Contains(answer, []byte("unexpected EOF")) {
		t.Errorf("answer = %q, want 400 naming the unexpected EOF", answer)
	}
	if n := td.Engine().QueueDepth(); n != 0 {
		t.Errorf("queue depth = %d, want 0", n)
	}
}
