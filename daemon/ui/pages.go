package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/delivery"
)

// Listing limits of a webhook's history page.
const (
	// PageSize is how many deliveries a history page shows by default.
	PageSize = 50
	// MaxPageSize bounds the limit parameter.
	MaxPageSize = 200
	// FilterScan bounds how many deliveries one page reads while
	// filtering by event type (which the store does not index); the page
	// then offers to continue from where it stopped.
	FilterScan = 2000
)

var funcs = template.FuncMap{
	"plural": plural,
	"status": func(s string) statusView { return newStatus(delivery.Status(s)) },
	"table": func(rows []deliveryRow, showWebhook bool) deliveryTable {
		return deliveryTable{Rows: rows, ShowWebhook: showWebhook}
	},
}

// deliveryTable is a list of deliveries; ShowWebhook adds a column for
// lists that span webhooks.
type deliveryTable struct {
	Rows        []deliveryRow
	ShowWebhook bool
}

// timeView is an instant as the pages show it: UTC text that the script
// turns into the browser's zone, keeping UTC for the tooltip.
type timeView struct {
	ISO string
	UTC string
}

func newTime(t time.Time) timeView {
	if t.IsZero() {
		return timeView{}
	}
	u := t.UTC()
	return timeView{ISO: u.Format("2006-01-02T15:04:05.000Z"), UTC: u.Format("2006-01-02 15:04:05") + " UTC"}
}

func newTimePtr(t *time.Time) timeView {
	if t == nil {
		return timeView{}
	}
	return newTime(*t)
}

// statusView is a status as people read it: a word, an icon and a colour.
type statusView struct {
	Key   string
	Label string
}

func newStatus(s delivery.Status) statusView {
	switch s {
	case delivery.StatusSuccess:
		return statusView{"success", "Success"}
	case delivery.StatusFailure:
		return statusView{"failure", "Failure"}
	case delivery.StatusInQueue:
		return statusView{"in_queue", "In Queue"}
	}
	return statusView{string(s), string(s)}
}

// option is one choice of a filter.
type option struct {
	Value, Label string
	Selected     bool
}

func statusOptions(sel delivery.Status) []option {
	opts := []option{{Value: "", Label: "Any status", Selected: sel == ""}}
	for _, s := range []delivery.Status{delivery.StatusInQueue, delivery.StatusSuccess, delivery.StatusFailure} {
		opts = append(opts, option{Value: string(s), Label: newStatus(s).Label, Selected: s == sel})
	}
	return opts
}

// eventName returns an event type's name for its code.
func eventName(cfg *config.Config, code string) string {
	if et, ok := cfg.Catalog.Lookup(code); ok {
		return et.Name
	}
	return code
}

func webhookHref(id string, q url.Values) string {
	u := "/webhooks/" + url.PathEscape(id)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func deliveryHref(id string) string { return "/deliveries/" + url.PathEscape(id) }

// webhookRow is one webhook on the webhooks page, and the head of its
// history page.
type webhookRow struct {
	ID          string
	Href        string
	Description string
	Events      []string
	Target      string
	Command     bool
	// Known is false for a webhook that has history but is no longer in
	// the configuration.
	Known   bool
	Enabled bool
	// Circuit is "open", "closed" or "off"; CircuitNote explains an open
	// one.
	Circuit     string
	CircuitNote string
	Internal    bool
	Counts      delivery.Counts
	CountHref   map[string]string
	Stats       hourStats
	StatsErr    string
}

func (h *Handler) webhookRow(cfg *config.Config, id string, withStats bool) webhookRow {
	row := webhookRow{ID: id, Href: webhookHref(id, nil), Counts: h.engine.Counts(id), Circuit: "off"}
	row.CountHref = map[string]string{}
	for _, s := range []delivery.Status{delivery.StatusInQueue, delivery.StatusSuccess, delivery.StatusFailure} {
		row.CountHref[string(s)] = webhookHref(id, url.Values{"status": {string(s)}})
	}
	switch wh := cfg.Webhook(id); {
	case wh != nil:
		row.Known, row.Enabled, row.Description = true, wh.Enabled, wh.Description
		for _, code := range wh.Events {
			row.Events = append(row.Events, eventName(cfg, code))
		}
		row.Target = wh.URL
		if len(wh.Command) > 0 {
			row.Command, row.Target = true, strings.Join(wh.Command, " ")
		}
		c := h.engine.Circuit(wh)
		row.Circuit = c.State
		if c.State == "open" && c.ProbeAt != nil {
			row.CircuitNote = fmt.Sprintf("paused after %d failed attempts; next probe at %s",
				c.Failures, c.ProbeAt.UTC().Format("15:04:05 UTC"))
		}
	case id == delivery.NotifyWebhook && cfg.Notify != nil:
		row.Known, row.Enabled, row.Internal = true, true, true
		row.Description = "Failure notices to administrators"
		row.Target = cfg.Notify.URL
		if len(cfg.Notify.Command) > 0 {
			row.Command, row.Target = true, strings.Join(cfg.Notify.Command, " ")
		}
	}
	if withStats {
		now := h.opts.Now()
		st, err := h.stats.get(id, now, func() (hourStats, error) { return h.computeStats(id, now) })
		if err != nil {
			h.log.Error("webhook statistics", "webhook", id, "err", err)
			row.StatsErr = err.Error()
		}
		row.Stats = st
	}
	return row
}

// webhookExists reports whether a webhook is configured or has history.
func (h *Handler) webhookExists(cfg *config.Config, id string) bool {
	return cfg.Webhook(id) != nil || (id == delivery.NotifyWebhook && cfg.Notify != nil) ||
		h.engine.Counts(id) != (delivery.Counts{})
}

// indexPage is the webhooks page.
type indexPage struct {
	chrome
	Webhooks []webhookRow
	// Found holds the deliveries the header search found when there was
	// more than one.
	Found    []deliveryRow
	NotFound string
	Window   string
	MaxScan  int
}

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	cfg := h.engine.Config()
	p := indexPage{chrome: h.chrome(r, "Webhooks"), Window: "hour", MaxScan: StatsMaxDeliveries}
	p.Live = true
	if q := strings.TrimSpace(r.URL.Query().Get("q")); q != "" {
		p.Find, p.Live = q, false
		found, err := h.find(q)
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, "Search failed", err.Error())
			return
		}
		switch len(found) {
		case 0:
			p.NotFound = q
		case 1:
			http.Redirect(w, r, deliveryHref(found[0].ID), http.StatusSeeOther)
			return
		default:
			for _, d := range found {
				p.Found = append(p.Found, newDeliveryRow(cfg, d))
			}
		}
	}
	for _, wh := range cfg.Webhooks {
		p.Webhooks = append(p.Webhooks, h.webhookRow(cfg, wh.ID, true))
	}
	if cfg.Notify != nil {
		p.Webhooks = append(p.Webhooks, h.webhookRow(cfg, delivery.NotifyWebhook, true))
	}
	h.render(w, r, http.StatusOK, "index", p)
}

// find looks a text up as a delivery id, then as an event id or
// idempotency key.
func (h *Handler) find(q string) ([]delivery.Delivery, error) {
	if delivery.ValidID(q) {
		d, err := h.engine.Get(q)
		if err == nil {
			return []delivery.Delivery{d}, nil
		}
		if !errors.Is(err, delivery.ErrNotFound) {
			return nil, err
		}
	}
	page, err := h.engine.List(delivery.Query{Event: q, Limit: PageSize})
	if err != nil {
		return nil, err
	}
	return page.Deliveries, nil
}

// deliveryRow is one delivery in a list.
type deliveryRow struct {
	ID        string
	Href      string
	Webhook   string
	Status    statusView
	EventType string
	EventCode string
	// FirstEvent is the first event id; MoreEvents counts the others of
	// a batch.
	FirstEvent string
	MoreEvents int
	Attempts   int
	LastCode   int
	LastText   string
	LastError  string
	LastAt     timeView
	Created    timeView
	Due        timeView
}

func newDeliveryRow(cfg *config.Config, d delivery.Delivery) deliveryRow {
	row := deliveryRow{
		ID: d.ID, Href: deliveryHref(d.ID), Webhook: d.Webhook, Status: newStatus(d.Status),
		EventType: eventName(cfg, d.EventType), EventCode: d.EventType,
		Attempts: d.AttemptCount, LastCode: d.LastStatusCode, LastText: http.StatusText(d.LastStatusCode), LastError: d.LastError,
		LastAt: newTimePtr(d.LastAttemptAt), Created: newTime(d.CreatedAt),
	}
	if d.Status == delivery.StatusInQueue {
		row.Due = newTime(d.DueAt)
	}
	if row.LastCode > 0 && row.LastError == fmt.Sprintf("HTTP %d %s", row.LastCode, http.StatusText(row.LastCode)) {
		row.LastError = ""
	}
	if len(d.EventIDs) > 0 {
		row.FirstEvent, row.MoreEvents = d.EventIDs[0], len(d.EventIDs)-1
	}
	return row
}

// webhookPage is one webhook's history.
type webhookPage struct {
	chrome
	Hook         webhookRow
	Status       string
	EventType    string
	Q            string
	StatusOpts   []option
	EventOpts    []option
	Filtered     bool
	Rows         []deliveryRow
	Older        string
	Newest       string
	Note         string
	ClearFilters string
}

func (h *Handler) webhook(w http.ResponseWriter, r *http.Request) {
	cfg := h.engine.Config()
	id := r.PathValue("id")
	if !h.webhookExists(cfg, id) {
		h.fail(w, r, http.StatusNotFound, "No such webhook",
			fmt.Sprintf("No webhook %q is configured, and none by that id has history.", id))
		return
	}
	qs := r.URL.Query()
	p := webhookPage{chrome: h.chrome(r, id), Hook: h.webhookRow(cfg, id, false)}
	p.Live = true
	p.Status, p.EventType, p.Q = qs.Get("status"), qs.Get("event_type"), strings.TrimSpace(qs.Get("q"))
	status := delivery.Status(p.Status)
	if status != "" && !status.Valid() {
		h.fail(w, r, http.StatusBadRequest, "Unknown status", fmt.Sprintf("Status %q: use in_queue, success or failure.", p.Status))
		return
	}
	limit := PageSize
	if s := qs.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			h.fail(w, r, http.StatusBadRequest, "Bad limit", fmt.Sprintf("Limit %q: use a whole number from 1 to %d.", s, MaxPageSize))
			return
		}
		limit = min(n, MaxPageSize)
	}
	p.StatusOpts = statusOptions(status)
	p.EventOpts = h.eventOptions(cfg, id, p.EventType)
	p.Filtered = p.Status != "" || p.EventType != "" || p.Q != ""
	p.ClearFilters = webhookHref(id, nil)

	keep := url.Values{}
	for k, v := range map[string]string{"status": p.Status, "event_type": p.EventType, "limit": qs.Get("limit")} {
		if v != "" {
			keep.Set(k, v)
		}
	}
	var (
		list []delivery.Delivery
		next string
		err  error
	)
	cursor := qs.Get("cursor")
	if p.Q != "" {
		list, err = h.search(id, p.Q, status, p.EventType, limit)
	} else {
		list, next, err = h.listFiltered(delivery.Query{Webhook: id, Status: status, Limit: limit, Cursor: cursor}, p.EventType, &p.Note)
	}
	if errors.Is(err, delivery.ErrBadCursor) {
		h.fail(w, r, http.StatusBadRequest, "Bad cursor", "This page address has a cursor sidehook did not hand out. Start again from the newest deliveries.")
		return
	}
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "History not read", err.Error())
		return
	}
	for _, d := range list {
		p.Rows = append(p.Rows, newDeliveryRow(cfg, d))
	}
	if next != "" {
		older := url.Values{}
		for k, v := range keep {
			older[k] = v
		}
		older.Set("cursor", next)
		p.Older = webhookHref(id, older)
	}
	if cursor != "" {
		p.Newest = webhookHref(id, keep)
	}
	h.render(w, r, http.StatusOK, "webhook", p)
}

// eventOptions lists the event types to filter a webhook's history by:
// those it subscribes to, plus the selected one if it no longer does.
func (h *Handler) eventOptions(cfg *config.Config, id, sel string) []option {
	opts := []option{{Value: "", Label: "Any event type", Selected: sel == ""}}
	var codes []string
	if wh := cfg.Webhook(id); wh != nil {
		codes = append(codes, wh.Events...)
	}
	if sel != "" && !slices.Contains(codes, sel) {
		codes = append(codes, sel)
	}
	for _, c := range codes {
		opts = append(opts, option{Value: c, Label: eventName(cfg, c), Selected: c == sel})
	}
	return opts
}

// listFiltered lists a page of deliveries, filtering by event type when
// one is given. The store indexes webhook and status but not event type,
// so that filter reads up to FilterScan deliveries and, when it stops
// short, returns the last one read as the cursor to go on from.
func (h *Handler) listFiltered(q delivery.Query, eventType string, note *string) ([]delivery.Delivery, string, error) {
	if eventType == "" {
		page, err := h.engine.List(q)
		if err != nil || page.NextCursor == nil {
			return page.Deliveries, "", err
		}
		return page.Deliveries, *page.NextCursor, nil
	}
	want := q.Limit
	q.Limit = min(max(want, 100), delivery.MaxLimit)
	var out []delivery.Delivery
	scanned := 0
	for {
		page, err := h.engine.List(q)
		if err != nil {
			return nil, "", err
		}
		for i, d := range page.Deliveries {
			scanned++
			if d.EventType == eventType {
				out = append(out, d)
			}
			more := i < len(page.Deliveries)-1 || page.NextCursor != nil
			if len(out) == want && more {
				return out, d.ID, nil
			}
			if scanned >= FilterScan && more {
				*note = fmt.Sprintf("Searched the %d deliveries before this point and found these %d; Older deliveries searches on.", scanned, len(out))
				return out, d.ID, nil
			}
		}
		if page.NextCursor == nil {
			return out, "", nil
		}
		q.Cursor = *page.NextCursor
	}
}

// search finds a webhook's deliveries by delivery id, event id or
// idempotency key.
func (h *Handler) search(webhook, text string, status delivery.Status, eventType string, limit int) ([]delivery.Delivery, error) {
	var found []delivery.Delivery
	if delivery.ValidID(text) {
		d, err := h.engine.Get(text)
		switch {
		case err == nil:
			found = []delivery.Delivery{d}
		case !errors.Is(err, delivery.ErrNotFound):
			return nil, err
		}
	}
	if found == nil {
		page, err := h.engine.List(delivery.Query{Webhook: webhook, Event: text, Limit: limit})
		if err != nil {
			return nil, err
		}
		found = page.Deliveries
	}
	out := found[:0]
	for _, d := range found {
		if d.Webhook == webhook && (status == "" || d.Status == status) && (eventType == "" || d.EventType == eventType) {
			out = append(out, d)
		}
	}
	return out, nil
}

// deliveryPage is one delivery with its attempts, newest first.
type deliveryPage struct {
	chrome
	D           deliveryRow
	WebhookHref string
	Events      []eventLink
	Created     timeView
	Due         timeView
	Finished    timeView
	Attempts    []attemptView
	CSRF        string
	RetryAction string
	Retried     int
	Repro       *reproduction
}

type eventLink struct {
	ID   string
	Href string
}

// attemptView is one attempt, with what was sent and what came back.
type attemptView struct {
	N          int
	Manual     bool
	OK         bool
	At         timeView
	Duration   string
	Result     string
	Command    bool
	Method     string
	URL        string
	ReqHeaders []header
	ReqBody    body
	Response   bool
	RespStatus string
	RespHdrs   []header
	RespBody   body
	Truncated  bool
	Error      string
	// ErrorBox is the error when it says more than the response status.
	ErrorBox string
	RetryAt  timeView
}

type header struct{ Name, Value string }

// body is a request or response body, pretty-printed when it is JSON.
type body struct {
	Text string
	JSON bool
	Size int
}

func newBody(s string) body {
	b := body{Text: s, Size: len(s)}
	t := strings.TrimSpace(s)
	if t != "" && (t[0] == '{' || t[0] == '[') && json.Valid([]byte(t)) {
		var buf bytes.Buffer
		if json.Indent(&buf, []byte(t), "", "  ") == nil {
			b.Text, b.JSON = buf.String(), true
		}
	}
	return b
}

func sortedHeaders(m map[string]string) []header {
	hs := make([]header, 0, len(m))
	for k, v := range m {
		hs = append(hs, header{k, v})
	}
	slices.SortFunc(hs, func(a, b header) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return hs
}

func newAttempt(a delivery.Attempt) attemptView {
	v := attemptView{N: a.N, Manual: a.Manual, OK: attemptOK(a), At: newTime(a.At), Duration: formatMS(a.DurationMS),
		Error: a.Error, RetryAt: newTimePtr(a.RetryAt)}
	if rq := a.Request; rq != nil {
		v.Method, v.URL = "POST", rq.URL
		if len(rq.Command) > 0 {
			v.Command, v.Method, v.URL = true, "", strings.Join(rq.Command, " ")
		}
		v.ReqHeaders = sortedHeaders(rq.Headers)
		v.ReqBody = newBody(rq.Body)
	}
	if rs := a.Response; rs != nil {
		v.Response = true
		v.RespStatus = strconv.Itoa(rs.Status)
		if v.Command {
			v.RespStatus = "exit status " + v.RespStatus
		} else if t := http.StatusText(rs.Status); t != "" {
			v.RespStatus += " " + t
		}
		v.RespHdrs = sortedHeaders(rs.Headers)
		v.RespBody = newBody(rs.Body)
		v.Truncated = rs.Truncated
	}
	v.ErrorBox = a.Error
	if a.Response != nil && a.Error == fmt.Sprintf("HTTP %d %s", a.Response.Status, http.StatusText(a.Response.Status)) {
		v.ErrorBox = ""
	}
	switch {
	case v.OK:
		v.Result = v.RespStatus
	case a.Error != "":
		v.Result = a.Error
	default:
		v.Result = v.RespStatus
	}
	return v
}

func (h *Handler) delivery(w http.ResponseWriter, r *http.Request) {
	cfg := h.engine.Config()
	id := r.PathValue("id")
	d, err := h.engine.Get(id)
	if errors.Is(err, delivery.ErrNotFound) || (err == nil && d.ID == "") {
		h.fail(w, r, http.StatusNotFound, "No such delivery",
			fmt.Sprintf("There is no delivery %q. It may have expired from the history, or the id is mistyped.", id))
		return
	}
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "Delivery not read", err.Error())
		return
	}
	p := deliveryPage{
		chrome: h.chrome(r, d.ID), D: newDeliveryRow(cfg, d), WebhookHref: webhookHref(d.Webhook, nil),
		Created: newTime(d.CreatedAt), Due: newTime(d.DueAt), Finished: newTimePtr(d.FinishedAt),
		CSRF: h.csrfToken(d.ID), RetryAction: deliveryHref(d.ID) + "/retry",
	}
	p.Live = true
	p.Retried, _ = strconv.Atoi(r.URL.Query().Get("retried"))
	for _, e := range d.EventIDs {
		p.Events = append(p.Events, eventLink{ID: e, Href: webhookHref(d.Webhook, url.Values{"q": {e}})})
	}
	for i := len(d.Attempts) - 1; i >= 0; i-- {
		p.Attempts = append(p.Attempts, newAttempt(d.Attempts[i]))
	}
	for i := len(d.Attempts) - 1; i >= 0; i-- {
		if rq := d.Attempts[i].Request; rq != nil {
			rp := reproduce(rq)
			p.Repro = &rp
			break
		}
	}
	h.render(w, r, http.StatusOK, "delivery", p)
}
