package delivery

import (
	"context"
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
