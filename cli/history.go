package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const historyUsage = `Usage: sidehook history [WEBHOOK_ID] [--status STATUS] [--event EVENT_ID] [--limit N] [--cursor C] [--json]

Lists deliveries, newest first: of one webhook, or of all of them.

Flags:
  --status STATUS   only in_queue, success or failure deliveries
  --event EVENT_ID  the delivery that carried this event id
  --limit N         deliveries per page (the daemon's default when unset)
  --cursor C        the page to show, as printed after the previous page
  --json            print the daemon's JSON answer
` + connUsage

// delivery is a delivery as the API shows it.
type delivery struct {
	ID        string    `json:"id"`
	Webhook   string    `json:"webhook"`
	EventType string    `json:"event_type"`
	EventIDs  []string  `json:"event_ids"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	DueAt     time.Time `json:"due_at"`
	Attempts  []attempt `json:"attempts"`

	// Summaries of the newest attempt that a daemon may add, used only
	// when a listing leaves the attempts out.
	AttemptCount   *int       `json:"attempt_count"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatusCode int        `json:"last_status_code"`
}

// attempt is one try at a delivery.
type attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	Manual     bool      `json:"manual"`
	Request    *struct {
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
		Command []string          `json:"command"`
	} `json:"request"`
	Response *struct {
		Status    int               `json:"status"`
		Headers   map[string]string `json:"headers"`
		Body      string            `json:"body"`
		Truncated bool              `json:"truncated"`
	} `json:"response"`
	Error string `json:"error"`
}

// deliveryPage is one page of a delivery listing.
type deliveryPage struct {
	Deliveries []delivery `json:"deliveries"`
	NextCursor *string    `json:"next_cursor"`
}

func (m *Main) history(ctx context.Context, args []string) error {
	fs := m.newFlagSet("history")
	conn := m.addConnFlags(fs)
	status := fs.String("status", "", "in_queue, success or failure")
	event := fs.String("event", "", "event id")
	limit := fs.Int("limit", 0, "deliveries per page")
	cursor := fs.String("cursor", "", "page cursor")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return argCountError(fs.Name(), pos, []string{"WEBHOOK_ID"})
	}
	switch *status {
	case "", "in_queue", "success", "failure":
	default:
		return fmt.Errorf("history: --status %q: want in_queue, success or failure", *status)
	}
	if *limit < 0 {
		return fmt.Errorf("history: --limit %d: want a positive number", *limit)
	}

	limitParam := ""
	if *limit > 0 {
		limitParam = strconv.Itoa(*limit)
	}
	path := deliveriesPath(pos, map[string]string{
		"status": *status, "event": *event, "cursor": *cursor, "limit": limitParam,
	})
	c, err := m.client(conn)
	if err != nil {
		return err
	}
	var page deliveryPage
	raw, err := c.call(ctx, http.MethodGet, path, nil, &page)
	if err != nil {
		return err
	}
	if *asJSON {
		err = writeJSON(m.Stdout, raw)
	} else {
		err = m.printDeliveries(page.Deliveries)
	}
	if err == nil && page.NextCursor != nil && *page.NextCursor != "" {
		fmt.Fprintf(m.Stderr, "more: %s\n", nextPageCommand(fs, pos, *page.NextCursor))
	}
	return err
}

// deliveriesPath is the API path listing the deliveries of the webhook in
// positional (or of all webhooks) with the non-empty query parameters.
func deliveriesPath(positional []string, params map[string]string) string {
	path := "/v1/deliveries"
	if len(positional) == 1 {
		path = "/v1/webhooks/" + url.PathEscape(positional[0]) + "/deliveries"
	}
	q := url.Values{}
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func (m *Main) printDeliveries(ds []delivery) error {
	if len(ds) == 0 {
		fmt.Fprintln(m.Stdout, "no deliveries")
		return nil
	}
	t := newTable(m.Stdout, "ID", "WEBHOOK", "EVENT TYPE", "STATUS", "ATTEMPTS", "LAST TRANSMISSION", "LAST CODE")
	for _, d := range ds {
		n, at, code := d.lastAttempt()
		t.row(d.ID, d.Webhook, d.EventType, statusWord(d.Status), strconv.Itoa(n), localTime(at), code)
	}
	return t.flush()
}

// lastAttempt summarises the attempts: how many, when the last one was
// made and the HTTP status it got ("-" without one).
func (d *delivery) lastAttempt() (n int, at time.Time, code string) {
	if len(d.Attempts) > 0 {
		last := d.Attempts[len(d.Attempts)-1]
		code = "-"
		if last.Response != nil && last.Response.Status != 0 {
			code = strconv.Itoa(last.Response.Status)
		}
		return len(d.Attempts), last.At, code
	}
	if d.AttemptCount == nil || *d.AttemptCount == 0 {
		return 0, time.Time{}, "-"
	}
	code = "-"
	if d.LastStatusCode != 0 {
		code = strconv.Itoa(d.LastStatusCode)
	}
	if d.LastAttemptAt != nil {
		at = *d.LastAttemptAt
	}
	return *d.AttemptCount, at, code
}

// nextPageCommand is the command line that shows the page after this one:
// the same arguments and flags, with --cursor.
func nextPageCommand(fs *flag.FlagSet, positional []string, cursor string) string {
	words := []string{"sidehook", "history"}
	for _, p := range positional {
		words = append(words, shellQuote(p))
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "cursor" {
			return
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			words = append(words, "--"+f.Name)
			return
		}
		words = append(words, "--"+f.Name, shellQuote(f.Value.String()))
	})
	return strings.Join(append(words, "--cursor", shellQuote(cursor)), " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain
// word characters.
func shellQuote(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@=+,", r))
	}) < 0
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

const showUsage = `Usage: sidehook show DELIVERY_ID [--json]

Shows one delivery and every attempt at it: the request sent (URL, headers,
body) and the response received (status, headers, body) or the error.

Flags:
  --json   print the daemon's JSON answer
` + connUsage

func (m *Main) show(ctx context.Context, args []string) error {
	c, pos, asJSON, err := m.apiCommand("show", args, "DELIVERY_ID")
	if err != nil {
		return err
	}
	var d delivery
	raw, err := c.call(ctx, http.MethodGet, "/v1/deliveries/"+url.PathEscape(pos[0]), nil, &d)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(m.Stdout, raw)
	}
	return m.printDelivery(&d)
}

func (m *Main) printDelivery(d *delivery) error {
	t := newTable(m.Stdout, "Delivery", d.ID)
	t.row("Webhook", d.Webhook)
	t.row("Event type", d.EventType)
	t.row("Status", statusWord(d.Status))
	t.row("Events", orDash(strings.Join(d.EventIDs, ", ")))
	t.row("Created", localTime(d.CreatedAt))
	t.row("Due", localTime(d.DueAt))
	if err := t.flush(); err != nil {
		return err
	}
	if len(d.Attempts) == 0 {
		fmt.Fprintln(m.Stdout, "\nNo attempts yet.")
		return nil
	}
	for _, a := range d.Attempts {
		m.printAttempt(&a)
	}
	return nil
}

func (m *Main) printAttempt(a *attempt) {
	w := m.Stdout
	manual := ""
	if a.Manual {
		manual = " (manual retry)"
	}
	fmt.Fprintf(w, "\nAttempt %d at %s, took %s%s\n", a.N, localTime(a.At), millis(a.DurationMS), manual)
	if r := a.Request; r != nil {
		fmt.Fprintln(w, "  Request:")
		if len(r.Command) > 0 {
			fmt.Fprintf(w, "    command: %s\n", strings.Join(r.Command, " "))
		}
		if r.URL != "" {
			fmt.Fprintf(w, "    POST %s\n", r.URL)
		}
		printHeadersBody(w, r.Headers, r.Body)
	}
	if r := a.Response; r != nil {
		if a.Request != nil && len(a.Request.Command) > 0 {
			fmt.Fprintf(w, "  Result: exit status %d, output:\n", r.Status)
		} else {
			fmt.Fprintf(w, "  Response: %d %s\n", r.Status, http.StatusText(r.Status))
		}
		printHeadersBody(w, r.Headers, r.Body)
		if r.Truncated {
			fmt.Fprintln(w, "    (body truncated: only its beginning was kept)")
		}
	} else {
		fmt.Fprintln(w, "  Response: none")
	}
	if a.Error != "" {
		fmt.Fprintf(w, "  Error: %s\n", a.Error)
	}
}

// printHeadersBody prints headers sorted by name, a blank line and the
// body, indented under their attempt.
func printHeadersBody(w io.Writer, headers map[string]string, body string) {
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		fmt.Fprintf(w, "    %s: %s\n", name, headers[name])
	}
	if body == "" {
		fmt.Fprintln(w, "    (empty body)")
		return
	}
	fmt.Fprintln(w)
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}
