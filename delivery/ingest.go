package delivery

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sidehook/sidehook/config"
)

// IdempotencyWindow is how long an event's idempotency key is remembered.
const IdempotencyWindow = 24 * time.Hour

// Incoming is one event as posted by an application, already checked
// against the catalog.
type Incoming struct {
	Type config.EventType
	// Key is the optional idempotency key ("id" in the request).
	Key  string
	Data json.RawMessage
}

// Accepted is the answer for one accepted event.
type Accepted struct {
	ID         string    `json:"id"`
	Deliveries []Planned `json:"deliveries"`
}

// Planned names a delivery that carries an accepted event.
type Planned struct {
	ID      string    `json:"id"`
	Webhook string    `json:"webhook"`
	DueAt   time.Time `json:"due_at"`
}

// Ingest stores events and the deliveries they match under the current
// configuration, as one atomic, fsync'd change, and returns what each
// event was matched to. An event whose key was seen within
// IdempotencyWindow is not stored again: its first answer is returned.
func (e *Engine) Ingest(ctx context.Context, events []Incoming) ([]Accepted, error) {
	cfg := e.cfg.Load()
	results := make([]Accepted, len(events))
	err := e.store.do(ctx, true, func(w *wtx) error {
		seen := map[string]int{}
		for i, ev := range events {
			if ev.Key != "" {
				if j, ok := seen[ev.Key]; ok {
					results[i] = results[j]
					continue
				}
				var prev Accepted
				ok, err := w.getJSON(kIdem(ev.Key), &prev)
				if err != nil {
					return err
				}
				if ok {
					results[i] = prev
					seen[ev.Key] = i
					continue
				}
			}
			acc := e.stageEvent(w, cfg, ev)
			if ev.Key != "" {
				b, _ := json.Marshal(acc)
				w.setTTL(kIdem(ev.Key), b, IdempotencyWindow)
				seen[ev.Key] = i
			}
			results[i] = acc
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, ev := range events {
		e.metrics.accepted(ev.Type.Code)
	}
	return results, nil
}

// stageEvent writes one event and adds it to a delivery for every webhook
// that subscribes to its type.
func (e *Engine) stageEvent(w *wtx, cfg *config.Config, ev Incoming) Accepted {
	id := e.store.ids.next("evt_", w.now)
	acc := Accepted{ID: id, Deliveries: []Planned{}}
	var ids []string
	for _, wh := range cfg.Webhooks {
		if !wh.Subscribes(ev.Type.Code) {
			continue
		}
		p := stageDelivery(w, e.store.ids, wh, ev.Type, "", id, ev.Data)
		acc.Deliveries = append(acc.Deliveries, p)
		ids = append(ids, p.ID)
	}
	if len(ids) > 0 {
		rec := event{Type: ev.Type.Code, ReceivedAt: w.now, Data: ev.Data, Deliveries: ids, Refs: len(ids)}
		w.set(kEvent(id), rec.encode())
	}
	return acc
}

// stageDelivery puts an event into the webhook's open batch for its type
// (and group), or opens a new delivery for it. data, when not nil, is the
// event's, handed to the scheduler with a delivery due at once.
func stageDelivery(w *wtx, ids *idGen, wh *config.Webhook, et config.EventType, group, eventID string, data json.RawMessage) Planned {
	batch, batched := wh.BatchFor(et)
	if !batched {
		// A delivery of one event names it in its record; only batches
		// keep member keys.
		rec := newRecord(w, ids, wh.ID, et.Code, w.now.Add(wh.Delay), false, eventID)
		if data != nil && wh.Delay <= 0 {
			w.handOver(rec, wh, data)
		}
		return Planned{ID: rec.ID, Webhook: wh.ID, DueAt: rec.DueAt}
	}
	ok := kOpen(wh.ID, et.Code+group)
	// An open batch is always a queued, unsealed delivery: sealing and
	// finishing a batch close it (see seal and setStatus), so joining it
	// needs no read of the delivery until it is full.
	if ob, open := w.openBatch(ok); open && w.now.Before(ob.Closes) && ob.Count < ob.Max {
		w.set(kMember(ob.Delivery, eventID), nil)
		ob.Count++
		if ob.Count < ob.Max {
			w.setOpenBatch(ok, &ob)
			return Planned{ID: ob.Delivery, Webhook: wh.ID, DueAt: ob.Due}
		}
		// Full: the window closes now; send after the delay.
		w.setOpenBatch(ok, nil)
		rec, found, err := readRecord(w, ob.Delivery)
		if err != nil || !found {
			return Planned{ID: ob.Delivery, Webhook: wh.ID, DueAt: ob.Due}
		}
		if due := w.now.Add(wh.Delay); due.Before(rec.DueAt) {
			w.del(kQueue(wh.ID, rec.DueAt, rec.ID))
			rec.DueAt = due
			w.enqueue(wh.ID, due, rec.ID)
		}
		rec.Sealed = true
		w.set(kDelivery(rec.ID), rec.encode())
		return Planned{ID: rec.ID, Webhook: wh.ID, DueAt: rec.DueAt}
	}
	rec := newRecord(w, ids, wh.ID, et.Code, w.now.Add(batch.Window+wh.Delay), true, "")
	w.set(kMember(rec.ID, eventID), nil)
	if group != "" {
		rec.Group = group
		w.set(kDelivery(rec.ID), rec.encode())
	}
	if batch.Max <= 1 {
		rec.Sealed = true
		w.set(kDelivery(rec.ID), rec.encode())
		w.setOpenBatch(ok, nil)
	} else {
		w.setOpenBatch(ok, &openBatch{Delivery: rec.ID, Closes: w.now.Add(batch.Window), Count: 1, Max: batch.Max, Due: rec.DueAt})
	}
	return Planned{ID: rec.ID, Webhook: wh.ID, DueAt: rec.DueAt}
}

// newRecord stages a new queued delivery with its indexes.
func newRecord(w *wtx, ids *idGen, webhook, eventType string, due time.Time, batch bool, eventID string) *record {
	rec := &record{
		ID:        ids.next("dlv_", w.now),
		Webhook:   webhook,
		EventType: eventType,
		Status:    StatusInQueue,
		CreatedAt: w.now,
		DueAt:     due,
		Batch:     batch,
		Sealed:    !batch,
		Event:     eventID,
	}
	w.set(kDelivery(rec.ID), rec.encode())
	w.set(kWebhook(webhook, rec.ID), nil)
	w.set(kWebhookStatus(webhook, StatusInQueue, rec.ID), nil)
	w.enqueue(webhook, due, rec.ID)
	w.count(webhook, StatusInQueue, 1)
	return rec
}
