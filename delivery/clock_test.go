package delivery

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// setClock is a wall clock that the test can set, as an operator or NTP
// sets the machine's, while the monotonic clock runs on.
type setClock struct{ offset atomic.Int64 }

func (c *setClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *setClock) set(by time.Duration) { c.offset.Add(int64(by)) }

func TestWatchClock_ReportsSteps(t *testing.T) {
	var c setClock
	steps := make(chan time.Duration, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watchClock(ctx, systemClock(c.now), 10*time.Millisecond, func(d time.Duration) { steps <- d })

	time.Sleep(50 * time.Millisecond)
	select {
	case d := <-steps:
		t.Fatalf("step of %v reported while nobody set the clock", d)
	default:
	}
	for _, by := range []time.Duration{time.Hour, -3 * time.Hour, 2 * time.Second} {
		c.set(by)
		select {
		case d := <-steps:
			if diff := d - by; diff < -100*time.Millisecond || diff > 100*time.Millisecond {
				t.Errorf("clock set by %v: step reported as %v", by, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("clock set by %v: no step reported", by)
		}
	}
}

// A step forward releases the work that is due under the new setting at
// once; a step back holds what is no longer due, and setting the clock
// right again sends it. Each delivery arrives exactly once.
func TestClockSteps_NothingLostOrRepeated(t *testing.T) {
	var c setClock
	rc := newReceiver(t, nil)
	later := hook("later", rc.URL, "Lead_Post_Create")
	later.Delay = time.Hour
	soon := hook("soon", rc.URL, "Lead_Post_Update")
	soon.Delay = 3 * time.Second
	e, err := Open(testConfig(later, soon), Options{Dir: t.TempDir(), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}

	const n = 20
	var laterIDs, soonIDs []string
	for range n {
		laterIDs = append(laterIDs, ingest(t, e, "Lead Creation", "", `{}`).Deliveries[0].ID)
		soonIDs = append(soonIDs, ingest(t, e, "Lead Update", "", `{}`).Deliveries[0].ID)
	}

	// Forward by two hours: the hour-delayed deliveries are overdue and
	// go out now, not an hour from now.
	c.set(2 * time.Hour)
	start := time.Now()
	rc.wait(t, 2*n) // and the soon ones, overdue too
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("overdue deliveries took %v after the clock step", took)
	}
	for _, id := range laterIDs {
		waitStatus(t, e, id, StatusSuccess)
	}

	// Back by two hours, then more soon ones: due three seconds after
	// their 202 by the clock in force.
	c.set(-2 * time.Hour)
	var more []string
	for range n {
		more = append(more, ingest(t, e, "Lead Update", "", `{}`).Deliveries[0].ID)
	}
	// Back by another hour before they fall due: by the wall clock they
	// are now due in an hour, so they wait, queued.
	c.set(-time.Hour)
	time.Sleep(4 * time.Second)
	if got := rc.count(); got != 2*n {
		t.Fatalf("receiver got %d requests after the clock went back, want %d", got, 2*n)
	}
	for _, id := range more {
		if d, _ := e.Get(id); d.Status != StatusInQueue {
			t.Errorf("delivery %s: %s while its due time is an hour away", id, d.Status)
		}
	}
	// Set right: they go out, once each.
	c.set(time.Hour)
	rc.wait(t, n)
	for _, id := range more {
		waitStatus(t, e, id, StatusSuccess)
	}
	time.Sleep(300 * time.Millisecond)
	if got := rc.count(); got != 3*n {
		t.Errorf("receiver got %d requests in all, want %d, each delivery once", got, 3*n)
	}
	for _, id := range append(append(laterIDs, soonIDs...), more...) {
		if d, _ := e.Get(id); len(d.Attempts) != 1 {
			t.Errorf("delivery %s: %d attempts, want 1", id, len(d.Attempts))
		}
	}
}
