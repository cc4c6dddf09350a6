package delivery

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

func TestSend_FormFieldsFromJSONObject(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := hook("form", rc.URL+"/in", "Lead_Post_Create")
	wh.ContentType = config.ContentForm
	e := openEngine(t, t.TempDir(), testConfig(wh))

	data := `{"FirstName":"Ada Lovelace","Amount": 12.50,"Big":1e3,"Address":{"City": "London","Zip":"N1"},"Tags":["a","b"],"Note":null,"Active":true,"Sym":"a&b=c"}`
	acc := ingest(t, e, "Lead Creation", "", data)
	got := rc.wait(t, 1)[0]

	if ct := got.header.Get("Content-Type"); ct != config.ContentForm {
		t.Errorf("Content-Type = %q, want %q", ct, config.ContentForm)
	}
	wantFields := [][2]string{
		{"FirstName", "Ada Lovelace"},
		{"Amount", "12.50"},
		{"Big", "1e3"},
		{"Address", `{"City": "London","Zip":"N1"}`},
		{"Tags", `["a","b"]`},
		{"Note", ""},
		{"Active", "true"},
		{"Sym", "a&b=c"},
	}
	pairs := strings.Split(got.body, "&")
	if len(pairs) != len(wantFields) {
		t.Fatalf("body %q has %d fields, want %d", got.body, len(pairs), len(wantFields))
	}
	for i, p := range pairs {
		name, value, _ := strings.Cut(p, "=")
		n, err1 := url.QueryUnescape(name)
		v, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil {
			t.Fatalf("field %d %q does not decode: %v %v", i, p, err1, err2)
		}
		if n != wantFields[i][0] || v != wantFields[i][1] {
			t.Errorf("field %d = %q=%q, want %q=%q", i, n, v, wantFields[i][0], wantFields[i][1])
		}
	}
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if d.Attempts[0].Request.Body != got.body {
		t.Errorf("recorded body %q, want what was sent %q", d.Attempts[0].Request.Body, got.body)
	}
}

func TestSend_FormWithNonObjectDataFailsWithoutSending(t *testing.T) {
	for _, data := range []string{`[1,2]`, `"text"`, `42`, `null`} {
		t.Run(data, func(t *testing.T) {
			rc := newReceiver(t, nil)
			wh := hook("form", rc.URL, "Lead_Post_Create")
			wh.ContentType = config.ContentForm
			e := openEngine(t, t.TempDir(), testConfig(wh))

			acc := ingest(t, e, "Lead Creation", "", data)
			d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
			if d.AttemptCount != 1 || len(d.Attempts) != 1 {
				t.Fatalf("attempts = %d (%d recorded), want exactly 1: the body can never be built", d.AttemptCount, len(d.Attempts))
			}
			msg := d.Attempts[0].Error
			if !strings.Contains(msg, "JSON object") || !strings.Contains(msg, "form") {
				t.Errorf("error = %q, want it to say the data must be a JSON object for a form", msg)
			}
			if n := rc.count(); n != 0 {
				t.Errorf("receiver got %d requests, want none", n)
			}
			if c := e.Counts("form"); c != (Counts{Failure: 1}) {
				t.Errorf("counts = %+v, want one failure", c)
			}
		})
	}
}

func TestSend_TextPlainGetsJSONText(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := hook("text", rc.URL, "Lead_Post_Create")
	wh.ContentType = config.ContentText
	e := openEngine(t, t.TempDir(), testConfig(wh))

	data := `{"a": 1,  "b": [true, null]}`
	ingest(t, e, "Lead Creation", "", data)
	got := rc.wait(t, 1)[0]
	if got.body != data {
		t.Errorf("body = %q, want %q", got.body, data)
	}
	if ct := got.header.Get("Content-Type"); ct != config.ContentText {
		t.Errorf("Content-Type = %q, want %q", ct, config.ContentText)
	}
}

func TestSend_HeadersAndQuery(t *testing.T) {
	const params = "entityType=Webhook&entityId=crm&eventType=Lead_Post_Create"
	for _, tc := range []struct {
		name, path, wantQuery string
	}{
		{"no query", "/leads", params},
		{"with query", "/leads?token=a%20b&x=1", "token=a%20b&x=1&" + params},
		{"trailing question mark", "/leads?", params},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			wh := hook("crm", rc.URL+tc.path, "Lead_Post_Create")
			wh.Headers = []config.Header{
				{Name: "Authorization", Value: "Bearer t0k"},
				{Name: "x-custom", Value: "v1"},
			}
			e := openEngine(t, t.TempDir(), testConfig(wh))
			acc := ingest(t, e, "Lead Creation", "", `{}`)
			got := rc.wait(t, 1)[0]
			if got.query != tc.wantQuery {
				t.Errorf("query = %q, want %q", got.query, tc.wantQuery)
			}
			for name, want := range map[string]string{
				"User-Agent": "sidehook/test", "Authorization": "Bearer t0k", "X-Custom": "v1", "Content-Type": "application/json",
			} {
				if v := got.header.Get(name); v != want {
					t.Errorf("header %s = %q, want %q", name, v, want)
				}
			}
			d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
			req := d.Attempts[0].Request
			if want := rc.URL + strings.SplitN(tc.path, "?", 2)[0] + "?" + tc.wantQuery; req.URL != want {
				t.Errorf("recorded URL = %q, want %q", req.URL, want)
			}
			if req.Headers["Authorization"] != "[redacted]" {
				t.Errorf("recorded Authorization = %q, want [redacted]", req.Headers["Authorization"])
			}
		})
	}
}

func TestSend_DelayNotEarly(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := hook("late", rc.URL, "Lead_Post_Create")
	wh.Delay = 300 * time.Millisecond
	e := openEngine(t, t.TempDir(), testConfig(wh))

	before := time.Now()
	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	after := time.Now()
	due := acc.Deliveries[0].DueAt
	if due.Before(before.Add(wh.Delay)) || due.After(after.Add(wh.Delay)) {
		t.Errorf("due_at = %v, want between %v and %v (acceptance + delay)", due, before.Add(wh.Delay), after.Add(wh.Delay))
	}
	got := rc.wait(t, 1)[0]
	if got.at.Before(due) {
		t.Errorf("arrived at %v, before due_at %v", got.at, due)
	}
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if diff := d.DueAt.Sub(d.CreatedAt); diff != wh.Delay {
		t.Errorf("due_at - created_at = %v, want %v", diff, wh.Delay)
	}
	if !d.DueAt.Equal(due) {
		t.Errorf("history due_at %v, want the accepted %v", d.DueAt, due)
	}
}

func TestSend_RedirectNotFollowed(t *testing.T) {
	target := newReceiver(t, nil)
	loc := target.URL + "/moved"
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		w.Header().Set("Location", loc)
		return http.StatusFound
	})
	wh := hook("redir", rc.URL, "Lead_Post_Create")
	wh.Retry.Attempts = 1
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	if len(d.Attempts) != 1 {
		t.Fatalf("attempts = %d, want 1", len(d.Attempts))
	}
	a := d.Attempts[0]
	if a.Response == nil || a.Response.Status != http.StatusFound {
		t.Fatalf("response = %+v, want the 302 recorded", a.Response)
	}
	if a.Response.Headers["Location"] != loc {
		t.Errorf("response headers = %v, want Location %q", a.Response.Headers, loc)
	}
	if !strings.Contains(a.Error, loc) {
		t.Errorf("error = %q, want it to show the Location %q", a.Error, loc)
	}
	if n := target.count(); n != 0 {
		t.Errorf("redirect target got %d requests, want none", n)
	}
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestSend_ResponseBodyTruncatedAt64KiB(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 100<<10/16) // 100 KiB
	rc := newReplyingReceiver(t, nil, func(int) string { return big })
	wh := hook("big", rc.URL, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	r := d.Attempts[0].Response
	if r == nil {
		t.Fatal("no response recorded")
	}
	if len(r.Body) != 64<<10 || r.Body != big[:64<<10] {
		t.Errorf("recorded body is %d bytes, want exactly the first %d", len(r.Body), 64<<10)
	}
	if !r.Truncated {
		t.Error("truncated = false, want true")
	}
}

func TestSend_ResponseBodyNotTruncatedAtLimit(t *testing.T) {
	exact := strings.Repeat("x", 64<<10)
	rc := newReplyingReceiver(t, nil, func(int) string { return exact })
	e := openEngine(t, t.TempDir(), testConfig(hook("exact", rc.URL, "Lead_Post_Create")))
	acc := ingest(t, e, "Lead Creation", "", `{}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if r := d.Attempts[0].Response; r.Truncated || r.Body != exact {
		t.Errorf("body %d bytes truncated=%v, want all %d and truncated=false", len(r.Body), r.Truncated, len(exact))
	}
}

func TestSend_StuckReceiverDoesNotDelayOthers(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	stuck := newReceiver(t, func(n int, w http.ResponseWriter) int {
		signal(arrived)
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
		return http.StatusOK
	})
	defer close(release) // before cleanup closes the engine and the servers
	fast := newReceiver(t, nil)

	slow := hook("slow", stuck.URL, "Lead_Post_Update")
	slow.Concurrency = 1
	slow.Timeout = 30 * time.Second
	quick := hook("fast", fast.URL, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(slow, quick))

	held := ingest(t, e, "Lead Update", "", `{"slow":1}`)
	waiting := ingest(t, e, "Lead Update", "", `{"slow":2}`)
	await(t, arrived, 10*time.Second, "the stuck receiver to get its first request")

	var accs []Accepted
	for i := range 20 {
		accs = append(accs, ingest(t, e, "Lead Creation", "", fmt.Sprintf(`{"i":%d}`, i)))
	}
	for _, acc := range accs {
		waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	}
	if c := e.Counts("fast"); c != (Counts{Success: 20}) {
		t.Errorf("fast counts = %+v, want 20 successes", c)
	}
	// The stuck receiver still holds its only slot.
	for _, acc := range []Accepted{held, waiting} {
		d := mustGet(t, e, acc.Deliveries[0].ID)
		if d.Status != StatusInQueue || d.AttemptCount != 0 {
			t.Errorf("slow delivery %s: %s with %d attempts, want in_queue with none finished", d.ID, d.Status, d.AttemptCount)
		}
	}
	if n := stuck.count(); n != 1 {
		t.Errorf("stuck receiver got %d requests, want 1 (concurrency 1)", n)
	}
}
