package delivery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

func batchHook(id, url string, window time.Duration, max int, events ...string) *config.Webhook {
	wh := hook(id, url, events...)
	wh.BatchOff = false
	wh.Batch = &config.Batch{Window: window, Max: max}
	return wh
}

func TestBatch_OneRequestInArrivalOrder(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	wh := batchHook("batched", rc.URL, 300*time.Millisecond, 100, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	var accs []Accepted
	var datas []string
	for i := range 5 {
		data := fmt.Sprintf(`{"i": %d}`, i)
		datas = append(datas, data)
		accs = append(accs, ingest(t, e, "Lead Creation", "", data))
	}
	id := accs[0].Deliveries[0].ID
	var eventIDs []string
	for i, a := range accs {
		if len(a.Deliveries) != 1 || a.Deliveries[0].ID != id {
			t.Errorf("event %d: deliveries %+v, want the batch %s", i, a.Deliveries, id)
		}
		if !a.Deliveries[0].DueAt.Equal(accs[0].Deliveries[0].DueAt) {
			t.Errorf("event %d: due_at %v, want the window close %v", i, a.Deliveries[0].DueAt, accs[0].Deliveries[0].DueAt)
		}
		eventIDs = append(eventIDs, a.ID)
	}
	got := rc.wait(t, 1)[0]
	if want := "[" + strings.Join(datas, ",") + "]"; got.body != want {
		t.Errorf("body = %s, want %s", got.body, want)
	}
	if got.at.Before(accs[0].Deliveries[0].DueAt) {
		t.Errorf("sent at %v, before the window closed at %v", got.at, accs[0].Deliveries[0].DueAt)
	}
	d := waitStatus(t, e, id, StatusSuccess)
	if !slices.Equal(d.EventIDs, eventIDs) {
		t.Errorf("event_ids = %v, want %v", d.EventIDs, eventIDs)
	}
	time.Sleep(100 * time.Millisecond)
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if c := e.Counts("batched"); c != (Counts{Success: 1}) {
		t.Errorf("counts = %+v, want one success", c)
	}
}

func TestBatch_MaxSplitsAndSendsFullBatchesEarly(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	const window = 2 * time.Second
	wh := batchHook("max3", rc.URL, window, 3, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	var evs []Incoming
	for i := range 7 {
		evs = append(evs, incoming(t, "Lead Creation", "", fmt.Sprintf(`{"i":%d}`, i)))
	}
	start := time.Now()
	accs := ingestAll(t, e, evs...)
	var groups [][]string
	group := map[string]int{}
	for i, a := range accs {
		id := a.Deliveries[0].ID
		if _, ok := group[id]; !ok {
			group[id] = len(groups)
			groups = append(groups, nil)
		}
		groups[group[id]] = append(groups[group[id]], fmt.Sprint(i))
	}
	if got := fmt.Sprint(groups); got != "[[0 1 2] [3 4 5] [6]]" {
		t.Fatalf("events per delivery = %s, want [[0 1 2] [3 4 5] [6]]", got)
	}
	full := rc.wait(t, 2)
	bodies := []string{full[0].body, full[1].body}
	slices.Sort(bodies)
	if want := []string{`[{"i":0},{"i":1},{"i":2}]`, `[{"i":3},{"i":4},{"i":5}]`}; !slices.Equal(bodies, want) {
		t.Errorf("full batches = %v, want %v", bodies, want)
	}
	for _, r := range full {
		if !r.at.Before(start.Add(window)) {
			t.Errorf("a full batch arrived at +%v, want before the window closed (+%v)", r.at.Sub(start), window)
		}
	}
	last := rc.wait(t, 1)[0]
	if last.body != `[{"i":6}]` {
		t.Errorf("last batch = %s, want [{\"i\":6}]", last.body)
	}
	if due := accs[6].Deliveries[0].DueAt; last.at.Before(due) {
		t.Errorf("partial batch arrived at %v, before its due_at %v", last.at, due)
	}
	for _, a := range []Accepted{accs[0], accs[3], accs[6]} {
		d := waitStatus(t, e, a.Deliveries[0].ID, StatusSuccess)
		if d.AttemptCount != 1 {
			t.Errorf("delivery %s: %d attempts, want 1", d.ID, d.AttemptCount)
		}
	}
}

func TestBatch_ActivityEventsBatchedByDefault(t *testing.T) {
	wh := hook("activity", "http://127.0.0.1:1/never", "LeadActivity_Post_Create", "Lead_Post_Create")
	wh.BatchOff = false // no batch setting: the default applies
	e := openEngine(t, t.TempDir(), testConfig(wh))

	before := time.Now()
	a1 := ingest(t, e, "Lead Activity Creation", "", `{"a":1}`)
	a2 := ingest(t, e, "Lead Activity Creation", "", `{"a":2}`)
	if a1.Deliveries[0].ID != a2.Deliveries[0].ID {
		t.Errorf("activity events got deliveries %s and %s, want one batch", a1.Deliveries[0].ID, a2.Deliveries[0].ID)
	}
	due := a1.Deliveries[0].DueAt
	if want := before.Add(config.DefaultBatchWindow); due.Sub(want).Abs() > 2*time.Second {
		t.Errorf("due_at = %v, want about now + 1m (%v)", due, want)
	}
	lead := ingest(t, e, "Lead Creation", "", `{"l":1}`)
	if id := lead.Deliveries[0].ID; id == a1.Deliveries[0].ID {
		t.Error("a non-activity event joined the activity batch")
	}
	if d := lead.Deliveries[0].DueAt; d.After(time.Now()) {
		t.Errorf("non-activity event due at %v, want now (not batched)", d)
	}
	d := mustGet(t, e, a1.Deliveries[0].ID)
	if !slices.Equal(d.EventIDs, []string{a1.ID, a2.ID}) {
		t.Errorf("event_ids = %v, want [%s %s]", d.EventIDs, a1.ID, a2.ID)
	}
}

func TestBatch_OffSendsSeparately(t *testing.T) {
	rc := newReceiver(t, nil)
	wh := hook("single", rc.URL, "LeadActivity_Post_Create")
	wh.BatchOff = true
	e := openEngine(t, t.TempDir(), testConfig(wh))

	a1 := ingest(t, e, "Lead Activity Creation", "", `{"a":1}`)
	a2 := ingest(t, e, "Lead Activity Creation", "", `{"a":2}`)
	if a1.Deliveries[0].ID == a2.Deliveries[0].ID {
		t.Fatal("batch: off still grouped the events")
	}
	got := rc.wait(t, 2)
	bodies := []string{got[0].body, got[1].body}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{`{"a":1}`, `{"a":2}`}) {
		t.Errorf("bodies = %v, want each event's data alone (no array)", bodies)
	}
}

func TestBatch_SurvivesRestartMidWindow(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	wh := batchHook("durable", rc.URL, 2*time.Second, 100, "Lead_Post_Create")
	cfg := testConfig(wh)
	dir := t.TempDir()

	e1, close1 := startEngine(t, dir, cfg)
	a1 := ingest(t, e1, "Lead Creation", "", `{"n":1}`)
	a2 := ingest(t, e1, "Lead Creation", "", `{"n":2}`)
	close1(context.Background())

	e2 := openEngine(t, dir, cfg)
	a3 := ingest(t, e2, "Lead Creation", "", `{"n":3}`)
	id := a1.Deliveries[0].ID
	for i, a := range []Accepted{a2, a3} {
		if a.Deliveries[0].ID != id {
			t.Errorf("event %d went to %s, want the open batch %s", i+2, a.Deliveries[0].ID, id)
		}
	}
	got := rc.wait(t, 1)[0]
	if want := `[{"n":1},{"n":2},{"n":3}]`; got.body != want {
		t.Errorf("body = %s, want %s", got.body, want)
	}
	d := waitStatus(t, e2, id, StatusSuccess)
	if !slices.Equal(d.EventIDs, []string{a1.ID, a2.ID, a3.ID}) {
		t.Errorf("event_ids = %v, want all three", d.EventIDs)
	}
	time.Sleep(100 * time.Millisecond)
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestBatch_EventAfterWindowStartsNewBatch(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	wh := batchHook("windows", rc.URL, 200*time.Millisecond, 100, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	a1 := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	waitStatus(t, e, a1.Deliveries[0].ID, StatusSuccess)
	a2 := ingest(t, e, "Lead Creation", "", `{"n":2}`)
	if a2.Deliveries[0].ID == a1.Deliveries[0].ID {
		t.Fatal("an event after the batch was sent joined it")
	}
	got := rc.wait(t, 2)
	if got[0].body != `[{"n":1}]` || got[1].body != `[{"n":2}]` {
		t.Errorf("bodies = %q, %q; want one single-item array each", got[0].body, got[1].body)
	}
}

func TestBatch_DueAtWindowClosePlusDelay(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	wh := batchHook("delayed-batch", rc.URL, 200*time.Millisecond, 100, "Lead_Post_Create")
	wh.Delay = 400 * time.Millisecond
	e := openEngine(t, t.TempDir(), testConfig(wh))

	before := time.Now()
	a1 := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	due := a1.Deliveries[0].DueAt
	if want := before.Add(600 * time.Millisecond); due.Before(want) || due.After(want.Add(time.Second)) {
		t.Errorf("due_at = +%v, want the window close plus the delay (+600ms)", due.Sub(before))
	}
	time.Sleep(300 * time.Millisecond) // the window has closed; the batch is not yet due
	a2 := ingest(t, e, "Lead Creation", "", `{"n":2}`)
	if a2.Deliveries[0].ID == a1.Deliveries[0].ID {
		t.Error("an event after the window closed joined the batch")
	}
	got := rc.wait(t, 2)
	byBody := map[string]received{got[0].body: got[0], got[1].body: got[1]}
	first, ok := byBody[`[{"n":1}]`]
	if !ok {
		t.Fatalf("bodies = %q, %q; want [{\"n\":1}] and [{\"n\":2}]", got[0].body, got[1].body)
	}
	if first.at.Before(due) {
		t.Errorf("first batch arrived at %v, before its due_at %v", first.at, due)
	}
}
