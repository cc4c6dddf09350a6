package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/delivery"
)

// harness is a real engine on a temp store, a receiver, and the pages
// served by an httptest server.
type harness struct {
	t      *testing.T
	engine *delivery.Engine
	ui     *httptest.Server
	recv   *httptest.Server
	client *http.Client

	mu    sync.Mutex
	calls map[string]int
}

// The receiver's paths: /ok answers 200 with JSON, /fail 500 until
// /fail is switched to healthy, /evil answers hostile markup.
func newHarness(t *testing.T, hooks ...*config.Webhook) *harness {
	t.Helper()
	hs := &harness{t: t, calls: map[string]int{}}
	hs.recv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hs.mu.Lock()
		hs.calls[r.URL.Path]++
		n := hs.calls[r.URL.Path]
		hs.mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"received":true,"n":%d}`, n)
		case "/flaky":
			if n == 1 {
				http.Error(w, "boom: database locked", http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, `{"received":true}`)
		case "/evil":
			w.Header().Set("X-Evil", `<img src=x onerror=alert(3)>`)
			fmt.Fprint(w, `<script>alert(2)</script>`)
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hs.recv.Close)
	for _, h := range hooks {
		h.URL = hs.recv.URL + h.URL
	}
	cfg := &config.Config{File: "test.yaml", HistoryRetention: time.Hour, Catalog: config.NewCatalog(), Webhooks: hooks}
	e, err := delivery.Open(cfg, delivery.Options{Dir: t.TempDir(), UserAgent: "sidehook/test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	hs.engine = e
	hs.ui = httptest.NewServer(New(e, Options{Version: "test"}))
	t.Cleanup(hs.ui.Close)
	hs.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return hs
}

// hook is a webhook on the receiver path p, one attempt, no batching.
func hook(id, p string, events ...string) *config.Webhook {
	return &config.Webhook{
		ID: id, Description: "Hook " + id, Events: events, URL: p, ContentType: config.ContentJSON,
		Timeout: 5 * time.Second, Concurrency: 4, Enabled: true, BatchOff: true,
		Retry:   config.Retry{Attempts: 1, Backoff: 20 * time.Millisecond, MaxBackoff: time.Second},
		Headers: []config.Header{{Name: "X-Api-Key", Value: "hunter2", Secret: true}, {Name: "X-Team", Value: "sales"}},
	}
}

// send ingests one event and returns the ids of its deliveries.
func (hs *harness) send(name, key, data string) []string {
	hs.t.Helper()
	et, ok := hs.engine.Config().Catalog.Lookup(name)
	if !ok {
		hs.t.Fatalf("no event %q", name)
	}
	acc, err := hs.engine.Ingest(context.Background(), []delivery.Incoming{{Type: et, Key: key, Data: json.RawMessage(data)}})
	if err != nil {
		hs.t.Fatal(err)
	}
	var ids []string
	for _, p := range acc[0].Deliveries {
		ids = append(ids, p.ID)
	}
	return ids
}

// settle waits until the delivery has left the queue.
func (hs *harness) settle(id string) delivery.Delivery {
	hs.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := hs.engine.Get(id)
		if err == nil && d.Status != delivery.StatusInQueue {
			return d
		}
		if time.Now().After(deadline) {
			hs.t.Fatalf("delivery %s still %q after 10s (err %v)", id, d.Status, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (hs *harness) get(path string) (int, string) {
	hs.t.Helper()
	resp, err := hs.client.Get(hs.ui.URL + path)
	if err != nil {
		hs.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (hs *harness) mustGet(path string) string {
	hs.t.Helper()
	code, body := hs.get(path)
	if code != http.StatusOK {
		hs.t.Fatalf("GET %s: status %d, want 200\n%s", path, code, body)
	}
	return body
}

// rowIDs returns the delivery ids of a page's history rows, in order.
func rowIDs(page string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`data-delivery="(dlv_[0-9a-v]+)"`).FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestPages_StatusCodes(t *testing.T) {
	hs := newHarness(t, hook("crm", "/ok", "Lead_Post_Create"))
	id := hs.send("Lead Creation", "", `{"a":1}`)[0]
	hs.settle(id)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/", 200},
		{"/webhooks/crm", 200},
		{"/webhooks/crm?status=success&event_type=Lead_Post_Create", 200},
		{"/webhooks/nope", 404},
		{"/webhooks/crm?status=done", 400},
		{"/webhooks/crm?cursor=nonsense", 400},
		{"/webhooks/crm?limit=0", 400},
		{"/deliveries/" + id, 200},
		{"/deliveries/dlv_00000000000000000000000000", 404},
		{"/deliveries/not-an-id", 404},
		{"/ui/app.css", 200},
		{"/ui/app.js", 200},
		{"/ui/nope.css", 404},
		{"/nowhere", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if got, body := hs.get(tc.path); got != tc.want {
				t.Errorf("GET %s: got %d, want %d\n%.400s", tc.path, got, tc.want, body)
			}
		})
	}
}

func TestPages_SecurityHeaders(t *testing.T) {
	hs := newHarness(t, hook("crm", "/ok", "Lead_Post_Create"))
	resp, err := hs.client.Get(hs.ui.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for name, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Cache-Control":          "no-store",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q: want script-src 'self' and nothing inline", csp)
	}
	resp, err = hs.client.Get(hs.ui.URL + "/ui/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js Content-Type %q, want text/javascript", ct)
	}
}

func TestIndex_WebhooksWithCountsAndLastHour(t *testing.T) {
	hs := newHarness(t, hook("crm", "/ok", "Lead_Post_Create"), hook("tasks", "/fail", "Task_Post_Complete"))
	var ids []string
	for i := range 3 {
		ids = append(ids, hs.send("Lead Creation", "", fmt.Sprintf(`{"n":%d}`, i))...)
	}
	ids = append(ids, hs.send("Task Complete", "", `{"task":1}`)...)
	for _, id := range ids {
		hs.settle(id)
	}
	page := hs.mustGet("/")
	for _, want := range []string{
		`href="/webhooks/crm"`, "Hook crm", "Lead Creation", hs.recv.URL + "/ok", "Enabled",
		`href="/webhooks/crm?status=success" title="Success">3</a>`,
		`href="/webhooks/tasks?status=failure" title="Failure">1</a>`,
		`title="3 of 3 attempts succeeded">100%</span>`,
		`title="0 of 1 attempt succeeded">0.0%</span>`,
		`<svg class="spark"`, "3 deliveries in the last hour",
		" ms <span class=\"muted\">/</span> ",
		`data-refresh>Refresh</a>`, // without JavaScript
	} {
		if !strings.Contains(page, want) {
			t.Errorf("webhooks page lacks %q", want)
		}
	}
	if strings.Contains(page, "hunter2") {
		t.Error("webhooks page shows a secret header value")
	}
}

func TestComputeStats_Percentiles(t *testing.T) {
	durs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 100}
	if got := percentile(durs, 0.5); got != 5 {
		t.Errorf("p50: got %v, want 5", got)
	}
	if got := percentile(durs, 0.99); got != 100 {
		t.Errorf("p99: got %v, want 100", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("p50 of nothing: got %v, want 0", got)
	}
	for ms, want := range map[float64]string{0.42: "0.4 ms", 12.4: "12 ms", 1500: "1.50 s", 125000: "2m5s"} {
		if got := formatMS(ms); got != want {
			t.Errorf("formatMS(%v): got %q, want %q", ms, got, want)
		}
	}
}

func TestWebhookPage_Filters(t *testing.T) {
	wh := hook("crm", "/flaky", "Lead_Post_Create", "Lead_Post_Update")
	hs := newHarness(t, wh)
	failed := hs.send("Lead Creation", "lead-1", `{"n":1}`)[0]
	hs.settle(failed)
	created := hs.send("Lead Creation", "lead-2", `{"n":2}`)[0]
	updated := hs.send("Lead Update", "lead-3", `{"n":3}`)[0]
	hs.settle(created)
	hs.settle(updated)

	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"all newest first", "", []string{updated, created, failed}},
		{"status failure", "?status=failure", []string{failed}},
		{"status success", "?status=success", []string{updated, created}},
		{"event type", "?event_type=Lead_Post_Create", []string{created, failed}},
		{"event type and status", "?event_type=Lead_Post_Create&status=success", []string{created}},
		{"search by delivery id", "?q=" + created, []string{created}},
		{"search by idempotency key", "?q=lead-3", []string{updated}},
		{"search and status mismatch", "?q=lead-3&status=failure", nil},
		{"search unknown", "?q=nothing-like-it", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := hs.mustGet("/webhooks/crm" + tc.query)
			if got := rowIDs(page); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("rows: got %v, want %v", got, tc.want)
			}
		})
	}
	d, err := hs.engine.Get(created)
	if err != nil {
		t.Fatal(err)
	}
	page := hs.mustGet("/webhooks/crm?q=" + url.QueryEscape(d.EventIDs[0]))
	if got := rowIDs(page); len(got) != 1 || got[0] != created {
		t.Errorf("search by event id %s: got %v, want [%s]", d.EventIDs[0], got, created)
	}
	page = hs.mustGet("/webhooks/crm?status=failure")
	if !strings.Contains(page, `<option value="failure" selected>Failure</option>`) {
		t.Error("the status filter does not show the chosen status")
	}
}

func TestWebhookPage_Paging(t *testing.T) {
	hs := newHarness(t, hook("crm", "/ok", "Lead_Post_Create", "Lead_Post_Update"))
	var want []string
	for i := range 7 {
		name := "Lead Creation"
		if i%2 == 1 {
			name = "Lead Update"
		}
		id := hs.send(name, "", fmt.Sprintf(`{"n":%d}`, i))[0]
		want = append([]string{id}, want...)
	}
	older := regexp.MustCompile(`href="([^"]*)" rel="next"`)
	newest := regexp.MustCompile(`href="([^"]*)" rel="first"`)

	var got []string
	path := "/webhooks/crm?limit=3"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page := hs.mustGet(path)
		got = append(got, rowIDs(page)...)
		if pages > 0 && !newest.MatchString(page) {
			t.Errorf("page %d has no link back to the newest", pages+1)
		}
		m := older.FindStringSubmatch(page)
		if m == nil {
			break
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
		if !strings.Contains(path, "limit=3") {
			t.Errorf("older link %q drops the limit", path)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("pages: got %v, want %v", got, want)
	}

	// Filtering by event type pages through the same cursor.
	var creates []string
	for i, id := range want {
		if (len(want)-1-i)%2 == 0 {
			creates = append(creates, id)
		}
	}
	got = nil
	path = "/webhooks/crm?limit=2&event_type=Lead_Post_Create"
	for pages := 0; pages < 5; pages++ {
		page := hs.mustGet(path)
		got = append(got, rowIDs(page)...)
		m := older.FindStringSubmatch(page)
		if m == nil {
			break
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	if strings.Join(got, ",") != strings.Join(creates, ",") {
		t.Errorf("filtered pages: got %v, want %v", got, creates)
	}
}

func TestPages_HostileDataRendersInert(t *testing.T) {
	wh := hook("evil", "/evil", "Lead_Post_Create")
	wh.Description = `<script>alert("desc")</script>`
	hs := newHarness(t, wh)
	key := `<script>alert(4)</script>`
	id := hs.send("Lead Creation", key, `{"name":"<script>alert(1)</script>","x":"</pre><b onclick=alert(5)>"}`)[0]
	hs.settle(id)
	pages := map[string]string{
		"webhooks": hs.mustGet("/"),
		"history":  hs.mustGet("/webhooks/evil"),
		"search":   hs.mustGet("/webhooks/evil?q=" + url.QueryEscape(key)),
		"delivery": hs.mustGet("/deliveries/" + id),
	}
	code, notFound := hs.get("/webhooks/%3Cscript%3Ealert(6)%3C%2Fscript%3E")
	if code != http.StatusNotFound {
		t.Errorf("hostile webhook id: got %d, want 404", code)
	}
	pages["not found"] = notFound
	for name, page := range pages {
		for _, bad := range []string{"<script>alert", "<img src=x", "<b onclick", `"</pre>`} {
			if strings.Contains(page, bad) {
				t.Errorf("%s page contains raw %q", name, bad)
			}
		}
		if n := strings.Count(page, "<script"); n != 1 {
			t.Errorf("%s page has %d script elements, want only the page's own", name, n)
		}
	}
	dp := pages["delivery"]
	for _, want := range []string{
		`&lt;script&gt;alert(1)&lt;/script&gt;`, // request body, pretty-printed
		`&lt;script&gt;alert(2)&lt;/script&gt;`, // response body
		`&lt;img src=x onerror=alert(3)&gt;`,    // response header
		`--data-binary `,                        // the curl command
	} {
		if !strings.Contains(dp, want) {
			t.Errorf("delivery page lacks the escaped %q", want)
		}
	}
	if !strings.Contains(pages["search"], id) {
		t.Error("search by a hostile idempotency key does not find its delivery")
	}
}

func TestDeliveryPage_ShowsAttempts(t *testing.T) {
	hs := newHarness(t, hook("crm", "/fail", "Lead_Post_Create"))
	id := hs.send("Lead Creation", "lead-9", `{"ProspectID":"4711","FirstName":"Ada"}`)[0]
	d := hs.settle(id)
	page := hs.mustGet("/deliveries/" + id)
	for _, want := range []string{
		"Failure", "Attempt 1", "500 Internal Server Error", "HTTP 500 Internal Server Error",
		"boom", // the response body
		"  &#34;ProspectID&#34;: &#34;4711&#34;,", // the request body, pretty-printed
		"X-Api-Key", `class="redacted">[redacted]`, "X-Team", "sales",
		"curl -sS -i -X POST", `-H &#39;X-Api-Key: [redacted]&#39;`, "Header X-Api-Key is shown as [redacted]",
		`name="csrf"`, `action="/deliveries/` + id + `/retry"`,
		d.EventIDs[0],
	} {
		if !strings.Contains(page, want) {
			t.Errorf("delivery page lacks %q", want)
		}
	}
	if strings.Contains(page, "hunter2") {
		t.Error("delivery page shows a secret header value")
	}
}

func TestRetry_CSRF(t *testing.T) {
	hs := newHarness(t, hook("crm", "/flaky", "Lead_Post_Create"))
	// Settle the first before sending the second: the receiver fails
	// only its first request, and two queued deliveries may go out in
	// either order.
	id := hs.send("Lead Creation", "", `{"n":1}`)[0]
	if d := hs.settle(id); d.Status != delivery.StatusFailure {
		t.Fatalf("first delivery: %s, want failure", d.Status)
	}
	other := hs.send("Lead Creation", "", `{"n":2}`)[0]
	hs.settle(other)
	page := hs.mustGet("/deliveries/" + id)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no csrf token on the delivery page")
	}
	token := m[1]
	otherToken := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(hs.mustGet("/deliveries/" + other))[1]

	post := func(form url.Values, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", hs.ui.URL+"/deliveries/"+id+"/retry", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hs.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {"AAAA"}}, nil},
		{"another delivery's token", url.Values{"csrf": {otherToken}}, nil},
		{"cross-site with the token", url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := post(tc.form, tc.hdr); resp.StatusCode != http.StatusForbidden {
				t.Errorf("got %d, want 403", resp.StatusCode)
			}
		})
	}
	if d, _ := hs.engine.Get(id); d.AttemptCount != 1 {
		t.Fatalf("refused retries made attempts: %d, want 1", d.AttemptCount)
	}

	resp := post(url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry with the token: got %d, want 303", resp.StatusCode)
	}
	if loc, want := resp.Header.Get("Location"), "/deliveries/"+id+"?retried=2#attempt-2"; loc != want {
		t.Errorf("Location: got %q, want %q", loc, want)
	}
	d, err := hs.engine.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if d.AttemptCount != 2 || !d.Attempts[1].Manual || d.Status != delivery.StatusSuccess {
		t.Errorf("after retry: %d attempts (second manual %v), status %s; want 2, manual, success",
			d.AttemptCount, len(d.Attempts) > 1 && d.Attempts[1].Manual, d.Status)
	}
	page = hs.mustGet("/deliveries/" + id + "?retried=2")
	for _, want := range []string{"Attempt 2 was made now", `<span class="tag manual">manual</span>`, "Success"} {
		if !strings.Contains(page, want) {
			t.Errorf("delivery page after retry lacks %q", want)
		}
	}

	req, _ := http.NewRequest("POST", hs.ui.URL+"/deliveries/dlv_00000000000000000000000000/retry",
		strings.NewReader(url.Values{"csrf": {hs.uiHandler().csrfToken("dlv_00000000000000000000000000")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = hs.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("retry of an unknown delivery: got %d, want 404", resp.StatusCode)
	}
}

func (hs *harness) uiHandler() *Handler { return hs.ui.Config.Handler.(*Handler) }

func TestIndex_Find(t *testing.T) {
	hs := newHarness(t, hook("crm", "/ok", "Lead_Post_Create"), hook("crm2", "/ok", "Lead_Post_Create"))
	ids := hs.send("Lead Creation", "lead-77", `{"n":1}`)
	for _, id := range ids {
		hs.settle(id)
	}
	resp, err := hs.client.Get(hs.ui.URL + "/?q=" + ids[0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/deliveries/"+ids[0] {
		t.Errorf("find a delivery id: got %d to %q, want 303 to its page", resp.StatusCode, resp.Header.Get("Location"))
	}
	page := hs.mustGet("/?q=lead-77")
	if got := rowIDs(page); len(got) != 2 {
		t.Errorf("find an event carried by two deliveries: rows %v, want both", got)
	}
	if page := hs.mustGet("/?q=nope"); !strings.Contains(page, "No delivery or event has the id") {
		t.Error("find with no match does not say so")
	}
}

func TestReproduce_Curl(t *testing.T) {
	req := &delivery.Request{
		URL: "http://127.0.0.1:1/h?entityType=Webhook&entityId=crm",
		Headers: map[string]string{
			"Content-Type": "application/json", "Authorization": "[redacted]", "X-Quote": `it's "fine"`,
		},
		Body: `{"name":"O'Brien","n":1}`,
	}
	r := reproduce(req)
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "Authorization") {
		t.Errorf("notes: got %q, want one about the redacted Authorization", r.Notes)
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to check the quoting")
	}
	// Replace curl by a function that prints its arguments, one a line.
	script := "curl() { for a in \"$@\"; do printf '%s\\n' \"$a\"; done; }\n" + r.Command
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"-sS", "-i", "-X", "POST", req.URL,
		"-H", "Authorization: [redacted]", "-H", "Content-Type: application/json", "-H", `X-Quote: it's "fine"`,
		"--data-binary", req.Body,
	}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("the shell sees:\n%s\nwant:\n%s", out, want)
	}
}

func TestStatsCache_Reuses(t *testing.T) {
	c := newStatsCache(time.Second)
	now := time.Unix(1000, 0)
	calls := 0
	f := func() (hourStats, error) { calls++; return hourStats{Attempts: calls}, nil }
	c.get("a", now, f)
	c.get("a", now.Add(500*time.Millisecond), f)
	if calls != 1 {
		t.Errorf("within the TTL: %d computations, want 1", calls)
	}
	if s, _ := c.get("a", now.Add(2*time.Second), f); s.Attempts != 2 {
		t.Errorf("after the TTL: got %d, want a fresh computation", s.Attempts)
	}
}
