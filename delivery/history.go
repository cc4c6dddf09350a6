package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Paging limits of history listings.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Query selects deliveries, newest first. Zero fields select everything.
type Query struct {
	Webhook string
	Status  Status
	// Event is an event id, or the idempotency key it was posted with.
	Event  string
	Limit  int
	Cursor string
}

// Page is one page of a listing. NextCursor is nil on the last page.
type Page struct {
	Deliveries []Delivery `json:"deliveries"`
	NextCursor *string    `json:"next_cursor"`
}

// ErrBadCursor is returned for a cursor this daemon did not hand out.
var ErrBadCursor = errors.New("bad cursor: pass the next_cursor of the previous page as it was")

// ValidID reports whether s has the form of a delivery id, spelled as
// sidehook spells it: the last character carries two unused bits, and an
// id with them set decodes to the same bytes but sorts after the real one,
// so as a cursor it would repeat that delivery.
func ValidID(s string) bool {
	if len(s) != idLen || !strings.HasPrefix(s, "dlv_") {
		return false
	}
	if _, ok := idTime(s); !ok {
		return false
	}
	b, _ := idEncoding.DecodeString(s[4:])
	return idEncoding.EncodeToString(b) == s[4:]
}

// Get returns one delivery with its events and every attempt.
func (e *Engine) Get(id string) (Delivery, error) {
	var d Delivery
	err := e.store.db.View(func(txn *badger.Txn) error {
		var err error
		d, err = readDelivery(txn, id, true)
		return err
	})
	return d, err
}

// List returns a page of deliveries, newest first.
func (e *Engine) List(q Query) (Page, error) { return e.list(q, true) }

// list is List, with or without each delivery's attempts.
func (e *Engine) list(q Query, attempts bool) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	if q.Cursor != "" && !ValidID(q.Cursor) {
		return Page{}, ErrBadCursor
	}
	page := Page{Deliveries: []Delivery{}}
	err := e.store.db.View(func(txn *badger.Txn) error {
		if q.Event != "" {
			return listByEvent(txn, q, &page)
		}
		return newestFirst(txn, e.store.indexesFor(q.Webhook, q.Status), q.Cursor, func(id string) (bool, error) {
			if len(page.Deliveries) == q.Limit {
				last := page.Deliveries[len(page.Deliveries)-1].ID
				page.NextCursor = &last
				return false, nil
			}
			d, err := readDelivery(txn, id, attempts)
			if errors.Is(err, ErrNotFound) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			page.Deliveries = append(page.Deliveries, d)
			return true, nil
		})
	})
	return page, err
}

// indexesFor returns the key prefixes whose ids, merged, are the
// deliveries of a webhook and status (either may be empty for all).
// There is no index by status alone: a status across webhooks is every
// webhook's list for it, merged, which spares each delivery four index
// writes. A webhook's deliveries keep an index of their own rather than
// merging its three statuses: the in_queue list of a busy webhook is
// mostly deletions, which a listing would walk over every time.
func (s *store) indexesFor(webhook string, st Status) [][]byte {
	switch {
	case webhook == "" && st == "":
		return [][]byte{{pDelivery}} // ids sort by creation time
	case st == "":
		return [][]byte{kWebhookPrefix(webhook)}
	case webhook != "":
		return [][]byte{kWebhookStatusPrefix(webhook, st)}
	}
	s.mu.RLock()
	webhooks := slices.Sorted(maps.Keys(s.counts))
	s.mu.RUnlock()
	prefixes := make([][]byte, 0, len(webhooks))
	for _, wh := range webhooks {
		prefixes = append(prefixes, kWebhookStatusPrefix(wh, st))
	}
	return prefixes
}

// newestFirst calls fn with the ids under the prefixes, merged into one
// list newest first (ids sort by creation time), starting after cursor
// (the last id of the previous page), until fn returns false.
func newestFirst(txn *badger.Txn, prefixes [][]byte, cursor string, fn func(id string) (bool, error)) error {
	type head struct {
		it     *badger.Iterator
		prefix []byte
	}
	heads := make([]head, 0, len(prefixes))
	for _, p := range prefixes {
		opts := keysOnly(p)
		opts.Reverse = true
		it := txn.NewIterator(opts)
		defer it.Close()
		seek := append(slices.Clip(p), 0xff)
		if cursor != "" {
			seek = append(slices.Clip(p), cursor...)
		}
		it.Seek(seek)
		heads = append(heads, head{it, p})
	}
	for {
		best, bestID := -1, ""
		for i, h := range heads {
			for h.it.Valid() && string(h.it.Item().Key()[len(h.prefix):]) == cursor {
				h.it.Next()
			}
			if !h.it.Valid() {
				continue
			}
			if id := string(h.it.Item().Key()[len(h.prefix):]); best < 0 || id > bestID {
				best, bestID = i, id
			}
		}
		if best < 0 {
			return nil
		}
		heads[best].it.Next()
		if more, err := fn(bestID); !more || err != nil {
			return err
		}
	}
}

// listByEvent finds the deliveries that carried an event.
func listByEvent(txn *badger.Txn, q Query, page *Page) error {
	var ids []string
	item, err := txn.Get(kEvent(q.Event))
	switch {
	case err == nil:
		var ev event
		if err := item.Value(ev.decode); err != nil {
			return err
		}
		ids = ev.Deliveries
	case errors.Is(err, badger.ErrKeyNotFound):
		item, err := txn.Get(kIdem(q.Event))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var acc Accepted
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &acc) }); err != nil {
			return err
		}
		for _, p := range acc.Deliveries {
			ids = append(ids, p.ID)
		}
	default:
		return err
	}
	// ids are in creation order, so the cursor (the last id of the
	// previous page) splits them even when that delivery has expired.
	for i := len(ids) - 1; i >= 0; i-- {
		if q.Cursor != "" && ids[i] >= q.Cursor {
			continue
		}
		d, err := readDelivery(txn, ids[i], true)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if (q.Webhook == "" || d.Webhook == q.Webhook) && (q.Status == "" || d.Status == q.Status) {
			if len(page.Deliveries) == q.Limit {
				last := page.Deliveries[len(page.Deliveries)-1].ID
				page.NextCursor = &last
				return nil
			}
			page.Deliveries = append(page.Deliveries, d)
		}
	}
	return nil
}

func readDelivery(txn *badger.Txn, id string, attempts bool) (Delivery, error) {
	item, err := txn.Get(kDelivery(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Delivery{}, ErrNotFound
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("read delivery %s: %w", id, err)
	}
	var rec record
	if err := item.Value(rec.decode); err != nil {
		return Delivery{}, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	d := rec.delivery()
	if d.EventIDs, err = eventIDs(txn, &rec); err != nil {
		return Delivery{}, err
	}
	if !attempts {
		return d, nil
	}
	opts := badger.IteratorOptions{Prefix: kAttemptPrefix(id), PrefetchValues: true, PrefetchSize: 8}
	it := txn.NewIterator(opts)
	defer it.Close()
	bodies := map[string]string{} // rebuilt, by content type
	for it.Rewind(); it.Valid(); it.Next() {
		var a storedAttempt
		if err := it.Item().Value(a.decode); err != nil {
			return Delivery{}, fmt.Errorf("decode attempt of %s: %w", id, err)
		}
		if a.BodyType != "" && a.Request != nil {
			body, ok := bodies[a.BodyType]
			if !ok {
				b, err := readBody(txn, &rec, d.EventIDs, a.BodyType)
				if err != nil {
					return Delivery{}, fmt.Errorf("rebuild the request body of %s: %w", id, err)
				}
				body = string(b)
				bodies[a.BodyType] = body
			}
			a.Request.Body = body
		}
		d.Attempts = append(d.Attempts, a.Attempt)
	}
	return d, nil
}

// memberIDs lists a delivery's events in arrival order.
func memberIDs(txn *badger.Txn, id string) ([]string, error) {
	p := kMemberPrefix(id)
	it := txn.NewIterator(keysOnly(p))
	defer it.Close()
	ids := []string{}
	for it.Rewind(); it.Valid(); it.Next() {
		ids = append(ids, string(it.Item().Key()[len(p):]))
	}
	return ids, nil
}

// finishedBefore lists up to limit deliveries that finished before t,
// from the retention-index key from on (nil: the start). It returns the
// key to go on from, so that a sweep does not walk again over the
// deletions it made: before they are compacted away, each one would cost
// every later scan from the start a step.
func (s *store) finishedBefore(from []byte, t time.Time, limit int) (ids []string, next []byte, err error) {
	end := kRetain(t, "")
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(keysOnly([]byte{pRetain}))
		defer it.Close()
		if from == nil {
			from = []byte{pRetain}
		}
		for it.Seek(from); it.Valid() && len(ids) < limit; it.Next() {
			k := it.Item().Key()
			if string(k) >= string(end) {
				break
			}
			ids = append(ids, string(k[1+8:]))
			next = append(it.Item().KeyCopy(next[:0]), 0)
		}
		return nil
	})
	return ids, next, err
}
