package delivery

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRestart_DelayedDeliveriesSurvive(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	wh := hook("delayed", rc.URL, "Lead_Post_Create")
	wh.Delay = 500 * time.Millisecond
	cfg := testConfig(wh)
	dir := t.TempDir()

	e1, close1 := startEngine(t, dir, cfg)
	var accs []Accepted
	for i := range 3 {
		accs = append(accs, ingest(t, e1, "Lead Creation", "", fmt.Sprintf(`{"i":%d}`, i)))
	}
	close1(context.Background())
	if n := rc.count(); n != 0 {
		t.Fatalf("receiver got %d requests before the delay, want none", n)
	}

	e2 := openEngine(t, dir, cfg)
	if c := e2.Counts("delayed"); c != (Counts{InQueue: 3}) {
		t.Errorf("counts after reopen = %+v, want 3 queued", c)
	}
	got := rc.wait(t, 3)
	var bodies []string
	for _, r := range got {
		bodies = append(bodies, r.body)
		if r.at.Before(accs[0].Deliveries[0].DueAt) {
			t.Errorf("arrived at %v, before due_at %v", r.at, accs[0].Deliveries[0].DueAt)
		}
	}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{`{"i":0}`, `{"i":1}`, `{"i":2}`}) {
		t.Errorf("bodies = %v, want the three events", bodies)
	}
	for _, a := range accs {
		waitStatus(t, e2, a.Deliveries[0].ID, StatusSuccess)
	}
	if c := e2.Counts("delayed"); c != (Counts{Success: 3}) {
		t.Errorf("counts = %+v, want 3 successes", c)
	}
}

func TestRestart_InFlightAttemptIsRetried(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		if n == 1 {
			signal(arrived)
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
		return http.StatusOK
	})
	defer close(release)
	wh := hook("inflight", rc.URL, "Lead_Post_Create")
	wh.Timeout = 30 * time.Second
	cfg := testConfig(wh)
	dir := t.TempDir()

	e1, close1 := startEngine(t, dir, cfg)
	acc := ingest(t, e1, "Lead Creation", "", `{"once":"at least"}`)
	id := acc.Deliveries[0].ID
	await(t, arrived, 10*time.Second, "the first attempt to reach the receiver")
	grace, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	close1(grace)
	cancel()

	e2 := openEngine(t, dir, cfg)
	d := waitStatus(t, e2, id, StatusSuccess)
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2 (the cut one and the retry)", len(reqs))
	}
	if reqs[0].body != reqs[1].body || reqs[1].body != `{"once":"at least"}` {
		t.Errorf("bodies = %q, %q; want the event data twice", reqs[0].body, reqs[1].body)
	}
	if d.AttemptCount < 1 || d.Attempts[len(d.Attempts)-1].Response == nil || d.Attempts[len(d.Attempts)-1].Response.Status != 200 {
		t.Errorf("attempts = %+v, want the last answered 200", d.Attempts)
	}
	for _, a := range d.Attempts {
		if strings.Contains(a.Error, "canceled") {
			t.Errorf("the cut attempt was recorded as a failure: %q", a.Error)
		}
	}
}

func TestConfigChange_RemovedWebhookFailsItsDeliveries(t *testing.T) {
	rc := newReceiver(t, nil)
	gone := hook("gone", rc.URL, "Lead_Post_Create")
	gone.Delay = time.Hour
	stays := hook("stays", rc.URL, "Lead_Post_Update")
	stays.Delay = time.Hour
	e := openEngine(t, t.TempDir(), testConfig(gone, stays))

	a1 := ingest(t, e, "Lead Creation", "", `{}`)
	a2 := ingest(t, e, "Lead Creation", "", `{}`)
	kept := ingest(t, e, "Lead Update", "", `{}`)
	e.SetConfig(testConfig(stays))

	for _, a := range []Accepted{a1, a2} {
		d := waitStatus(t, e, a.Deliveries[0].ID, StatusFailure)
		if len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "removed") || !strings.Contains(d.Attempts[0].Error, "gone") {
			t.Errorf("attempts = %+v, want one saying webhook gone was removed", d.Attempts)
		}
		if !strings.Contains(d.LastError, "removed") {
			t.Errorf("last_error = %q, want the reason", d.LastError)
		}
	}
	if c := e.Counts("gone"); c != (Counts{Failure: 2}) {
		t.Errorf("counts gone = %+v, want 2 failures", c)
	}
	if d := mustGet(t, e, kept.Deliveries[0].ID); d.Status != StatusInQueue {
		t.Errorf("other webhook's delivery is %s, want in_queue", d.Status)
	}
	if n := rc.count(); n != 0 {
		t.Errorf("receiver got %d requests, want none", n)
	}
}

func TestConfigChange_RemovedWebhookFailsAfterRestart(t *testing.T) {
	gone := hook("gone", "http://127.0.0.1:1/never", "Lead_Post_Create")
	gone.Delay = time.Hour
	dir := t.TempDir()
	e1, close1 := startEngine(t, dir, testConfig(gone))
	acc := ingest(t, e1, "Lead Creation", "", `{}`)
	close1(context.Background())

	e2 := openEngine(t, dir, testConfig())
	d := waitStatus(t, e2, acc.Deliveries[0].ID, StatusFailure)
	if !strings.Contains(d.LastError, "removed") {
		t.Errorf("last_error = %q, want it to say the webhook was removed", d.LastError)
	}
}

func TestConfigChange_DisabledKeepsQueuedUntilEnabled(t *testing.T) {
	rc := newReceiver(t, nil)
	off := hook("paused", rc.URL, "Lead_Post_Create")
	off.Enabled = false
	e := openEngine(t, t.TempDir(), testConfig(off))

	a1 := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	a2 := ingest(t, e, "Lead Creation", "", `{"n":2}`)
	time.Sleep(300 * time.Millisecond)
	if n := rc.count(); n != 0 {
		t.Fatalf("a disabled webhook sent %d requests, want none", n)
	}
	for _, a := range []Accepted{a1, a2} {
		if d := mustGet(t, e, a.Deliveries[0].ID); d.Status != StatusInQueue || d.AttemptCount != 0 {
			t.Errorf("delivery %s: %s with %d attempts, want in_queue untouched", d.ID, d.Status, d.AttemptCount)
		}
	}

	on := *off
	on.Enabled = true
	e.SetConfig(testConfig(&on))
	for _, a := range []Accepted{a1, a2} {
		waitStatus(t, e, a.Deliveries[0].ID, StatusSuccess)
	}
	if n := rc.count(); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
}

func TestConfigChange_QueuedDeliveryFollowsNewURL(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := hook("moving", closedURL(t), "Lead_Post_Create")
	wh.Retry = retryOf(5, 100*time.Millisecond)
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	waitAttempts(t, e, acc.Deliveries[0].ID, 1)
	fixed := *wh
	fixed.URL = rc.URL + "/new"
	e.SetConfig(testConfig(&fixed))
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	last := d.Attempts[len(d.Attempts)-1]
	if !strings.HasPrefix(last.Request.URL, rc.URL+"/new?") {
		t.Errorf("last attempt went to %q, want the new URL", last.Request.URL)
	}
}
