// Package delivery is sidehook's durable queue: it stores accepted events
// and their deliveries in Badger, schedules them by due time (delay, batch
// windows, retries), sends them, and keeps every attempt as history.
//
// Data moves one way: Ingest writes events and deliveries; the scheduler
// finds due deliveries through a due-time index; a Sender makes the
// attempt; the outcome is written back as history and, on failure, as the
// next due time.
package delivery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sidehook/sidehook/config"
)

// Options configure an Engine.
type Options struct {
	// Dir is the data directory of the Badger store.
	Dir    string
	Logger *slog.Logger
	// UserAgent is sent with every request, e.g. "sidehook/1.0.0".
	UserAgent string
	// Registerer receives the engine's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// MinFree is the disk space kept in reserve (see DefaultMinFree);
	// negative turns the guard off.
	MinFree int64
	// Now is the wall clock that due times and history are read from;
	// nil means time.Now. Tests set it to simulate the clock being set.
	Now func() time.Time
}

// DefaultMinFree is the disk space the store keeps free by default.
const DefaultMinFree = 128 << 20

// Engine owns the store, the scheduler and the senders.
type Engine struct {
	store   *store
	cfg     atomic.Pointer[config.Config]
	log     *slog.Logger
	http    *httpSender
	command Sender
	notify  atomic.Pointer[config.Webhook]
	metrics *metrics
	sched   *scheduler
	stop    context.CancelFunc
	bg      chan struct{}
}

// Open opens (or creates) the store in opts.Dir with cfg as the first
// configuration. Nothing is sent until Start.
func Open(cfg *config.Config, opts Options) (*Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	minFree := opts.MinFree
	if minFree == 0 {
		minFree = DefaultMinFree
	}
	s, err := openStore(opts.Dir, minFree, log)
	if err != nil {
		return nil, err
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if opts.Now != nil {
		s.now = opts.Now
	}
	e := &Engine{store: s, log: log, http: newHTTPSender(opts.UserAgent, cfg), command: newCommandSender(), bg: make(chan struct{})}
	e.cfg.Store(cfg)
	e.notify.Store(notifyHook(cfg))
	e.metrics = newMetrics(reg, e)
	e.sched = newScheduler(e)
	s.onQueue = e.sched.queued
	return e, nil
}

// Start begins scheduling and sending, and the retention and space
// reclaiming loops, until Close.
func (e *Engine) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	if err := e.sched.start(); err != nil {
		cancel()
		return err
	}
	go e.maintain(ctx)
	go watchClock(ctx, systemClock(e.store.now), time.Second, e.sched.clockStepped)
	return nil
}

// SetConfig makes cfg the configuration every later ingest and attempt
// follows. Queued deliveries follow the new definition of their webhook.
func (e *Engine) SetConfig(cfg *config.Config) {
	e.http.setConfig(cfg)
	e.notify.Store(notifyHook(cfg))
	e.cfg.Store(cfg)
	e.sched.configChanged(cfg)
}

// Config returns the configuration in force.
func (e *Engine) Config() *config.Config { return e.cfg.Load() }

// Close stops scheduling, lets attempts in flight finish until ctx is
// done, cancels the rest (they stay queued and are retried at the next
// start), and closes the store.
func (e *Engine) Close(ctx context.Context) error {
	if e.stop != nil {
		e.stop()
		<-e.bg
	}
	e.sched.shutdown(ctx)
	e.http.close()
	return e.store.close()
}

// Healthy returns nil while the store takes writes, else the last error.
func (e *Engine) Healthy() error { return e.store.healthy() }

// Counts returns a webhook's deliveries per status.
func (e *Engine) Counts(webhook string) Counts { return e.store.countsFor(webhook) }

// QueueDepth returns the number of queued deliveries.
func (e *Engine) QueueDepth() int64 { return e.store.queueDepth() }

// webhook returns the current definition of a webhook, the notify target
// for NotifyWebhook, or nil.
func (e *Engine) webhook(id string) *config.Webhook {
	if id == NotifyWebhook {
		return e.notify.Load()
	}
	return e.cfg.Load().Webhook(id)
}

// senderFor picks the sender of a webhook's type.
func (e *Engine) senderFor(wh *config.Webhook) Sender {
	switch wh.Type {
	case config.TypeCommand:
		return e.command
	}
	return e.http
}

// attempt makes one scheduled attempt at the delivery behind a due-index
// entry. A stale entry (the delivery moved on since it was read) is
// skipped. Attempts cut short by shutdown are not recorded: the delivery
// stays queued and is tried again at the next start.
func (e *Engine) attempt(ctx context.Context, en dueEntry) attemptResult {
	id := en.id
	d, sn, err := e.dueOf(en)
	if err != nil {
		return attemptResult{unrecorded: true}
	}
	defer e.store.watches.unwatch(sn)
	if d.rec == nil {
		return attemptResult{}
	}
	rec, wh := d.rec, d.wh
	if wh == nil {
		at := e.store.now()
		err := e.finish(id, nil, outcome{permanent: true, attempt: Attempt{At: at,
			Error: fmt.Sprintf("webhook %q was removed from the configuration; the delivery cannot be sent", rec.Webhook)}}, sn)
		return attemptResult{unrecorded: err != nil}
	}
	var oc outcome
	if d.ready {
		oc = e.send(ctx, rec, wh, false, d.body, d.bodyErr)
	} else {
		oc = e.try(ctx, rec, wh, false)
	}
	if ctx.Err() != nil && !oc.ok {
		return attemptResult{}
	}
	err = e.finish(id, wh, oc, sn)
	return attemptResult{oc: oc, tried: !oc.permanent, unrecorded: err != nil}
}

// dueOf returns the delivery behind a due entry as it was read ahead, or
// reads it now if it was not, or a commit or a new configuration changed
// it since. The watch it returns is finish's to use and the caller's to
// end.
func (e *Engine) dueOf(en dueEntry) (*dueDelivery, *seen, error) {
	if d, sn := en.pre, en.seen; d != nil && !e.store.watches.changed(sn) && (d.rec == nil || e.webhook(d.rec.Webhook) == d.wh) {
		return d, sn, nil
	}
	if en.seen != nil {
		e.store.watches.unwatch(en.seen)
	}
	sn := e.store.watches.watch(en.id)
	d, err := e.readDue(en.id, en.due)
	if err != nil {
		e.store.watches.unwatch(sn)
		return nil, nil, err
	}
	sn.rec = d.rec
	return &d, sn, nil
}

// attemptResult tells the dispatcher what came of an attempt: the outcome
// for the circuit breaker, and whether the store failed to record it (the
// delivery is then still due, behind the dispatcher's cursor).
type attemptResult struct {
	oc         outcome
	tried      bool
	unrecorded bool
}

// dueDelivery is a delivery read for a scheduled attempt: nil rec when
// it is no longer due at the time its entry named.
type dueDelivery struct {
	rec *record
	wh  *config.Webhook // nil: the webhook was removed
	// ready says body and bodyErr hold what building the body gave; a
	// batch still open to new events must be sealed first (see try).
	ready   bool
	body    []byte
	bodyErr error
}

// readDue reads the delivery behind a due-index entry and, when it can go
// out as it stands, the body its webhook gets, in one read.
func (e *Engine) readDue(id string, due time.Time) (dueDelivery, error) {
	var d dueDelivery
	err := e.store.db.View(func(txn *badger.Txn) error {
		var err error
		d, err = e.readDueWith(txn, txn, id, due)
		return err
	})
	return d, err
}

// readDueWith is readDue inside a read: records and events come from g,
// a batch's members from txn.
func (e *Engine) readDueWith(g getter, txn *badger.Txn, id string, due time.Time) (dueDelivery, error) {
	var d dueDelivery
	rec, err := getRecord(g, id)
	if err != nil || rec == nil || rec.Status != StatusInQueue || !rec.DueAt.Equal(due) {
		return d, err
	}
	d.rec, d.wh = rec, e.webhook(rec.Webhook)
	if d.wh == nil || rec.Batch && !rec.Sealed {
		return d, nil
	}
	ids, err := eventIDs(txn, rec)
	if err != nil {
		return d, err
	}
	d.body, d.bodyErr = readBody(g, rec, ids, d.wh.ContentType)
	d.ready = true
	return d, nil
}

// readAhead reads the deliveries behind a batch of due entries, as
// readDue would one by one, in one read and in id order: a delivery's
// record and event lie next to those of the deliveries made just before
// and after it, so that a walk finds most of them a step or two on.
// Each entry is watched from before the read; the attempt reads it again
// if a commit changed it in the meantime.
func (e *Engine) readAhead(entries []dueEntry) {
	order := make([]int, len(entries))
	for i := range entries {
		order[i] = i
		entries[i].seen = e.store.watches.watch(entries[i].id)
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(entries[a].id, entries[b].id) })
	err := e.store.db.View(func(txn *badger.Txn) error {
		w := newWalk(txn)
		defer w.close()
		for _, i := range order {
			en := &entries[i]
			d, err := e.readDueWith(w, txn, en.id, en.due)
			if err != nil {
				return err
			}
			en.pre, en.seen.rec = &d, d.rec
		}
		return nil
	})
	if err != nil {
		for i := range entries {
			entries[i].pre = nil // each attempt reads its own, and reports
		}
	}
}

// try builds the body of a delivery and sends it once.
func (e *Engine) try(ctx context.Context, rec *record, wh *config.Webhook, manual bool) outcome {
	if rec.Batch && !rec.Sealed {
		if err := e.seal(rec.ID); err != nil {
			return outcome{attempt: Attempt{At: e.store.now(), Manual: manual, Error: err.Error()}}
		}
	}
	body, err := e.body(rec, wh.ContentType)
	return e.send(ctx, rec, wh, manual, body, err)
}

// send makes one attempt with the body built from the delivery's events,
// or fails it for good with the error that building it gave.
func (e *Engine) send(ctx context.Context, rec *record, wh *config.Webhook, manual bool, body []byte, bodyErr error) outcome {
	if bodyErr != nil {
		return outcome{permanent: true, attempt: Attempt{At: e.store.now(), Manual: manual, Error: bodyErr.Error()}}
	}
	m := &Message{Delivery: rec.ID, Webhook: wh, EventType: rec.EventType, Body: body, N: rec.Tries + 1, Manual: manual}
	oc := e.senderFor(wh).send(ctx, m)
	oc.sentEvents(body, wh.ContentType)
	e.metrics.attempted(wh.ID, oc)
	if !oc.ok {
		e.log.Warn("attempt failed", "webhook", wh.ID, "delivery", rec.ID, "attempt", m.N,
			"status_code", statusOf(oc), "err", oc.attempt.Error)
	} else {
		e.log.Debug("attempt succeeded", "webhook", wh.ID, "delivery", rec.ID, "attempt", m.N, "status_code", statusOf(oc))
	}
	return oc
}

func statusOf(oc outcome) int {
	if oc.attempt.Response != nil {
		return oc.attempt.Response.Status
	}
	return 0
}

// finish records an attempt's outcome in one unsynced transaction: losing
// it to a crash only repeats the attempt, it never loses the delivery.
// sn, when not nil, is the record as the attempt read it, used unless it
// changed since.
func (e *Engine) finish(id string, wh *config.Webhook, oc outcome, sn *seen) error {
	var final Status
	var rec *record
	err := e.store.do(context.Background(), false, func(w *wtx) error {
		r, ok, err := w.seenRecord(id, sn)
		if err != nil || !ok {
			return err
		}
		rec = r
		final = stageOutcome(w, r, wh, oc)
		if final == StatusFailure && !oc.attempt.Manual && wh != nil && wh.NotifyOnFailure && wh.ID != NotifyWebhook {
			return e.stageNotice(w, r)
		}
		return nil
	})
	if err != nil {
		e.log.Error("record attempt", "delivery", id, "err", err)
		return err
	}
	if rec == nil {
		return nil
	}
	if final != StatusInQueue {
		e.metrics.finished(rec.Webhook, final)
	}
	if final == StatusFailure && !oc.attempt.Manual {
		e.log.Error("delivery failed", "webhook", rec.Webhook, "delivery", id, "attempt", rec.Tries, "err", rec.LastError)
	}
	return nil
}

// seal closes a batch to new members before it is read for sending.
func (e *Engine) seal(id string) error {
	return e.store.do(context.Background(), false, func(w *wtx) error {
		rec, ok, err := readRecord(w, id)
		if err != nil || !ok || rec.Sealed {
			return err
		}
		rec.Sealed = true
		w.set(kDelivery(id), rec.encode())
		closeBatch(w, rec)
		return nil
	})
}

// body reads a delivery's events in arrival order and encodes them.
func (e *Engine) body(rec *record, contentType string) ([]byte, error) {
	var b []byte
	err := e.store.db.View(func(txn *badger.Txn) error {
		ids, err := eventIDs(txn, rec)
		if err != nil {
			return err
		}
		b, err = readBody(txn, rec, ids, contentType)
		return err
	})
	return b, err
}

// eventIDs lists a delivery's events in arrival order.
func eventIDs(txn *badger.Txn, rec *record) ([]string, error) {
	if rec.Event != "" {
		return []string{rec.Event}, nil
	}
	return memberIDs(txn, rec.ID)
}

// readBody builds the body a delivery sends as contentType from its
// events (ids): what the sender posts and, for attempts that kept no copy
// of it, what history shows.
func readBody(g getter, rec *record, ids []string, contentType string) ([]byte, error) {
	data := make([]json.RawMessage, 0, len(ids))
	for _, eid := range ids {
		item, err := g.Get(kEvent(eid))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err == nil {
			var ev event
			err = item.Value(ev.decode)
			data = append(data, ev.Data)
		}
		if err != nil {
			return nil, fmt.Errorf("read events of %s: %w", rec.ID, err)
		}
	}
	if rec.Webhook == NotifyWebhook {
		return encodeNotice(data)
	}
	return encodeBody(contentType, rec.Batch, data)
}

// Retry makes one manual attempt at a delivery now, outside its retry
// budget, and returns the delivery as it stands after it.
func (e *Engine) Retry(ctx context.Context, id string) (Delivery, error) {
	rec, err := e.readRecord(id)
	if err != nil {
		return Delivery{}, err
	}
	if rec == nil {
		return Delivery{}, ErrNotFound
	}
	wh := e.webhook(rec.Webhook)
	if wh == nil {
		return Delivery{}, fmt.Errorf("webhook %q is no longer configured; add it back to retry its deliveries", rec.Webhook)
	}
	oc := e.try(ctx, rec, wh, true)
	e.finish(id, wh, oc, nil)
	if !oc.permanent {
		e.sched.dispatcher(wh.ID).observe(wh, oc, false)
	}
	return e.Get(id)
}

func (e *Engine) readRecord(id string) (*record, error) {
	var rec *record
	err := e.store.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = getRecord(txn, id)
		return err
	})
	return rec, err
}

// getRecord reads a delivery record, or nil when there is none.
func getRecord(g getter, id string) (*record, error) {
	item, err := g.Get(kDelivery(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec := &record{}
	return rec, item.Value(rec.decode)
}

// maintain expires finished deliveries past the retention and reclaims
// value-log space, until ctx is done.
func (e *Engine) maintain(ctx context.Context) {
	defer close(e.bg)
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()
	gc := time.NewTicker(5 * time.Minute)
	defer gc.Stop()
	e.expire(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			e.expire(ctx)
		case <-gc.C:
			e.store.reclaim()
		}
	}
}

// expire deletes finished deliveries older than the history retention.
func (e *Engine) expire(ctx context.Context) {
	cutoff := e.store.now().Add(-e.cfg.Load().HistoryRetention)
	var from []byte
	for ctx.Err() == nil {
		ids, next, err := e.store.finishedBefore(from, cutoff, 500)
		from = next
		if err != nil || len(ids) == 0 {
			if err != nil {
				e.log.Error("list expired deliveries", "err", err)
			}
			return
		}
		err = e.store.do(ctx, false, func(w *wtx) error {
			for _, id := range ids {
				if err := stageExpire(w, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			e.log.Error("expire deliveries", "err", err)
			return
		}
		e.log.Debug("expired deliveries", "count", len(ids))
	}
}

// ExpireNow runs the retention sweep once; tests and operators use it.
func (e *Engine) ExpireNow(ctx context.Context) { e.expire(ctx) }
