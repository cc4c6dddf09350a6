package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

// The writer admits one op alone up to Badger's whole transaction limit
// (MaxBatchCount entries, of which Badger keeps one for its own commit
// marker). These tests build an Ingest whose writes land at that limit,
// using a custom event type with a short code and five webhooks (a config
// a user can write), and at most 1000 events (the daemon's array cap).

var shortType = config.EventType{Name: "Invoice Paid", Code: "X"}

func bigConfig() *config.Config {
	var whs []*config.Webhook
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		wh := hook(id, "http://127.0.0.1:1/never", shortType.Code)
		wh.Delay = time.Hour
		whs = append(whs, wh)
	}
	cfg := testConfig(whs...)
	cfg.Catalog = config.NewCatalog(shortType)
	return cfg
}

// writesPerEvent measures how many writes one unkeyed event stages,
// without committing anything.
func writesPerEvent(t *testing.T, e *Engine) int {
	t.Helper()
	var n int
	probe := errors.New("probe: not committed")
	err := e.store.do(context.Background(), false, func(w *wtx) error {
		e.stageEvent(w, e.cfg.Load(), Incoming{Type: shortType, Data: json.RawMessage(`0`)})
		n = len(w.writes)
		return probe
	})
	if !errors.Is(err, probe) {
		t.Fatalf("probe: %v", err)
	}
	return n
}

// eventsForWrites returns events whose Ingest stages exactly total writes:
// each keyed event adds one write (its idempotency answer).
func eventsForWrites(t *testing.T, e *Engine, total int) []Incoming {
	t.Helper()
	per := writesPerEvent(t, e)
	n := total / per
	keyed := total - n*per
	if n > 1000 || keyed > n {
		t.Skipf("cannot reach %d writes with <= 1000 events of %d writes", total, per)
	}
	evs := make([]Incoming, n)
	for i := range evs {
		evs[i] = Incoming{Type: shortType, Data: json.RawMessage(`0`)}
		if i < keyed {
			evs[i].Key = fmt.Sprintf("k%d", i)
		}
	}
	return evs
}

// An accepted request's deliveries must be counted after a restart as
// before it: the count keys are written in the same transaction.
func TestStore_CountsSurviveRestartAfterLargeIngest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := bigConfig()
	e1, close1 := startEngine(t, dir, cfg)
	// The largest ingest the engine accepts, from just under Badger's
	// limit down.
	var evs []Incoming
	for total := int(e1.store.db.MaxBatchCount()) - 2; ; total -= 5 {
		evs = eventsForWrites(t, e1, total)
		_, err := e1.Ingest(context.Background(), evs)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrStorage) || total < int(e1.store.db.MaxBatchCount())-100 {
			t.Fatalf("ingest of %d writes: %v", total, err)
		}
	}
	want := e1.Counts("a")
	if want.InQueue != int64(len(evs)) {
		t.Fatalf("counts before restart = %+v, want %d queued", want, len(evs))
	}
	close1(context.Background())

	e2 := openEngine(t, dir, cfg)
	if got := e2.Counts("a"); got != want {
		t.Errorf("counts after restart = %+v, want %+v as before", got, want)
	}
	if got, want := e2.QueueDepth(), int64(5*len(evs)); got != want {
		t.Errorf("queue depth after restart = %d, want %d", got, want)
	}
}

// A request too large for one transaction is refused as too large, and a
// refused request writes nothing, even when another request shares its
// commit group.
func TestStore_RefusedIngestWritesNothing(t *testing.T) {
	e := openEngine(t, t.TempDir(), bigConfig())
	big := eventsForWrites(t, e, int(e.store.db.MaxBatchCount()))

	// Hold the writer so that the big request and a small one are taken
	// into the same group.
	hold, held := make(chan struct{}), make(chan struct{})
	go e.store.do(context.Background(), false, func(*wtx) error {
		close(held)
		<-hold
		return nil
	})
	<-held
	bigErr := make(chan error, 1)
	go func() {
		_, err := e.Ingest(context.Background(), big)
		bigErr <- err
	}()
	for len(e.store.ops) < 1 {
		time.Sleep(time.Millisecond)
	}
	smallErr := make(chan error, 1)
	var small []Accepted
	go func() {
		var err error
		small, err = e.Ingest(context.Background(), []Incoming{{Type: shortType, Data: json.RawMessage(`1`)}})
		smallErr <- err
	}()
	for len(e.store.ops) < 2 {
		time.Sleep(time.Millisecond)
	}
	close(hold)

	if err := <-smallErr; err != nil {
		t.Errorf("small ingest failed because it shared a commit with a refused one: %v", err)
	}
	err := <-bigErr
	if err == nil {
		t.Skip("the big ingest was accepted; nothing refused to check")
	}
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("big ingest error = %v, want ErrTooLarge (413), not a storage error (503)", err)
	}
	p, lerr := e.List(Query{Webhook: "a", Limit: MaxLimit})
	if lerr != nil {
		t.Fatal(lerr)
	}
	for _, d := range p.Deliveries {
		if small == nil || d.ID != small[0].Deliveries[0].ID {
			t.Errorf("webhook a has %d deliveries stored, want at most the small request's one: the refused request was partly committed", len(p.Deliveries))
			break
		}
	}
	if c := e.Counts("a"); c.InQueue != int64(len(p.Deliveries)) {
		t.Errorf("counts = %+v, but %d deliveries are stored", c, len(p.Deliveries))
	}
}
