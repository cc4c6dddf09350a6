package delivery

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sidehook/sidehook/config"
)

// readyBatch is how many due entries a dispatcher reads ahead of its free
// slots, so that a fast webhook does not open an iterator per attempt.
const readyBatch = 256

// scheduler runs one dispatcher per webhook found in the configuration or
// the queue, so that a slow or dead receiver only ever holds its own
// webhook's slots.
type scheduler struct {
	e *Engine

	mu  sync.Mutex
	ds  map[string]*dispatcher
	run context.Context // dispatch loops
	end context.CancelFunc
	// attempts is cancelled only when shutdown's grace period is over.
	attempts   context.Context
	abort      context.CancelFunc
	loops      sync.WaitGroup
	inflight   sync.WaitGroup
	workers    workers
	started    bool
	shutdowned bool
}

func newScheduler(e *Engine) *scheduler {
	s := &scheduler{e: e, ds: map[string]*dispatcher{}, workers: workers{tasks: make(chan func())}}
	s.run, s.end = context.WithCancel(context.Background())
	s.attempts, s.abort = context.WithCancel(context.Background())
	return s
}

// start creates dispatchers for every configured webhook and for every
// webhook that still has queued deliveries (a removed one among them).
func (s *scheduler) start() error {
	queued, err := s.e.store.queuedWebhooks()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	for _, wh := range s.e.cfg.Load().Webhooks {
		s.dispatcher(wh.ID).poke()
	}
	for _, id := range queued {
		s.dispatcher(id).poke()
	}
	return nil
}

// dispatcher returns the webhook's dispatcher, starting it if needed.
func (s *scheduler) dispatcher(webhook string) *dispatcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.ds[webhook]
	if d == nil && s.started && !s.shutdowned {
		d = &dispatcher{s: s, webhook: webhook, from: kQueuePrefix(webhook), claimed: map[string]bool{}, wake: make(chan struct{}, 1)}
		s.ds[webhook] = d
		s.loops.Add(1)
		go d.loop()
	}
	if d == nil {
		return &dispatcher{wake: make(chan struct{}, 1)} // not running: pokes go nowhere
	}
	return d
}

// queued is called after a commit added a due-index entry.
func (s *scheduler) queued(q queued) {
	en := dueEntry{key: kQueue(q.webhook, q.due, q.id), id: q.id, due: q.due, pre: q.pre, seen: q.seen}
	if !s.dispatcher(q.webhook).queued(en, s.e.store.now()) && en.seen != nil {
		s.e.store.watches.unwatch(en.seen)
	}
}

// configChanged wakes every dispatcher so it reads its webhook's new
// definition, and starts one for each new webhook.
func (s *scheduler) configChanged(cfg *config.Config) {
	for _, wh := range cfg.Webhooks {
		s.dispatcher(wh.ID)
	}
	s.pokeAll()
}

// pokeAll wakes every dispatcher to look at its due index again.
func (s *scheduler) pokeAll() {
	s.mu.Lock()
	ds := make([]*dispatcher, 0, len(s.ds))
	for _, d := range s.ds {
		ds = append(ds, d)
	}
	s.mu.Unlock()
	for _, d := range ds {
		d.poke()
	}
}

// shutdown stops dispatching, waits for attempts in flight until ctx is
// done, then cancels those left.
func (s *scheduler) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.shutdowned = true
	s.mu.Unlock()
	s.end()
	s.loops.Wait()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.abort()
		<-done
	}
	s.abort()
	s.workers.stop()
}

// workers run attempts on goroutines that outlive one attempt: a new
// goroutine per attempt grew a new stack through the HTTP client and
// Badger each time. A worker waits for the next attempt until stop; there
// are never more of them than attempts ran at once.
type workers struct {
	tasks   chan func()
	stopped sync.Once
}

// run runs f on an idle worker, or on a new one when none is idle.
func (w *workers) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		go w.work(f)
	}
}

func (w *workers) work(f func()) {
	for ok := true; ok; f, ok = <-w.tasks {
		f()
	}
}

// stop ends the idle workers; run must not be called after it.
func (w *workers) stop() { w.stopped.Do(func() { close(w.tasks) }) }

// dispatcher sends one webhook's due deliveries, at most its concurrency
// at a time, in due order. It keeps a cursor into the due index so that
// it never rescans entries it has already taken (or the tombstones they
// leave behind); an entry added before the cursor rewinds it.
type dispatcher struct {
	s       *scheduler
	webhook string
	wake    chan struct{}

	mu       sync.Mutex
	from     []byte          // the next due-index key to read
	ready    []dueEntry      // read ahead, due, not yet sent
	claimed  map[string]bool // ids in ready or in flight
	inflight int
	// caughtUp says the due index holds nothing due between the cursor
	// and nextDue (zero: its end) that the dispatcher has not taken: the
	// last scan found everything there, and every entry committed since
	// was handed over by queued. Until nextDue, it need not scan again.
	caughtUp bool
	nextDue  time.Time
	circuit  circuitState
	// wakeAt is when the dispatcher's timer will next wake it to read
	// due entries; zero while it waits only for a poke.
	wakeAt time.Time
}

type dueEntry struct {
	key []byte
	id  string
	due time.Time
	// pre is the delivery as read ahead, by a dispatcher's scan, under
	// the watch seen; nil when the attempt must read it.
	pre  *dueDelivery
	seen *seen
}

func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// queued is told of a new due-index entry. The dispatcher needs no
// wake-up when the entry lies ahead of its cursor and falls due no sooner
// than the time it already waits for: it reads the entry then. That
// spares a scan per commit while events queue up for a delayed webhook.
// A caught-up dispatcher takes an entry that is due now straight into
// ready, which spares the scan per commit of a webhook that keeps up. It
// reports whether it took the entry.
func (d *dispatcher) queued(en dueEntry, now time.Time) (taken bool) {
	d.mu.Lock()
	ahead := d.from != nil && bytes.Compare(en.key, d.from) >= 0
	later := ahead && !d.wakeAt.IsZero() && !en.due.Before(d.wakeAt)
	switch {
	case !ahead:
		d.rewindLocked(en.key)
	case !d.caughtUp:
	case en.due.After(now):
		if d.nextDue.IsZero() || en.due.Before(d.nextDue) {
			d.nextDue = en.due
		}
	case len(d.ready) < readyBatch && !d.claimed[en.id] && (d.nextDue.IsZero() || en.due.Before(d.nextDue)):
		// Due before any entry known to wait ahead, so the cursor does
		// not pass one.
		d.ready = append(d.ready, en)
		d.claimed[en.id] = true
		d.from = append(en.key, 0)
		taken = true
	default:
		d.caughtUp = false // scan for it
	}
	d.mu.Unlock()
	if !later {
		d.poke()
	}
	return taken
}

// rewind moves the cursor back to k if it has passed it, and wakes the
// dispatcher.
func (d *dispatcher) rewind(k []byte) {
	d.mu.Lock()
	d.rewindLocked(k)
	d.mu.Unlock()
	d.poke()
}

func (d *dispatcher) rewindLocked(k []byte) {
	if d.from != nil && bytes.Compare(k, d.from) < 0 {
		d.from = k
		d.caughtUp = false
	}
}

func (d *dispatcher) loop() {
	defer d.s.loops.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := d.dispatch()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(d.s.e.store.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-d.s.run.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// dispatch starts as many due attempts as there are free slots and
// returns when the next entry falls due (zero: wait for a wake-up).
func (d *dispatcher) dispatch() (next time.Time) {
	if d.s.run.Err() != nil {
		return time.Time{}
	}
	wh := d.s.e.webhook(d.webhook)
	limit := readyBatch // a removed webhook: fail its deliveries briskly
	horizon := d.s.e.store.now()
	if wh != nil {
		if !wh.Enabled {
			d.mu.Lock()
			d.wakeAt = time.Time{}
			d.mu.Unlock()
			return time.Time{}
		}
		limit = wh.Concurrency
	} else {
		horizon = horizon.Add(100 * 365 * 24 * time.Hour)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() { d.wakeAt = next }() // runs first, under the lock
	if d.circuit.open {
		// One probe at a time, when it is due; the rest stay queued.
		if d.inflight > 0 {
			return time.Time{}
		}
		if horizon.Before(d.circuit.probeAt) {
			return d.circuit.probeAt
		}
		limit = 1
	}
	for d.inflight < limit {
		if len(d.ready) == 0 {
			if d.caughtUp && (d.nextDue.IsZero() || horizon.Before(d.nextDue)) {
				next = d.nextDue
				break
			}
			entries, n, last, err := d.s.e.store.scanDue(d.from, kQueuePrefix(d.webhook), horizon, readyBatch, d.claimed)
			if err != nil {
				d.s.e.log.Error("scan due deliveries", "webhook", d.webhook, "err", err)
				return d.s.e.store.now().Add(time.Second)
			}
			if last != nil {
				d.from = append(last, 0)
			}
			next = n
			d.caughtUp, d.nextDue = len(entries) < readyBatch, n
			if len(entries) == 0 {
				break
			}
			for _, en := range entries {
				d.claimed[en.id] = true
			}
			// Commits need the lock to tell of new entries: read the
			// claimed entries' deliveries without it. Meanwhile queued
			// must not take a new entry for one this dispatch will read
			// at the time it waits for: that time is not known yet.
			probing := d.circuit.open
			d.wakeAt = time.Time{}
			d.mu.Unlock()
			d.s.e.readAhead(entries)
			d.mu.Lock()
			d.ready = append(entries, d.ready...)
			if d.circuit.open != probing {
				return time.Time{} // the next attempt to end wakes us
			}
		}
		en := d.ready[0]
		d.ready = d.ready[1:]
		d.inflight++
		d.s.inflight.Add(1)
		probe := d.circuit.open
		d.s.workers.run(func() { d.attempt(en, probe) })
	}
	if len(d.ready) > 0 || d.inflight >= limit {
		return time.Time{} // a finishing attempt wakes us
	}
	return next
}

func (d *dispatcher) attempt(en dueEntry, probe bool) {
	defer d.s.inflight.Done()
	res := d.s.e.attempt(d.s.attempts, en)
	if res.tried {
		d.observe(d.s.e.webhook(d.webhook), res.oc, probe)
	}
	d.mu.Lock()
	d.inflight--
	delete(d.claimed, en.id)
	d.mu.Unlock()
	if res.unrecorded {
		// The store refused the outcome: the entry is still due but
		// behind the cursor. Read it again after a pause.
		time.AfterFunc(time.Second, func() { d.rewind(en.key) })
	}
	d.poke()
}

// scanDue reads up to limit due-index entries under prefix, from key
// from, that are due at now and not in skip. It returns the due time of
// the first entry not yet due (zero if none) and the last key it passed.
func (s *store) scanDue(from, prefix []byte, now time.Time, limit int, skip map[string]bool) (entries []dueEntry, next time.Time, last []byte, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(keysOnly(prefix))
		defer it.Close()
		for it.Seek(from); it.Valid(); it.Next() {
			k := it.Item().Key()
			_, due, id, ok := queueEntry(k)
			if !ok {
				continue
			}
			if due.After(now) {
				next = due
				return nil
			}
			last = it.Item().KeyCopy(last[:0])
			if skip[id] {
				continue
			}
			entries = append(entries, dueEntry{key: append([]byte(nil), k...), id: id, due: due})
			if len(entries) >= limit {
				return nil
			}
		}
		return nil
	})
	return entries, next, last, err
}

// queuedWebhooks lists the webhooks that have entries in the due index,
// jumping from one webhook's prefix to the next.
func (s *store) queuedWebhooks() ([]string, error) {
	var ids []string
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(keysOnly([]byte{pQueue}))
		defer it.Close()
		for it.Rewind(); it.Valid(); {
			webhook, _, _, ok := queueEntry(it.Item().Key())
			if !ok {
				it.Next()
				continue
			}
			ids = append(ids, webhook)
			it.Seek(prefixEnd(kQueuePrefix(webhook)))
		}
		return nil
	})
	return ids, err
}

func keysOnly(prefix []byte) badger.IteratorOptions {
	return badger.IteratorOptions{Prefix: prefix, PrefetchValues: false}
}
