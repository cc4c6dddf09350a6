package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const sendUsage = `Usage: sidehook send --event NAME [--id KEY] --data JSON|@FILE|- [--json]

Posts one event to the daemon and prints the deliveries it was matched to.

Flags:
  --event NAME    event type: a catalog name or code (see: sidehook events)
  --id KEY        idempotency key: a repeat within 24h enqueues nothing
  --data JSON     the event's data: inline JSON, @FILE to read a file, or -
                  to read standard input
  --json          print the daemon's JSON answer
` + connUsage

// accepted is the daemon's answer to one posted event.
type accepted struct {
	ID         string `json:"id"`
	Deliveries []struct {
		ID      string    `json:"id"`
		Webhook string    `json:"webhook"`
		DueAt   time.Time `json:"due_at"`
	} `json:"deliveries"`
}

func (m *Main) send(ctx context.Context, args []string) error {
	fs := m.newFlagSet("send")
	conn := m.addConnFlags(fs)
	event := fs.String("event", "", "event type")
	key := fs.String("id", "", "idempotency key")
	data := fs.String("data", "", "event data")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseN(fs, args); err != nil {
		return err
	}
	if *event == "" {
		return errors.New(`send: --event is required, e.g. --event "Lead Creation" (see: sidehook events)`)
	}
	payload, err := m.readData(*data)
	if err != nil {
		return err
	}
	body := eventBody(*event, *key, payload)
	c, err := m.client(conn)
	if err != nil {
		return err
	}
	var ans accepted
	raw, err := c.call(ctx, http.MethodPost, "/v1/events", body, &ans)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(m.Stdout, raw)
	}
	return m.printAccepted(ans)
}

// eventBody is the JSON of one event. It is written by hand because
// encoding/json would compact data, and receivers get data byte for byte
// as posted.
func eventBody(event, key string, data []byte) []byte {
	quote := func(s string) string {
		b, _ := json.Marshal(s) // a string always encodes
		return string(b)
	}
	body := `{"event":` + quote(event)
	if key != "" {
		body += `,"id":` + quote(key)
	}
	return []byte(body + `,"data":` + string(data) + "}")
}

// readData returns the --data value as JSON: inline, from @FILE, or from
// standard input for "-".
func (m *Main) readData(arg string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	switch {
	case arg == "":
		return nil, errors.New(`send: --data is required: inline JSON ('{"ProspectID": "4711"}'), @FILE, or - for standard input`)
	case arg == "-":
		if b, err = io.ReadAll(m.Stdin); err != nil {
			return nil, fmt.Errorf("read --data from standard input: %w", err)
		}
	case strings.HasPrefix(arg, "@"):
		if b, err = os.ReadFile(arg[1:]); err != nil {
			return nil, fmt.Errorf("read --data file: %w", err)
		}
	default:
		b = []byte(arg)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("--data is not valid JSON: %w", err)
	}
	return bytes.TrimSpace(b), nil
}

func (m *Main) printAccepted(ans accepted) error {
	if len(ans.Deliveries) == 0 {
		fmt.Fprintf(m.Stdout, "event %s accepted; it matched no webhook\n", ans.ID)
		return nil
	}
	fmt.Fprintf(m.Stdout, "event %s accepted for %s:\n", ans.ID, plural(len(ans.Deliveries), "delivery", "deliveries"))
	t := newTable(m.Stdout, "DELIVERY", "WEBHOOK", "DUE AT")
	for _, d := range ans.Deliveries {
		t.row(d.ID, d.Webhook, localTime(d.DueAt))
	}
	return t.flush()
}
