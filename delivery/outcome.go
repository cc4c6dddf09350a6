package delivery

import (
	"math/rand/v2"
	"time"

	"github.com/sidehook/sidehook/config"
)

// outcome is what an attempt came to, as the writer needs it.
type outcome struct {
	attempt Attempt
	ok      bool
	// permanent failures (a body that cannot be encoded, a removed
	// webhook) end the delivery without using up retries.
	permanent  bool
	retryAfter time.Duration
	// bodyType is set when the request's body is the delivery's events
	// encoded as this content type: the attempt is then stored without
	// it, and history builds it again from the events.
	bodyType string
}

// storedAttempt is an attempt as stored. Its request body is left out
// when BodyType says how to build it again from the delivery's events,
// which live as long as the delivery: that halves what an attempt
// writes, since the body is most of it.
type storedAttempt struct {
	Attempt
	BodyType string `json:"body_type,omitempty"`
}

// sentEvents notes that body is the delivery's events encoded as
// contentType: when the attempt sent exactly that, it is stored without
// it.
func (oc *outcome) sentEvents(body []byte, contentType string) {
	if r := oc.attempt.Request; r != nil && r.Body == string(body) {
		oc.bodyType = contentType
	}
}

// stored returns the attempt as it is kept.
func (oc *outcome) stored() storedAttempt {
	sa := storedAttempt{Attempt: oc.attempt}
	if oc.bodyType != "" && oc.attempt.Request != nil {
		req := *oc.attempt.Request
		req.Body = ""
		sa.Request, sa.BodyType = &req, oc.bodyType
	}
	return sa
}

// stageOutcome records an attempt on the delivery and moves it on: to
// success, to a retry, or to failure. It reports the status it ended in.
func stageOutcome(w *wtx, rec *record, wh *config.Webhook, oc outcome) Status {
	rec.Tries++
	oc.attempt.N = rec.Tries
	rec.LastAt = &oc.attempt.At
	rec.LastCode = 0
	if oc.attempt.Response != nil {
		rec.LastCode = oc.attempt.Response.Status
	}
	rec.LastError = oc.attempt.Error
	manual := oc.attempt.Manual
	if !manual {
		rec.AutoTries++
	}
	var final Status
	switch {
	case oc.ok:
		final = StatusSuccess
	case manual && rec.Status == StatusInQueue:
		// A failed manual try leaves the automatic schedule as it was.
	case manual:
		final = StatusFailure
	case rec.Status != StatusInQueue:
		// A late automatic attempt on a finished delivery is only recorded.
	case oc.permanent || wh == nil || rec.AutoTries >= wh.Retry.Attempts:
		final = StatusFailure
	default:
		next := w.now.Add(retryDelay(wh.Retry, rec.AutoTries, oc.retryAfter))
		oc.attempt.RetryAt = &next
		w.del(kQueue(rec.Webhook, rec.DueAt, rec.ID))
		rec.DueAt = next
		w.enqueue(rec.Webhook, next, rec.ID)
	}
	sa := oc.stored()
	w.set(kAttempt(rec.ID, rec.Tries), sa.encode())
	if final != "" {
		setStatus(w, rec, final)
	}
	w.set(kDelivery(rec.ID), rec.encode())
	return rec.Status
}

// setStatus moves a delivery to a final status with its indexes, counts
// and retention entry.
func setStatus(w *wtx, rec *record, st Status) {
	if rec.Batch && !rec.Sealed {
		rec.Sealed = true
		closeBatch(w, rec)
	}
	if rec.Status == StatusInQueue {
		w.del(kQueue(rec.Webhook, rec.DueAt, rec.ID))
	}
	if rec.FinishedAt != nil {
		w.del(kRetain(*rec.FinishedAt, rec.ID))
	}
	if rec.Status != st {
		w.del(kWebhookStatus(rec.Webhook, rec.Status, rec.ID))
		w.set(kWebhookStatus(rec.Webhook, st, rec.ID), nil)
		w.count(rec.Webhook, rec.Status, -1)
		w.count(rec.Webhook, st, 1)
	}
	now := w.now
	rec.Status = st
	rec.FinishedAt = &now
	w.set(kRetain(now, rec.ID), nil)
}

// closeBatch ends a batch's window: no event joins it any more.
func closeBatch(w *wtx, rec *record) {
	k := kOpen(rec.Webhook, rec.EventType+rec.Group)
	if ob, open := w.openBatch(k); open && ob.Delivery == rec.ID {
		w.setOpenBatch(k, nil)
	}
}

// retryDelay is the wait before the next automatic attempt after tries
// failed ones: backoff doubling per retry up to maxBackoff, +-20% jitter,
// or the receiver's Retry-After when that is longer (capped at a day).
func retryDelay(r config.Retry, tries int, retryAfter time.Duration) time.Duration {
	d := r.Backoff
	for i := 1; i < tries && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	if retryAfter > d {
		d = min(retryAfter, 24*time.Hour)
	}
	return d
}

// readRecord reads a delivery record inside an op.
func readRecord(w *wtx, id string) (*record, bool, error) {
	var rec record
	ok, err := w.getRecord(id, &rec)
	if !ok || err != nil {
		return nil, ok, err
	}
	return &rec, true, nil
}

// stageExpire deletes a finished delivery with everything it owns; an
// event goes with the last delivery that carried it.
func stageExpire(w *wtx, id string) error {
	rec, ok, err := readRecord(w, id)
	if err != nil || !ok {
		return err
	}
	if rec.Event != "" {
		if err := releaseEvent(w, rec.Event); err != nil {
			return err
		}
	} else {
		members, err := w.keysWithPrefix(kMemberPrefix(id))
		if err != nil {
			return err
		}
		for _, mk := range members {
			if err := releaseEvent(w, string(mk[len(kMemberPrefix(id)):])); err != nil {
				return err
			}
			w.del(mk)
		}
	}
	attempts, err := w.keysWithPrefix(kAttemptPrefix(id))
	if err != nil {
		return err
	}
	for _, ak := range attempts {
		w.del(ak)
	}
	w.del(kDelivery(id))
	w.del(kWebhook(rec.Webhook, id))
	w.del(kWebhookStatus(rec.Webhook, rec.Status, id))
	if rec.FinishedAt != nil {
		w.del(kRetain(*rec.FinishedAt, id))
	}
	if rec.Status == StatusInQueue {
		w.del(kQueue(rec.Webhook, rec.DueAt, id))
	}
	w.count(rec.Webhook, rec.Status, -1)
	return nil
}

// releaseEvent drops one delivery's reference to an event, and the event
// with the last one.
func releaseEvent(w *wtx, eid string) error {
	b, found, err := w.get(kEvent(eid))
	if err != nil || !found {
		return err
	}
	var ev event
	if err := ev.decode(b); err != nil {
		return err
	}
	ev.Refs--
	if ev.Refs <= 0 {
		w.del(kEvent(eid))
	} else {
		w.set(kEvent(eid), ev.encode())
	}
	return nil
}

// keysWithPrefix lists the committed keys under a prefix.
func (w *wtx) keysWithPrefix(p []byte) ([][]byte, error) {
	it := w.txn.NewIterator(keysOnly(p))
	defer it.Close()
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys, nil
}
