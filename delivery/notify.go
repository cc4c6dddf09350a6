package delivery

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/sidehook/sidehook/config"
)

// NotifyWebhook is the reserved webhook id under which failure notices are
// queued, sent and kept in history.
const NotifyWebhook = "_notify"

// NoticeMax bounds the failures one notice lists; the notices of one
// webhook are coalesced over notify.window.
const NoticeMax = 1000

// noticeType is the event type of failure notices.
var noticeType = config.EventType{Name: "Delivery Failure", Code: "Delivery_Post_Failure"}

// notifyHook turns the notify target into a webhook that the queue can
// schedule like any other. It never notifies about itself.
func notifyHook(cfg *config.Config) *config.Webhook {
	n := cfg.Notify
	if n == nil || (n.URL == "" && len(n.Command) == 0) {
		return nil
	}
	wh := &config.Webhook{
		ID:          NotifyWebhook,
		Description: "failure notices",
		Type:        config.TypeHTTP,
		Events:      []string{noticeType.Code},
		URL:         n.URL,
		ContentType: config.ContentJSON,
		Headers:     n.Headers,
		Secrets:     n.Secrets,
		Timeout:     n.Timeout,
		Concurrency: 2,
		Retry:       config.Retry{Attempts: 5, Backoff: config.DefaultBackoff, MaxBackoff: config.DefaultMaxBackoff},
		Batch:       &config.Batch{Window: n.Window, Max: NoticeMax},
		Enabled:     true,
		Command:     n.Command,
	}
	if len(n.Command) > 0 {
		wh.Type = config.TypeCommand
	}
	if wh.Timeout <= 0 {
		wh.Timeout = config.DefaultTimeout
	}
	if n.Window <= 0 {
		wh.Batch.Window = config.DefaultNoticeWindow
	}
	return wh
}

// Failure describes one delivery that ended in failure, as a notice
// carries it.
type Failure struct {
	Webhook    string    `json:"webhook"`
	Delivery   string    `json:"delivery"`
	EventType  string    `json:"event_type"`
	EventIDs   []string  `json:"event_ids"`
	Attempts   int       `json:"attempts"`
	LastStatus int       `json:"last_status"`
	LastError  string    `json:"last_error"`
	History    string    `json:"history"`
	FailedAt   time.Time `json:"failed_at"`
}

// Notice is the body posted to the notify target: the first failure's
// fields at the top (the contract's shape), then the count and every
// failure coalesced into it.
type Notice struct {
	Failure
	Count    int       `json:"count"`
	Failures []Failure `json:"failures"`
}

// stageNotice queues a failure notice for a delivery that just failed,
// coalesced with the webhook's other failures of the window.
func (e *Engine) stageNotice(w *wtx, rec *record) error {
	nw := e.notify.Load()
	if nw == nil {
		return nil
	}
	events := []string{rec.Event}
	if rec.Event == "" {
		keys, err := w.keysWithPrefix(kMemberPrefix(rec.ID))
		if err != nil {
			return err
		}
		events = events[:0]
		for _, k := range keys {
			events = append(events, string(k[len(kMemberPrefix(rec.ID)):]))
		}
	}
	return e.stageNoticeFor(w, Failure{
		Webhook: rec.Webhook, Delivery: rec.ID, EventType: rec.EventType, EventIDs: events,
		Attempts: rec.Tries, LastStatus: rec.LastCode, LastError: rec.LastError,
		History: "sidehook show " + rec.ID, FailedAt: w.now,
	})
}

// stageNoticeFor queues one failure into its webhook's open notice.
func (e *Engine) stageNoticeFor(w *wtx, f Failure) error {
	nw := e.notify.Load()
	if nw == nil {
		return nil
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	id := e.store.ids.next("evt_", w.now)
	p := stageDelivery(w, e.store.ids, nw, noticeType, "\x00"+f.Webhook, id, nil)
	ev := event{Type: noticeType.Code, ReceivedAt: w.now, Data: data, Deliveries: []string{p.ID}, Refs: 1}
	w.set(kEvent(id), ev.encode())
	return nil
}

// encodeNotice merges the coalesced failures into one notice.
func encodeNotice(data []json.RawMessage) ([]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("the notice has no failures (were they removed?)")
	}
	n := Notice{Count: len(data)}
	for _, d := range data {
		var f Failure
		if err := json.Unmarshal(d, &f); err != nil {
			return nil, err
		}
		n.Failures = append(n.Failures, f)
	}
	n.Failure = n.Failures[0]
	return json.Marshal(n)
}
