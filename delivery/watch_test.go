package delivery

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// An attempt's read of a record stands only while nothing has written the
// record since: neither an earlier op of the same group, still
// uncommitted, nor a commit.
func TestWatch_AWriteSinceTheReadIsSeen(t *testing.T) {
	wh := hook("off", "http://127.0.0.1:1/hook", "Lead_Post_Create")
	wh.Enabled = false // no attempt runs: the test makes the changes
	e := openEngine(t, t.TempDir(), testConfig(wh))
	s := e.store
	id := ingest(t, e, "Lead Creation", "", `{}`).Deliveries[0].ID

	sn := s.watches.watch(id)
	defer s.watches.unwatch(sn)
	rec, err := e.readRecord(id)
	if err != nil || rec == nil {
		t.Fatalf("read %s: %v, %v", id, rec, err)
	}
	sn.rec = rec

	tries := func(w *wtx) int {
		r, ok, err := w.seenRecord(id, sn)
		if err != nil || !ok {
			t.Errorf("seenRecord: %v, %v", ok, err)
			return -1
		}
		return r.Tries
	}
	var before int
	if err := s.do(context.Background(), false, func(w *wtx) error { before = tries(w); return nil }); err != nil {
		t.Fatal(err)
	}
	if before != 0 {
		t.Fatalf("unchanged record: %d tries, want 0", before)
	}

	// Hold the writer so that the next two ops wait and go in one group.
	hold, held := make(chan struct{}), make(chan struct{})
	go s.do(context.Background(), false, func(w *wtx) error { close(held); <-hold; return nil })
	<-held
	submit := func(fn func(w *wtx) error) chan error {
		done := make(chan error, 1)
		n := len(s.ops)
		go func() { done <- s.do(context.Background(), false, fn) }()
		for len(s.ops) == n {
			time.Sleep(time.Millisecond)
		}
		return done
	}
	wrote := submit(func(w *wtx) error {
		r, _, err := readRecord(w, id)
		if err != nil {
			return err
		}
		r.Tries = 7
		w.set(kDelivery(id), r.encode())
		return nil
	})
	var inGroup int
	read := submit(func(w *wtx) error { inGroup = tries(w); return nil })
	close(hold)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if inGroup != 7 {
		t.Errorf("after an earlier op of the group wrote it: %d tries, want 7", inGroup)
	}

	var later int
	if err := s.do(context.Background(), false, func(w *wtx) error { later = tries(w); return nil }); err != nil {
		t.Fatal(err)
	}
	if later != 7 {
		t.Errorf("after a commit wrote it: %d tries, want 7", later)
	}
}

// An event due at once is handed to the scheduler with its commit, ready
// to send; a change to its record before the dispatcher takes it is seen
// all the same: here it finished in the meantime, so it is not sent.
func TestHandOver_AChangeBeforeTheDispatcherTakesItIsSeen(t *testing.T) {
	rc := newReceiver(t, nil)
	e := openEngine(t, t.TempDir(), testConfig(hook("now", rc.URL, "Lead_Post_Create")))
	s := e.store
	var armed atomic.Bool
	handed := 0
	tell := s.onQueue
	s.onQueue = func(q queued) { // runs after the commit, before the dispatcher hears of it
		if q.pre != nil && armed.Load() {
			handed++
			err := s.do(context.Background(), false, func(w *wtx) error {
				r, _, err := readRecord(w, q.id)
				if err != nil {
					return err
				}
				setStatus(w, r, StatusSuccess)
				w.set(kDelivery(q.id), r.encode())
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}
		tell(q)
	}
	// A first delivery, so that the dispatcher's first scan is over and
	// it keeps up: only then does it take entries from commits.
	waitStatus(t, e, ingest(t, e, "Lead Creation", "", `{"lead":0}`).Deliveries[0].ID, StatusSuccess)
	armed.Store(true)
	id := ingest(t, e, "Lead Creation", "", `{"lead":1}`).Deliveries[0].ID
	waitStatus(t, e, id, StatusSuccess)
	time.Sleep(200 * time.Millisecond) // room for a wrong send
	if handed != 1 {
		t.Fatalf("%d entries handed over with their delivery, want 1", handed)
	}
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1: none for the delivery that finished before its turn", n)
	}
	if d := mustGet(t, e, id); d.AttemptCount != 0 {
		t.Errorf("delivery has %d attempts, want none", d.AttemptCount)
	}
}
