package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/daemon/ui"
	"github.com/sidehook/sidehook/delivery"
)

// routes serves the same API on the socket and the loopback port.
func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", d.postEvents)
	mux.HandleFunc("GET /v1/events", d.getEvents)
	mux.HandleFunc("GET /v1/webhooks", d.getWebhooks)
	mux.HandleFunc("GET /v1/webhooks/{id}/deliveries", d.getDeliveries)
	mux.HandleFunc("POST /v1/webhooks/{id}/ping", d.postPing)
	mux.HandleFunc("GET /v1/deliveries", d.getDeliveries)
	mux.HandleFunc("GET /v1/deliveries/{id}", d.getDelivery)
	mux.HandleFunc("POST /v1/deliveries/{id}/retry", d.postRetry)
	mux.HandleFunc("POST /v1/reload", d.postReload)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	mux.HandleFunc("GET /readyz", d.getReady)
	mux.Handle("/debug/pprof/", d.pprofHandler())
	pages := ui.New(d.engine, ui.Options{Version: d.opts.Version, Logger: d.log, ConfigError: func() string {
		if msg := d.configErr.Load(); msg != nil {
			return *msg
		}
		return ""
	}})
	mux.Handle("GET /{$}", pages)
	mux.Handle("GET /webhooks/{id}", pages)
	mux.Handle("GET /deliveries/{id}", pages)
	mux.Handle("POST /deliveries/{id}/retry", pages)
	mux.Handle("GET /ui/{file}", pages)
	return mux
}

// eventIn is one posted event. Data stays raw: receivers get it byte for
// byte as posted.
type eventIn struct {
	Event *string         `json:"event"`
	ID    string          `json:"id"`
	Data  json.RawMessage `json:"data"`
}

func (d *Daemon) postEvents(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		d.metrics.reject(rejectMediaType)
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	// The limits and the catalog come from the config in force, so a
	// reload applies them to the next request.
	cfg := d.cfg.Load()
	lim := cfg.Limits
	if r.ContentLength > lim.MaxBody {
		d.metrics.reject(rejectTooLarge)
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is %d bytes; the limit is %d (limits.max_body)", r.ContentLength, lim.MaxBody))
		return
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, lim.MaxBody), r.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			d.metrics.reject(rejectTooLarge)
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over the limit of %d bytes (limits.max_body)", lim.MaxBody))
			return
		}
		d.metrics.reject(rejectMalformed)
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	events, isArray, err := decodeEvents(body, cfg.Catalog, lim)
	if errors.Is(err, errTooMany) {
		d.metrics.reject(rejectTooLarge)
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if err != nil {
		var unknown unknownEventError
		if errors.As(err, &unknown) {
			d.metrics.reject(rejectUnknownEvent)
		} else {
			d.metrics.reject(rejectMalformed)
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	accepted, err := d.engine.Ingest(r.Context(), events)
	if errors.Is(err, delivery.ErrTooLarge) {
		d.metrics.reject(rejectTooLarge)
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d events: %v", len(events), err))
		return
	}
	if err != nil {
		d.log.Error("ingest", "err", err)
		d.metrics.reject(rejectStorage)
		writeError(w, http.StatusServiceUnavailable, "events not stored: "+err.Error()+" (nothing was written; retry later)")
		return
	}
	answer, err := encodeAnswer(accepted, isArray)
	if err != nil {
		d.log.Error("encode answer", "err", err)
		writeBody(w, http.StatusInternalServerError, []byte(encodeFailed))
		return
	}
	writeBody(w, http.StatusAccepted, answer)
}

var errTooMany = errors.New("too many events")

// readAll reads a request body of n bytes (-1: unknown) in one
// allocation where io.ReadAll, growing from 512 bytes, makes three for a
// 1 KiB event. net/http ends a body at its Content-Length, and a body cut
// short is io.ErrUnexpectedEOF. A large body is read as it comes, so that
// a client announcing one and sending nothing holds no memory for it.
func readAll(r io.Reader, n int64) ([]byte, error) {
	if n <= 0 || n > 64<<10 {
		return io.ReadAll(r)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// unknownEventError is an event name the catalog does not know.
type unknownEventError string

func (e unknownEventError) Error() string { return string(e) }

// decodeEvents reads one event object or an array of them, checking each
// against the catalog and the limits; any problem rejects the whole
// request. The caller bounds the body's size (limits.max_body); within
// it, an array keeps at most lim.MaxEvents of its elements in memory.
func decodeEvents(body []byte, cat *config.Catalog, lim config.Limits) ([]delivery.Incoming, bool, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, errors.New(`empty body: post {"event": "...", "data": {...}}`)
	}
	if trimmed[0] != '[' {
		ev, err := decodeEvent(body, cat, lim)
		if err != nil {
			return nil, false, err
		}
		return []delivery.Incoming{ev}, false, nil
	}
	raws, n, err := splitArray(body, lim.MaxEvents)
	if err != nil {
		return nil, true, err
	}
	if n == 0 {
		return nil, true, errors.New("empty array: post at least one event")
	}
	if n > lim.MaxEvents {
		return nil, true, fmt.Errorf("%w: %d events; the limit is %d in one array (limits.max_events), so split them", errTooMany, n, lim.MaxEvents)
	}
	events := make([]delivery.Incoming, len(raws))
	for i, raw := range raws {
		ev, err := decodeEvent(raw, cat, lim)
		if err != nil {
			return nil, true, fmt.Errorf("event [%d]: %w (nothing was accepted)", i, err)
		}
		events[i] = ev
	}
	return events, true, nil
}

// splitArray returns the first keep elements of the JSON array body and
// the number of elements it holds; the ones past keep are checked but not
// kept, so a long array of tiny values cannot make a large allocation.
func splitArray(body []byte, keep int) ([]json.RawMessage, int, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the [ seen by the caller
		return nil, 0, fmt.Errorf("malformed JSON: %v", err)
	}
	var raws []json.RawMessage
	n := 0
	for dec.More() {
		var err error
		if n < keep {
			var raw json.RawMessage
			err = dec.Decode(&raw)
			raws = append(raws, raw)
		} else {
			err = dec.Decode(&skipValue{})
		}
		if err != nil {
			return nil, 0, fmt.Errorf("malformed JSON: %v", err)
		}
		n++
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, 0, fmt.Errorf("malformed JSON: %v", err)
	}
	if err := endOfBody(dec, body); err != nil {
		return nil, 0, err
	}
	return raws, n, nil
}

// skipValue decodes any JSON value, keeping nothing of it.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

// endOfBody checks that only white space follows the value dec has read.
func endOfBody(dec *json.Decoder, body []byte) error {
	rest := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")
	switch {
	case len(rest) == 0:
		return nil
	case dec.More():
		return errors.New("malformed JSON: more than one value in the body")
	}
	return fmt.Errorf("malformed JSON: invalid character %q after the value", rest[0])
}

// decodeEvent reads one event object and checks it against the catalog
// and the limits.
func decodeEvent(raw []byte, cat *config.Catalog, lim config.Limits) (delivery.Incoming, error) {
	in, ok := scanEvent(raw)
	if !ok {
		var err error
		if in, err = decodeEventStrict(raw); err != nil {
			return delivery.Incoming{}, err
		}
	}
	if in.Event == nil || *in.Event == "" {
		return delivery.Incoming{}, errors.New(`missing "event": name the event type, e.g. "Lead Creation" (see: sidehook events)`)
	}
	if in.Data == nil {
		return delivery.Incoming{}, errors.New(`missing "data": the event's payload, any JSON value`)
	}
	if len(in.ID) > lim.MaxKey {
		return delivery.Incoming{}, fmt.Errorf(`"id" is %d bytes; idempotency keys are at most %d (limits.max_key)`, len(in.ID), lim.MaxKey)
	}
	if tooDeep(in.Data, lim.MaxDepth) {
		depth := jsonDepth(in.Data)
		return delivery.Incoming{}, fmt.Errorf("data nests %d levels deep; the limit is %d (limits.max_depth)", depth, lim.MaxDepth)
	}
	et, ok := cat.Lookup(*in.Event)
	if !ok {
		return delivery.Incoming{}, unknownEventError(cat.UnknownEventError(*in.Event))
	}
	return delivery.Incoming{Type: et, Key: in.ID, Data: in.Data}, nil
}

// decodeEventStrict decodes one event object with encoding/json, refusing
// unknown fields and anything after the object. It reads every body
// scanEvent does not, and words the errors.
func decodeEventStrict(raw []byte) (eventIn, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var in eventIn
	if err := dec.Decode(&in); err != nil {
		return eventIn{}, fmt.Errorf("malformed JSON: %v", err)
	}
	if err := endOfBody(dec, raw); err != nil {
		return eventIn{}, err
	}
	return in, nil
}

func (d *Daemon) getEvents(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"events": d.cfg.Load().Catalog.Types()})
}

// webhookOut is a webhook as the API shows it: never its secrets.
type webhookOut struct {
	ID          string          `json:"id"`
	Description string          `json:"description"`
	Type        string          `json:"type"`
	Events      []string        `json:"events"`
	URL         string          `json:"url"`
	ContentType string          `json:"content_type"`
	Enabled     bool            `json:"enabled"`
	Counts      delivery.Counts `json:"counts"`
	Command     []string        `json:"command,omitempty"`
	// Handshake is the last handshake of a webhook with handshake: true
	// (null until it answers, and for the others).
	Handshake *handshakeOut `json:"handshake"`
	// Circuit is the webhook's circuit breaker state.
	Circuit delivery.CircuitInfo `json:"circuit"`
}

func (d *Daemon) getWebhooks(w http.ResponseWriter, r *http.Request) {
	cfg := d.cfg.Load()
	out := make([]webhookOut, 0, len(cfg.Webhooks))
	for _, wh := range cfg.Webhooks {
		names := make([]string, 0, len(wh.Events))
		for _, code := range wh.Events {
			et, _ := cfg.Catalog.Lookup(code)
			names = append(names, et.Name)
		}
		out = append(out, webhookOut{
			ID:          wh.ID,
			Description: wh.Description,
			Type:        wh.Type,
			Events:      names,
			URL:         wh.URL,
			ContentType: wh.ContentType,
			Enabled:     wh.Enabled,
			Counts:      d.engine.Counts(wh.ID),
			Command:     wh.Command,
			Handshake:   d.handshake(wh),
			Circuit:     d.engine.Circuit(wh),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out, "config_error": d.configErr.Load()})
}

func (d *Daemon) getDeliveries(w http.ResponseWriter, r *http.Request) {
	q := delivery.Query{Webhook: r.PathValue("id"), Event: r.URL.Query().Get("event"), Cursor: r.URL.Query().Get("cursor")}
	if s := r.URL.Query().Get("status"); s != "" {
		q.Status = delivery.Status(s)
		if !q.Status.Valid() {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q: want in_queue, success or failure", s))
			return
		}
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a whole number from 1 to %d", s, delivery.MaxLimit))
			return
		}
		q.Limit = n
	}
	if q.Webhook != "" && d.cfg.Load().Webhook(q.Webhook) == nil && d.engine.Counts(q.Webhook) == (delivery.Counts{}) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no webhook %q (see: sidehook webhooks)", q.Webhook))
		return
	}
	page, err := d.engine.List(q)
	if errors.Is(err, delivery.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (d *Daemon) getDelivery(w http.ResponseWriter, r *http.Request) {
	dl, err := d.engine.Get(r.PathValue("id"))
	if errors.Is(err, delivery.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no delivery %q (see: sidehook history)", r.PathValue("id")))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, dl)
}

func (d *Daemon) postRetry(w http.ResponseWriter, r *http.Request) {
	dl, err := d.engine.Retry(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, delivery.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no delivery %q (see: sidehook history)", r.PathValue("id")))
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusAccepted, dl)
	}
}

func (d *Daemon) postPing(w http.ResponseWriter, r *http.Request) {
	wh := d.cfg.Load().Webhook(r.PathValue("id"))
	if wh == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no webhook %q (see: sidehook webhooks)", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, d.engine.Ping(r.Context(), wh))
}

func (d *Daemon) postReload(w http.ResponseWriter, r *http.Request) {
	if err := d.Reload(); err != nil {
		lines := strings.Split(err.Error(), "\n")
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error":  "config rejected; the previous config stays in force",
			"errors": lines,
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "webhooks": len(d.cfg.Load().Webhooks)})
}

func (d *Daemon) getReady(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{"ok": true, "config_error": d.configErr.Load(), "queued": d.engine.QueueDepth()}
	if err := d.engine.Healthy(); err != nil {
		body["ok"] = false
		body["error"] = "store not writable: " + err.Error()
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// encodeFailed is the body sent, with status 500, in place of an answer
// that cannot be encoded.
const encodeFailed = `{"error":"encode answer"}` + "\n"

// writeJSON answers with v in JSON and a newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(encodeFailed)
	} else {
		b = append(b, '\n')
	}
	writeBody(w, status, b)
}

// writeBody answers with the JSON body b, which ends in a newline.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
