package delivery

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sidehook/sidehook/config"
)

func TestSend_ConcurrencyLimitPerWebhook(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := 0, 0
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return http.StatusOK
	})
	wh := hook("two", rc.URL, "Lead_Post_Create")
	wh.Concurrency = 2
	e := openEngine(t, t.TempDir(), testConfig(wh))

	var evs []Incoming
	for range 8 {
		evs = append(evs, incoming(t, "Lead Creation", "", `{}`))
	}
	for _, a := range ingestAll(t, e, evs...) {
		waitStatus(t, e, a.Deliveries[0].ID, StatusSuccess)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 2 {
		t.Errorf("at most %d requests in flight, want 2 (the webhook's concurrency)", most)
	}
}

func TestRestart_GraceLetsAttemptsInFlightFinish(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		signal(arrived)
		time.Sleep(300 * time.Millisecond)
		return http.StatusOK
	})
	wh := hook("graceful", rc.URL, "Lead_Post_Create")
	cfg := testConfig(wh)
	dir := t.TempDir()

	e1, close1 := startEngine(t, dir, cfg)
	acc := ingest(t, e1, "Lead Creation", "", `{}`)
	await(t, arrived, 10*time.Second, "the attempt to start")
	grace, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	close1(grace)

	e2 := openEngine(t, dir, cfg)
	d := mustGet(t, e2, acc.Deliveries[0].ID)
	if d.Status != StatusSuccess || d.AttemptCount != 1 {
		t.Errorf("after a graceful stop: %s with %d attempts, want success with 1", d.Status, d.AttemptCount)
	}
	time.Sleep(200 * time.Millisecond)
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestRetry_ManualOnQueuedDeliverySendsNowAndOnce(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	wh := hook("later", rc.URL, "Lead_Post_Create")
	wh.Delay = 400 * time.Millisecond
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"now":true}`)
	id := acc.Deliveries[0].ID
	d, err := e.Retry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusSuccess || d.AttemptCount != 1 || !d.Attempts[0].Manual {
		t.Fatalf("after manual retry: %s with %+v, want success with one manual attempt", d.Status, d.Attempts)
	}
	if c := e.Counts("later"); c != (Counts{Success: 1}) {
		t.Errorf("counts = %+v, want one success", c)
	}
	time.Sleep(700 * time.Millisecond) // past the original due time
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1: the scheduled attempt must not follow a successful manual one", n)
	}
}

func TestRetry_ManualOnOpenBatchClosesIt(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := batchHook("open", rc.URL, time.Hour, 100, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	a1 := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	a2 := ingest(t, e, "Lead Creation", "", `{"n":2}`)
	d, err := e.Retry(context.Background(), a1.Deliveries[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusSuccess {
		t.Fatalf("status = %s, want success", d.Status)
	}
	if got := rc.wait(t, 1)[0].body; got != `[{"n":1},{"n":2}]` {
		t.Errorf("body = %s, want both members", got)
	}
	a3 := ingest(t, e, "Lead Creation", "", `{"n":3}`)
	if a3.Deliveries[0].ID == a1.Deliveries[0].ID || a2.Deliveries[0].ID != a1.Deliveries[0].ID {
		t.Errorf("deliveries %s %s %s, want the first two together and the third in a new batch",
			a1.Deliveries[0].ID, a2.Deliveries[0].ID, a3.Deliveries[0].ID)
	}
}

// An event that matched more webhooks than one page holds must still be
// reachable through next_cursor, like every other listing.
func TestHistory_EventFilterPages(t *testing.T) {
	var hooks = []string{"h1", "h2", "h3"}
	var whs = make([]*config.Webhook, 0, len(hooks))
	for _, id := range hooks {
		wh := hook(id, "http://127.0.0.1:1/never", "Lead_Post_Create")
		wh.Delay = time.Hour
		whs = append(whs, wh)
	}
	e := openEngine(t, t.TempDir(), testConfig(whs...))
	acc := ingest(t, e, "Lead Creation", "three-ways", `{}`)
	if len(acc.Deliveries) != 3 {
		t.Fatalf("deliveries = %d, want 3", len(acc.Deliveries))
	}
	for _, key := range []string{acc.ID, "three-ways"} {
		var got []string
		q := Query{Event: key, Limit: 2}
		for page := 0; page < 4; page++ {
			p, err := e.List(q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(p.Deliveries)...)
			if p.NextCursor == nil {
				break
			}
			q.Cursor = *p.NextCursor
		}
		want := []string{acc.Deliveries[2].ID, acc.Deliveries[1].ID, acc.Deliveries[0].ID}
		if !sameIDs(got, want) {
			t.Errorf("List(event %q, limit 2) pages = %v, want all of %v", key, got, want)
		}
	}
}

// The first 64 KiB of a response may end inside a multi-byte character;
// history must still hold a prefix of what was received, not a
// replacement character that was never sent.
func TestSend_TruncationKeepsValidUTF8Prefix(t *testing.T) {
	resp := "a" + strings.Repeat("é", 40<<10) // 80 KiB; byte 65536 splits an é
	rc := newReplyingReceiver(t, nil, func(int) string { return resp })
	e := openEngine(t, t.TempDir(), testConfig(hook("utf8", rc.URL, "Lead_Post_Create")))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	r := d.Attempts[0].Response
	if !r.Truncated {
		t.Error("truncated = false, want true")
	}
	if len(r.Body) > MaxResponseBody || !strings.HasPrefix(resp, r.Body) || !utf8.ValidString(r.Body) {
		t.Errorf("recorded body: %d bytes, prefix of the response %v, valid UTF-8 %v; want at most %d bytes of the response's start",
			len(r.Body), strings.HasPrefix(resp, r.Body), utf8.ValidString(r.Body), MaxResponseBody)
	}
}

func TestPing_HeadWithHeaders(t *testing.T) {
	srv := newReceiver(t, func(n int, w http.ResponseWriter) int { return http.StatusNoContent })
	wh := hook("pinged", srv.URL+"/p", "Lead_Post_Create")
	wh.Headers = append(wh.Headers, config.Header{Name: "X-Api-Key", Value: "k"})
	e := openEngine(t, t.TempDir(), testConfig(wh))

	res := e.Ping(context.Background(), wh)
	if res.Status != http.StatusNoContent || res.Error != "" || res.Webhook != "pinged" {
		t.Errorf("ping = %+v, want 204 without error", res)
	}
	got := srv.wait(t, 1)[0]
	method, key, ua := got.method, got.header.Get("X-Api-Key"), got.header.Get("User-Agent")
	if method != http.MethodHead || key != "k" || ua != "sidehook/test" {
		t.Errorf("ping request: %s X-Api-Key=%q User-Agent=%q, want HEAD with the webhook's headers", method, key, ua)
	}
	if res := e.Ping(context.Background(), hook("dead", closedURL(t), "Lead_Post_Create")); res.Error == "" || res.Status != 0 {
		t.Errorf("ping of a closed port = %+v, want an error", res)
	}
}

// Entries queued behind the one a dispatcher waits for wake no one: the
// dispatcher reads them when it wakes. Each still goes out on time.
func TestScheduler_LaterEntriesNeedNoWakeUp(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := hook("delayed", rc.URL, "Lead_Post_Create")
	wh.Delay = 300 * time.Millisecond
	e := openEngine(t, t.TempDir(), testConfig(wh))
	start := time.Now()
	var ids []string
	for range 10 {
		ids = append(ids, ingest(t, e, "Lead Creation", "", `{}`).Deliveries[0].ID)
		time.Sleep(50 * time.Millisecond)
	}
	got := rc.wait(t, len(ids))
	for i, r := range got {
		if early := r.at.Sub(start); early < wh.Delay {
			t.Errorf("request %d arrived %v after the first ingest, before its delay", i, early)
		}
	}
	for _, id := range ids {
		d := waitStatus(t, e, id, StatusSuccess)
		if late := d.Attempts[0].At.Sub(d.DueAt); late > 2*time.Second {
			t.Errorf("delivery %s went out %v after its due time", id, late)
		}
	}
}

// A dispatcher that keeps up takes new entries from the commits that add
// them instead of scanning the due index. Concurrent ingests, retries
// and a delayed webhook all run through that path here: every event must
// reach each webhook exactly once with a 200, none lost, none doubled.
func TestScheduler_KeepingUpLosesAndDoublesNothing(t *testing.T) {
	const producers, each = 8, 150
	seqOf := func(body string) string {
		i := strings.Index(body, `"seq":"`)
		if i < 0 {
			return ""
		}
		rest := body[i+len(`"seq":"`):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	type tally struct {
		mu       sync.Mutex
		tries    map[string]int
		accepted map[string]int
	}
	newTally := func() *tally { return &tally{tries: map[string]int{}, accepted: map[string]int{}} }
	receive := func(tl *tally) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			seq := seqOf(string(b))
			tl.mu.Lock()
			defer tl.mu.Unlock()
			tl.tries[seq]++
			// Events whose number ends in 7 fail their first attempt.
			if strings.HasSuffix(seq, "7") && tl.tries[seq] == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			tl.accepted[seq]++
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	nowTally, soonTally := newTally(), newTally()
	now := hook("now", receive(nowTally), "Lead_Post_Create")
	soon := hook("soon", receive(soonTally), "Lead_Post_Create")
	soon.Delay = 30 * time.Millisecond
	soon.Concurrency = 2
	e := openEngine(t, t.TempDir(), testConfig(now, soon))

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				ingest(t, e, "Lead Creation", "", fmt.Sprintf(`{"seq":"%d-%d"}`, p, i))
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for e.Counts("now").Success+e.Counts("soon").Success < 2*producers*each {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: now %+v, soon %+v; want %d successes each", e.Counts("now"), e.Counts("soon"), producers*each)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, tl := range map[string]*tally{"now": nowTally, "soon": soonTally} {
		tl.mu.Lock()
		if len(tl.accepted) != producers*each {
			t.Errorf("webhook %s: %d distinct events accepted, want %d", name, len(tl.accepted), producers*each)
		}
		for seq, n := range tl.accepted {
			if n != 1 {
				t.Errorf("webhook %s: event %s accepted %d times, want once", name, seq, n)
			}
		}
		tl.mu.Unlock()
	}
}
