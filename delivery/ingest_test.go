package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func answerJSON(t *testing.T, acc Accepted) string {
	t.Helper()
	b, err := json.Marshal(acc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIngest_IdempotentRepeat(t *testing.T) {
	rc := newReceiver(t, nil)
	e := openEngine(t, t.TempDir(), testConfig(hook("crm", rc.URL, "Lead_Post_Create")))

	first := ingest(t, e, "Lead Creation", "lead-4711-created", `{"v":1}`)
	again := ingest(t, e, "Lead Creation", "lead-4711-created", `{"v":2}`)
	if a, b := answerJSON(t, first), answerJSON(t, again); a != b {
		t.Errorf("repeat answer = %s\nwant the first %s", b, a)
	}
	waitStatus(t, e, first.Deliveries[0].ID, StatusSuccess)
	time.Sleep(100 * time.Millisecond)
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if got := rc.requests()[0].body; got != `{"v":1}` {
		t.Errorf("body = %q, want the first event's data", got)
	}
	if p, _ := e.List(Query{}); len(p.Deliveries) != 1 {
		t.Errorf("deliveries = %d, want 1", len(p.Deliveries))
	}
	if c := e.Counts("crm"); c != (Counts{Success: 1}) {
		t.Errorf("counts = %+v, want one success", c)
	}
}

func TestIngest_IdempotentWithinOneCall(t *testing.T) {
	wh := hook("crm", "http://127.0.0.1:1/never", "Lead_Post_Create")
	wh.Delay = time.Hour
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingestAll(t, e,
		incoming(t, "Lead Creation", "k", `{"v":1}`),
		incoming(t, "Lead Creation", "other", `{"v":2}`),
		incoming(t, "Lead Creation", "k", `{"v":3}`),
	)
	if a, b := answerJSON(t, acc[0]), answerJSON(t, acc[2]); a != b {
		t.Errorf("repeat in one call = %s, want the first %s", b, a)
	}
	if acc[0].ID == acc[1].ID {
		t.Error("different keys got the same event id")
	}
	if c := e.Counts("crm"); c != (Counts{InQueue: 2}) {
		t.Errorf("counts = %+v, want 2 queued", c)
	}
	later := ingest(t, e, "Lead Creation", "k", `{"v":4}`)
	if a, b := answerJSON(t, acc[0]), answerJSON(t, later); a != b {
		t.Errorf("later repeat = %s, want the first %s", b, a)
	}
}

func TestIngest_IdempotentAcrossRestart(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := hook("crm", rc.URL, "Lead_Post_Create")
	cfg := testConfig(wh)
	dir := t.TempDir()

	e1, close1 := startEngine(t, dir, cfg)
	first := ingest(t, e1, "Lead Creation", "once", `{"v":1}`)
	waitStatus(t, e1, first.Deliveries[0].ID, StatusSuccess)
	close1(context.Background())

	e2 := openEngine(t, dir, cfg)
	again := ingest(t, e2, "Lead Creation", "once", `{"v":2}`)
	if a, b := answerJSON(t, first), answerJSON(t, again); a != b {
		t.Errorf("answer after restart = %s\nwant the first %s", b, a)
	}
	time.Sleep(100 * time.Millisecond)
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if c := e2.Counts("crm"); c != (Counts{Success: 1}) {
		t.Errorf("counts after restart = %+v, want one success", c)
	}
}

func TestIngest_ArrayIsMatchedAsAWhole(t *testing.T) {
	rc := newReceiver(t, nil)
	leads := hook("leads", rc.URL+"/leads", "Lead_Post_Create", "Lead_Post_Update")
	tasks := hook("tasks", rc.URL+"/tasks", "Task_Post_Create", "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(leads, tasks))

	acc := ingestAll(t, e,
		incoming(t, "Lead Creation", "", `{"e":1}`),
		incoming(t, "Lead Update", "", `{"e":2}`),
		incoming(t, "Task Create", "", `{"e":3}`),
		incoming(t, "Lead Delete", "", `{"e":4}`),
	)
	want := [][]string{{"leads", "tasks"}, {"leads"}, {"tasks"}, {}}
	total := 0
	seen := map[string]bool{}
	for i, a := range acc {
		var got []string
		for _, p := range a.Deliveries {
			got = append(got, p.Webhook)
			if seen[p.ID] {
				t.Errorf("delivery id %s given twice", p.ID)
			}
			seen[p.ID] = true
		}
		if !slices.Equal(got, want[i]) && !(len(got) == 0 && len(want[i]) == 0) {
			t.Errorf("event %d matched %v, want %v", i, got, want[i])
		}
		if a.Deliveries == nil {
			t.Errorf("event %d: deliveries is nil, want an empty list", i)
		}
		total += len(a.Deliveries)
	}
	got := rc.wait(t, total)
	bodies := map[string]int{}
	for _, r := range got {
		bodies[r.body]++
	}
	for body, n := range map[string]int{`{"e":1}`: 2, `{"e":2}`: 1, `{"e":3}`: 1} {
		if bodies[body] != n {
			t.Errorf("receiver got %q %d times, want %d", body, bodies[body], n)
		}
	}
	for _, a := range acc {
		for _, p := range a.Deliveries {
			d := waitStatus(t, e, p.ID, StatusSuccess)
			if !slices.Equal(d.EventIDs, []string{a.ID}) {
				t.Errorf("delivery %s events %v, want [%s]", p.ID, d.EventIDs, a.ID)
			}
		}
	}
}

func TestIngest_NoMatchingWebhook(t *testing.T) {
	rc := newReceiver(t, nil)
	e := openEngine(t, t.TempDir(), testConfig(hook("crm", rc.URL, "Lead_Post_Create")))

	acc, err := e.Ingest(context.Background(), []Incoming{incoming(t, "Task Complete", "", `{"x":1}`)})
	if err != nil {
		t.Fatalf("Ingest: %v, want no error", err)
	}
	if len(acc) != 1 || acc[0].ID == "" || acc[0].Deliveries == nil || len(acc[0].Deliveries) != 0 {
		t.Fatalf("answer = %+v, want an event id and an empty deliveries list", acc)
	}
	if b := answerJSON(t, acc[0]); !json.Valid([]byte(b)) || !strings.Contains(b, `"deliveries":[]`) {
		t.Errorf("answer JSON = %s, want deliveries: []", b)
	}
	if q := e.QueueDepth(); q != 0 {
		t.Errorf("queue depth = %d, want 0", q)
	}
}

func TestIngest_IdempotentUnderConcurrentRepeats(t *testing.T) {
	wh := hook("crm", "http://127.0.0.1:1/never", "Lead_Post_Create")
	wh.Delay = time.Hour
	e := openEngine(t, t.TempDir(), testConfig(wh))

	const n = 20
	answers := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			acc, err := e.Ingest(context.Background(), []Incoming{incoming(t, "Lead Creation", "same-key", fmt.Sprintf(`{"try":%d}`, i))})
			if err != nil {
				t.Error(err)
				return
			}
			answers[i] = answerJSON(t, acc[0])
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if answers[i] != answers[0] {
			t.Fatalf("answer %d = %s\nwant the same as answer 0 = %s", i, answers[i], answers[0])
		}
	}
	if c := e.Counts("crm"); c != (Counts{InQueue: 1}) {
		t.Errorf("counts = %+v, want exactly one queued delivery", c)
	}
	if p, _ := e.List(Query{}); len(p.Deliveries) != 1 {
		t.Errorf("stored deliveries = %d, want 1", len(p.Deliveries))
	}
}
