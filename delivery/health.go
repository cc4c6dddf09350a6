package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Alive checks that the engine still makes progress: the scheduler is
// running, the store's writer commits an empty change within ctx, and the
// store answers a read. The daemon feeds systemd's watchdog only while it
// returns nil, so a wedged writer gets the process restarted.
func (e *Engine) Alive(ctx context.Context) error {
	s := e.sched
	s.mu.Lock()
	started, stopped := s.started, s.shutdowned
	s.mu.Unlock()
	switch {
	case !started:
		return errors.New("scheduler not started")
	case stopped || s.run.Err() != nil:
		return errors.New("scheduler stopped")
	}
	// Once submitted, an op is waited for without a deadline; wait here
	// with one instead, so a wedged writer is reported, not joined.
	done := make(chan error, 1)
	go func() { done <- e.store.do(ctx, false, func(*wtx) error { return nil }) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("store writer: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("store writer: no commit: %w", ctx.Err())
	}
	if err := e.store.db.View(func(*badger.Txn) error { return nil }); err != nil {
		return fmt.Errorf("store read: %w", err)
	}
	return nil
}

// OldestDue returns the due time of a webhook's earliest queued delivery,
// read from the first key of its due index, or false when it has none.
func (e *Engine) OldestDue(webhook string) (time.Time, bool) {
	var due time.Time
	var found bool
	e.store.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(keysOnly(kQueuePrefix(webhook)))
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if _, d, _, ok := queueEntry(it.Item().Key()); ok {
				due, found = d, true
				return nil
			}
		}
		return nil
	})
	return due, found
}
