package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sidehook/sidehook/config"
)

func TestHistory_ListPagesNewestFirst(t *testing.T) {
	wh := hook("later", "http://127.0.0.1:1/never", "Lead_Post_Create")
	wh.Delay = time.Hour
	e := openEngine(t, t.TempDir(), testConfig(wh))

	var all []string
	for i := range 7 {
		acc := ingest(t, e, "Lead Creation", "", fmt.Sprintf(`{"i":%d}`, i))
		all = append(all, acc.Deliveries[0].ID)
	}
	slices.Reverse(all) // newest first

	for _, q := range []Query{{Limit: 3}, {Limit: 3, Webhook: "later"}, {Limit: 3, Status: StatusInQueue}, {Limit: 3, Webhook: "later", Status: StatusInQueue}} {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			var got []string
			var sizes []int
			for page := 0; ; page++ {
				if page > 5 {
					t.Fatal("paging does not end")
				}
				p, err := e.List(q)
				if err != nil {
					t.Fatal(err)
				}
				sizes = append(sizes, len(p.Deliveries))
				got = append(got, ids(p.Deliveries)...)
				if p.NextCursor == nil {
					break
				}
				if last := p.Deliveries[len(p.Deliveries)-1].ID; *p.NextCursor != last {
					t.Errorf("next_cursor = %q, want the last id of the page %q", *p.NextCursor, last)
				}
				q.Cursor = *p.NextCursor
			}
			if !slices.Equal(sizes, []int{3, 3, 1}) {
				t.Errorf("page sizes = %v, want [3 3 1]", sizes)
			}
			if !sameIDs(got, all) {
				t.Errorf("ids = %v\nwant %v (newest first)", got, all)
			}
		})
	}

	t.Run("exact multiple has no extra page", func(t *testing.T) {
		p, err := e.List(Query{Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Deliveries) != 7 || p.NextCursor != nil {
			t.Errorf("got %d deliveries, next_cursor %v; want 7 and nil", len(p.Deliveries), p.NextCursor)
		}
	})
}

func TestHistory_Filters(t *testing.T) {
	good := newReceiver(t, nil)
	bad := newReceiver(t, statuses(500))
	ok := hook("ok", good.URL, "Lead_Post_Create")
	ko := hook("ko", bad.URL, "Lead_Post_Create")
	ko.Retry.Attempts = 1
	wait := hook("ok-later", good.URL, "Lead_Post_Update") // "ok" is a prefix of its id
	wait.Delay = time.Hour
	e := openEngine(t, t.TempDir(), testConfig(ok, ko, wait))

	first := ingest(t, e, "Lead Creation", "key-1", `{"n":1}`)
	second := ingest(t, e, "Lead Creation", "key-2", `{"n":2}`)
	queued := ingest(t, e, "Lead Update", "", `{"n":3}`)
	for _, acc := range []Accepted{first, second} {
		for _, p := range acc.Deliveries {
			waitFinished(t, e, p.ID)
		}
	}
	byHook := func(acc Accepted, webhook string) string {
		for _, p := range acc.Deliveries {
			if p.Webhook == webhook {
				return p.ID
			}
		}
		t.Fatalf("no delivery for %s in %+v", webhook, acc)
		return ""
	}

	for _, tc := range []struct {
		name string
		q    Query
		want []string
	}{
		{"success", Query{Status: StatusSuccess}, []string{byHook(second, "ok"), byHook(first, "ok")}},
		{"failure", Query{Status: StatusFailure}, []string{byHook(second, "ko"), byHook(first, "ko")}},
		{"in queue", Query{Status: StatusInQueue}, []string{queued.Deliveries[0].ID}},
		{"webhook", Query{Webhook: "ok"}, []string{byHook(second, "ok"), byHook(first, "ok")}},
		{"other webhook", Query{Webhook: "ok-later"}, []string{queued.Deliveries[0].ID}},
		{"webhook and status", Query{Webhook: "ko", Status: StatusFailure}, []string{byHook(second, "ko"), byHook(first, "ko")}},
		{"webhook and other status", Query{Webhook: "ko", Status: StatusSuccess}, nil},
		{"event id", Query{Event: first.ID}, []string{byHook(first, "ko"), byHook(first, "ok")}},
		{"idempotency key", Query{Event: "key-2"}, []string{byHook(second, "ko"), byHook(second, "ok")}},
		{"event and webhook", Query{Event: first.ID, Webhook: "ok"}, []string{byHook(first, "ok")}},
		{"event and status", Query{Event: "key-1", Status: StatusFailure}, []string{byHook(first, "ko")}},
		{"unknown event", Query{Event: "evt_nope"}, nil},
		{"unknown webhook", Query{Webhook: "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.List(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p.Deliveries); !sameIDs(got, tc.want) {
				t.Errorf("List(%+v) = %v, want %v", tc.q, got, tc.want)
			}
			if p.Deliveries == nil {
				t.Error("deliveries is nil, want an empty list (JSON [])")
			}
			for _, d := range p.Deliveries {
				if tc.q.Status != "" && d.Status != tc.q.Status || tc.q.Webhook != "" && d.Webhook != tc.q.Webhook {
					t.Errorf("delivery %s (%s, %s) does not match %+v", d.ID, d.Webhook, d.Status, tc.q)
				}
			}
		})
	}
}

func TestHistory_BadCursorAndUnknownDelivery(t *testing.T) {
	e := openEngine(t, t.TempDir(), testConfig())
	for _, c := range []string{"garbage", "dlv_", "evt_00000000000000000000000000", "dlv_!!!!!!!!!!!!!!!!!!!!!!!!!!"} {
		if _, err := e.List(Query{Cursor: c}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("List(cursor %q) error = %v, want ErrBadCursor", c, err)
		}
	}
	if _, err := e.Get("dlv_00000000000000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := e.Get("nonsense"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nonsense) error = %v, want ErrNotFound", err)
	}
}

func TestHistory_AttemptRecordsRequestAndResponse(t *testing.T) {
	rc := newReplyingReceiver(t, func(n int, w http.ResponseWriter) int {
		w.Header().Set("X-Request-Id", "r-42")
		w.Header().Set("Content-Type", "application/json")
		return http.StatusAccepted
	}, func(int) string { return `{"queued":true}` })
	wh := hook("rec", rc.URL+"/in?k=v", "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	data := `{"ProspectID":"4711"}`
	before := time.Now()
	acc := ingest(t, e, "Lead Creation", "", data)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)

	if d.Webhook != "rec" || d.EventType != "Lead_Post_Create" || !slices.Equal(d.EventIDs, []string{acc.ID}) {
		t.Errorf("delivery = %s/%s events %v, want rec/Lead_Post_Create [%s]", d.Webhook, d.EventType, d.EventIDs, acc.ID)
	}
	if len(d.Attempts) != 1 {
		t.Fatalf("attempts = %d, want 1", len(d.Attempts))
	}
	a := d.Attempts[0]
	if a.N != 1 || a.At.Before(before.Add(-time.Second)) || a.DurationMS <= 0 || a.Error != "" {
		t.Errorf("attempt n=%d at=%v duration=%v error=%q, want n=1, a time, a duration, no error", a.N, a.At, a.DurationMS, a.Error)
	}
	wantURL := rc.URL + "/in?k=v&entityType=Webhook&entityId=rec&eventType=Lead_Post_Create"
	if a.Request.URL != wantURL || a.Request.Body != data {
		t.Errorf("request url %q body %q, want %q %q", a.Request.URL, a.Request.Body, wantURL, data)
	}
	if a.Request.Headers["Content-Type"] != "application/json" || a.Request.Headers["User-Agent"] != "sidehook/test" {
		t.Errorf("request headers = %v, want Content-Type and User-Agent", a.Request.Headers)
	}
	r := a.Response
	if r == nil || r.Status != 202 || r.Body != `{"queued":true}` || r.Headers["X-Request-Id"] != "r-42" || r.Truncated {
		t.Errorf("response = %+v, want 202 with the receiver's body and headers", r)
	}
	if d.LastAttemptAt == nil || !d.LastAttemptAt.Equal(a.At) || d.LastStatusCode != 202 {
		t.Errorf("summary: last at %v code %d, want %v 202", d.LastAttemptAt, d.LastStatusCode, a.At)
	}
	// The listing shows the same delivery with its attempts.
	p, err := e.List(Query{})
	if err != nil || len(p.Deliveries) != 1 || len(p.Deliveries[0].Attempts) != 1 {
		t.Fatalf("List = %+v, %v; want the delivery with its attempt", p, err)
	}
}

func TestHistory_RetentionExpiresFinishedOnly(t *testing.T) {
	good := newReceiver(t, nil)
	bad := newReceiver(t, statuses(500))
	ok := hook("ok", good.URL, "Lead_Post_Create")
	ko := hook("ko", bad.URL, "Lead_Post_Create")
	ko.Retry.Attempts = 1
	later := hook("later", good.URL, "Lead_Post_Update")
	later.Delay = time.Hour
	cfg := testConfig(ok, ko, later)
	cfg.HistoryRetention = time.Millisecond
	e := openEngine(t, t.TempDir(), cfg)

	done := ingest(t, e, "Lead Creation", "gone", `{}`)
	queued := ingest(t, e, "Lead Update", "", `{}`)
	for _, p := range done.Deliveries {
		waitFinished(t, e, p.ID)
	}
	if c := e.Counts("ok"); c != (Counts{Success: 1}) {
		t.Fatalf("counts ok = %+v before expiry", c)
	}
	time.Sleep(5 * time.Millisecond)
	e.ExpireNow(t.Context())

	for _, p := range done.Deliveries {
		if _, err := e.Get(p.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s) after expiry: %v, want ErrNotFound", p.ID, err)
		}
	}
	p, err := e.List(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p.Deliveries); !sameIDs(got, []string{queued.Deliveries[0].ID}) {
		t.Errorf("List after expiry = %v, want only the queued %s", got, queued.Deliveries[0].ID)
	}
	for _, q := range []Query{{Status: StatusSuccess}, {Status: StatusFailure}, {Webhook: "ok"}, {Event: done.ID}} {
		if p, _ := e.List(q); len(p.Deliveries) != 0 {
			t.Errorf("List(%+v) after expiry = %v, want empty", q, ids(p.Deliveries))
		}
	}
	for webhook, want := range map[string]Counts{"ok": {}, "ko": {}, "later": {InQueue: 1}} {
		if c := e.Counts(webhook); c != want {
			t.Errorf("counts %s = %+v, want %+v", webhook, c, want)
		}
	}
	if d := mustGet(t, e, queued.Deliveries[0].ID); d.Status != StatusInQueue {
		t.Errorf("queued delivery is %s, want in_queue", d.Status)
	}
}

// A sweep goes on past its first batch of 500 until every expired
// delivery is gone.
func TestHistory_RetentionSweepsEveryBatch(t *testing.T) {
	gone := hook("gone", "http://127.0.0.1:1/never", "Lead_Post_Create")
	gone.Delay = time.Hour
	cfg := testConfig(gone)
	cfg.HistoryRetention = time.Millisecond
	e := openEngine(t, t.TempDir(), cfg)
	const n = 1234
	for i := 0; i < n; i += 500 {
		var evs []Incoming
		for range min(500, n-i) {
			evs = append(evs, Incoming{Type: lookup(t, "Lead Creation"), Data: json.RawMessage(`{}`)})
		}
		if _, err := e.Ingest(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	// Removing the webhook fails its deliveries without any network.
	removed := testConfig()
	removed.HistoryRetention = time.Millisecond
	e.SetConfig(removed)
	deadline := time.Now().Add(20 * time.Second)
	for e.Counts("gone").Failure < n {
		if time.Now().After(deadline) {
			t.Fatalf("counts = %+v, want %d failures", e.Counts("gone"), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	e.ExpireNow(t.Context())
	if c := e.Counts("gone"); c != (Counts{}) {
		t.Errorf("counts after one sweep = %+v, want none", c)
	}
	if p, _ := e.List(Query{Limit: 10}); len(p.Deliveries) != 0 {
		t.Errorf("List after one sweep: %d deliveries, want none", len(p.Deliveries))
	}
	// The events went with their last delivery.
	err := e.store.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(keysOnly([]byte{pEvent}))
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		if n != 0 {
			t.Errorf("%d events left in the store after their deliveries expired", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHistory_RequestBodyBuiltFromEvents checks that history shows each
// attempt's request body exactly as the receiver got it (a JSON batch, a
// form body, and a body sent again after the webhook's content type
// changed), although the attempt records keep no copy of it.
func TestHistory_RequestBodyBuiltFromEvents(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, statuses(500, 200))
	batch := batchHook("batch", rc.URL+"/batch", 200*time.Millisecond, 10, "Lead_Post_Create")
	form := hook("form", rc.URL+"/form", "Lead_Post_Create")
	form.ContentType = config.ContentForm
	e := openEngine(t, t.TempDir(), testConfig(batch, form))

	pad := strings.Repeat("p", 2000)
	first := ingest(t, e, "Lead Creation", "", `{"n":1,"pad":"`+pad+`"}`)
	ingest(t, e, "Lead Creation", "", `{"n":2, "price": 12.50}`)
	rc.wait(t, 4) // the form delivery of the second event is the fourth request at most
	for _, p := range first.Deliveries {
		d := waitStatus(t, e, p.ID, StatusSuccess)
		sent := map[string][]string{}
		for _, r := range rc.requests() {
			sent[r.query] = append(sent[r.query], r.body)
		}
		for i, a := range d.Attempts {
			if a.Request == nil || a.Request.Body == "" {
				t.Fatalf("%s attempt %d: no request body in history", p.Webhook, a.N)
			}
			if !slices.Contains(sent[targetQuery(p.Webhook)], a.Request.Body) {
				t.Errorf("%s attempt %d: history body %.80q was never sent", p.Webhook, i+1, a.Request.Body)
			}
		}
		// What the attempt records hold: no copy of the 2,000-byte pad.
		err := e.store.db.View(func(txn *badger.Txn) error {
			for n := 1; n <= len(d.Attempts); n++ {
				item, err := txn.Get(kAttempt(p.ID, n))
				if err != nil {
					return err
				}
				if item.ValueSize() > 1000 {
					t.Errorf("%s attempt %d is stored in %d bytes: the body is kept twice", p.Webhook, n, item.ValueSize())
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// The same delivery sent as text/plain after a reload: history shows
	// each attempt as it went out.
	text := *form
	text.ContentType = config.ContentText
	e.SetConfig(testConfig(batch, &text))
	id := first.Deliveries[1].ID
	if _, err := e.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	d := mustGet(t, e, id)
	last := d.Attempts[len(d.Attempts)-1]
	if want := `{"n":1,"pad":"` + pad + `"}`; last.Request.Body != want {
		t.Errorf("text/plain retry: history body %.80q, want the event's JSON", last.Request.Body)
	}
	if formBody := d.Attempts[0].Request.Body; !strings.HasPrefix(formBody, "n=1&pad=") {
		t.Errorf("form attempt: history body %.80q, want the form fields", formBody)
	}
}

// targetQuery is the query sidehook appends for a Lead Creation webhook.
func targetQuery(webhook string) string {
	return "entityType=Webhook&entityId=" + webhook + "&eventType=Lead_Post_Create"
}

// TestHistory_PagesMergeWebhooksAndStatuses pages through a status across
// webhooks (a merge of their indexes), everything, and a webhook whose
// deliveries ended in different statuses.
func TestHistory_PagesMergeWebhooksAndStatuses(t *testing.T) {
	t.Parallel()
	ok := newReceiver(t, nil)
	flaky := newReceiver(t, func(n int, w http.ResponseWriter) int { return []int{200, 500}[n%2] })
	a := hook("a", ok.URL, "Lead_Post_Create")
	mixed := hook("mixed", flaky.URL, "Lead_Post_Create")
	mixed.Retry.Attempts = 1
	later := hook("later", ok.URL, "Lead_Post_Create")
	later.Delay = time.Hour
	e := openEngine(t, t.TempDir(), testConfig(a, mixed, later))

	want := map[Query][]string{}
	var success, all []string
	for i := range 7 {
		acc := ingest(t, e, "Lead Creation", "", fmt.Sprintf(`{"i":%d}`, i))
		for _, p := range acc.Deliveries {
			all = append(all, p.ID)
			if p.Webhook == "later" {
				continue
			}
			d := waitFinished(t, e, p.ID)
			if d.Status == StatusSuccess {
				success = append(success, p.ID)
			}
			if p.Webhook == "mixed" {
				want[Query{Webhook: "mixed", Limit: 2}] = append(want[Query{Webhook: "mixed", Limit: 2}], p.ID)
			}
		}
	}
	want[Query{Status: StatusSuccess, Limit: 3}] = success
	want[Query{Limit: 4}] = all
	if c := e.Counts("mixed"); c.Success == 0 || c.Failure == 0 {
		t.Fatalf("mixed counts %+v, want both successes and failures", c)
	}
	for q, ids := range want {
		newest := slices.Clone(ids)
		slices.Reverse(newest)
		var got []string
		for page := 0; ; page++ {
			if page > 25 {
				t.Fatalf("%+v: paging does not end", q)
			}
			p, err := e.List(q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Deliveries) > q.Limit {
				t.Errorf("%+v: page of %d", q, len(p.Deliveries))
			}
			for _, d := range p.Deliveries {
				got = append(got, d.ID)
			}
			if p.NextCursor == nil {
				break
			}
			q.Cursor = *p.NextCursor
		}
		q.Cursor = ""
		if !slices.Equal(got, newest) {
			t.Errorf("List(%+v) paged = %v\nwant %v (newest first)", q, got, newest)
		}
	}
}
