package delivery

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

// receiver is a real HTTP server that records what it gets.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
	got  chan received
	// answer decides the status of the n-th request (from 1).
	answer func(n int, w http.ResponseWriter) int
	// reply, when set, gives the body of the n-th answer.
	reply func(n int) string
}

type received struct {
	at     time.Time
	method string
	query  string
	header http.Header
	body   string
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter) int) *receiver {
	t.Helper()
	return newReplyingReceiver(t, answer, nil)
}

// newReplyingReceiver is newReceiver whose answers carry reply(n) as body.
func newReplyingReceiver(t *testing.T, answer func(n int, w http.ResponseWriter) int, reply func(n int) string) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan received, 10000), answer: answer, reply: reply}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rq := received{at: time.Now(), method: r.Method, query: r.URL.RawQuery, header: r.Header.Clone(), body: string(b)}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, rq)
		n := len(rc.reqs)
		rc.mu.Unlock()
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(n, w)
		}
		w.WriteHeader(status)
		if rc.reply != nil {
			io.WriteString(w, rc.reply(n))
		}
		rc.got <- rq
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	var out []received
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case r := <-rc.got:
			out = append(out, r)
		case <-timeout:
			t.Fatalf("receiver got %d requests, want %d", len(out), n)
		}
	}
	return out
}

// hook returns a webhook with the documented defaults.
func hook(id, url string, events ...string) *config.Webhook {
	return &config.Webhook{
		ID: id, Type: config.TypeHTTP, Events: events, URL: url,
		ContentType: config.ContentJSON, Timeout: 5 * time.Second, Concurrency: 4,
		Retry:   config.Retry{Attempts: 3, Backoff: 20 * time.Millisecond, MaxBackoff: time.Second},
		Enabled: true, BatchOff: true,
	}
}

func testConfig(hooks ...*config.Webhook) *config.Config {
	return &config.Config{File: "test.yaml", HistoryRetention: time.Hour, Catalog: config.NewCatalog(), Webhooks: hooks}
}

func openEngine(t *testing.T, dir string, cfg *config.Config) *Engine {
	t.Helper()
	e, err := Open(cfg, Options{Dir: dir, UserAgent: "sidehook/test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func lookup(t *testing.T, name string) config.EventType {
	et, ok := config.NewCatalog().Lookup(name)
	if !ok {
		t.Fatalf("no event %q", name)
	}
	return et
}

func ingest(t *testing.T, e *Engine, name, key, data string) Accepted {
	t.Helper()
	acc, err := e.Ingest(context.Background(), []Incoming{{Type: lookup(t, name), Key: key, Data: json.RawMessage(data)}})
	if err != nil {
		t.Fatal(err)
	}
	return acc[0]
}

// waitStatus polls until the delivery reaches want.
func waitStatus(t *testing.T, e *Engine, id string, want Status) Delivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := e.Get(id)
		if err == nil && d.Status == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: status %q, want %q (err %v)", id, d.Status, want, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEngine_DeliversJSONByteForByte(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := hook("crm-new-lead", rc.URL+"/leads/add?token=abc", "Lead_Post_Create")
	wh.Headers = []config.Header{{Name: "X-Api-Key", Value: "s3cret", Secret: true}, {Name: "X-Team", Value: "sales"}}
	e := openEngine(t, t.TempDir(), testConfig(wh))

	data := `{"ProspectID": "4711",  "Amount": 12.50, "FirstName":"Ada"}`
	acc := ingest(t, e, "Lead Creation", "", data)
	if len(acc.Deliveries) != 1 || acc.Deliveries[0].Webhook != "crm-new-lead" {
		t.Fatalf("deliveries = %+v, want one for crm-new-lead", acc.Deliveries)
	}
	got := rc.wait(t, 1)[0]
	if got.body != data {
		t.Errorf("body = %q, want %q", got.body, data)
	}
	if want := "token=abc&entityType=Webhook&entityId=crm-new-lead&eventType=Lead_Post_Create"; got.query != want {
		t.Errorf("query = %q, want %q", got.query, want)
	}
	for name, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "sidehook/test", "X-Api-Key": "s3cret", "X-Team": "sales"} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if len(d.Attempts) != 1 || d.Attempts[0].Response == nil || d.Attempts[0].Response.Status != 200 {
		t.Fatalf("attempts = %+v, want one answered 200", d.Attempts)
	}
	h := d.Attempts[0].Request.Headers
	if h["X-Api-Key"] != "[redacted]" || h["X-Team"] != "sales" {
		t.Errorf("recorded headers = %v, want X-Api-Key redacted and X-Team shown", h)
	}
	if d.Attempts[0].Request.Body != data || d.EventIDs[0] != acc.ID {
		t.Errorf("recorded body %q events %v, want %q and [%s]", d.Attempts[0].Request.Body, d.EventIDs, data, acc.ID)
	}
	if c := e.Counts("crm-new-lead"); c != (Counts{Success: 1}) {
		t.Errorf("counts = %+v, want one success", c)
	}
}
