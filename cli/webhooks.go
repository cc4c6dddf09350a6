package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sidehook/sidehook/config"
)

const webhooksUsage = `Usage: sidehook webhooks [--json]

Lists the webhooks the daemon runs, with their deliveries per status. When
the config file on disk has errors, the daemon keeps the previous config
and a warning says so.

Flags:
  --json   print the daemon's JSON answer
` + connUsage

// webhookList is the answer of GET /v1/webhooks.
type webhookList struct {
	Webhooks []struct {
		ID      string   `json:"id"`
		Events  []string `json:"events"`
		URL     string   `json:"url"`
		Enabled bool     `json:"enabled"`
		Counts  struct {
			InQueue int `json:"in_queue"`
			Success int `json:"success"`
			Failure int `json:"failure"`
		} `json:"counts"`
		Handshake *handshake `json:"handshake"`
	} `json:"webhooks"`
	ConfigError *string `json:"config_error"`
}

func (m *Main) webhooks(ctx context.Context, args []string) error {
	c, _, asJSON, err := m.apiCommand("webhooks", args)
	if err != nil {
		return err
	}
	var list webhookList
	raw, err := c.call(ctx, http.MethodGet, "/v1/webhooks", nil, &list)
	if err != nil {
		return err
	}
	if list.ConfigError != nil {
		m.warnConfigError(*list.ConfigError)
	}
	if asJSON {
		return writeJSON(m.Stdout, raw)
	}
	// The HANDSHAKE column shows only when a webhook asks for one.
	withHandshake := false
	for _, w := range list.Webhooks {
		withHandshake = withHandshake || w.Handshake != nil
	}
	header := []string{"ID", "EVENTS", "URL", "ENABLED", "IN QUEUE", "SUCCESS", "FAILURE"}
	if withHandshake {
		header = append(header, "HANDSHAKE")
	}
	t := newTable(m.Stdout, header...)
	for _, w := range list.Webhooks {
		cells := []string{w.ID, strings.Join(w.Events, ", "), orDash(w.URL), yesNo(w.Enabled),
			strconv.Itoa(w.Counts.InQueue), strconv.Itoa(w.Counts.Success), strconv.Itoa(w.Counts.Failure)}
		if withHandshake {
			cells = append(cells, w.Handshake.String())
		}
		t.row(cells...)
	}
	return t.flush()
}

// handshake is a webhook's last handshake (handshake: true) as the daemon
// reports it.
type handshake struct {
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error"`
}

// String reads "200 in 12ms", "error: ..." or "-" when there is none.
func (h *handshake) String() string {
	switch {
	case h == nil:
		return "-"
	case h.Error != "":
		return "error: " + h.Error
	}
	return fmt.Sprintf("%d in %.0fms", h.Status, h.LatencyMS)
}

// warnConfigError tells that the daemon refused the file on disk; msg may
// hold one problem per line.
func (m *Main) warnConfigError(msg string) {
	fmt.Fprintf(m.Stderr, "warning: running config differs from the file: %s\n",
		strings.ReplaceAll(strings.TrimSpace(msg), "\n", "\n  "))
	fmt.Fprintln(m.Stderr, "  (the previous config stays in force until the file is fixed; see: sidehook validate)")
}

const eventsUsage = `Usage: sidehook events [--json]

Lists the event catalog: each event's name, its eventType code, and whether
it is batched by default. Asks the running daemon (which knows the custom
events of its config); without one, reads the config file, or shows the
built-in catalog.

Flags:
  --json   print the catalog as JSON
` + connUsage

// eventList is the answer of GET /v1/events.
type eventList struct {
	Events []config.EventType `json:"events"`
}

func (m *Main) events(ctx context.Context, args []string) error {
	fs := m.newFlagSet("events")
	conn := m.addConnFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseN(fs, args); err != nil {
		return err
	}
	c, err := m.client(conn)
	if err != nil {
		return err
	}
	var list eventList
	raw, err := c.call(ctx, http.MethodGet, "/v1/events", nil, &list)
	var unreachable *unreachableError
	if errors.As(err, &unreachable) {
		var source string
		list, raw, source, err = m.localEvents(conn.config)
		fmt.Fprintf(m.Stderr, "note: no daemon answers at %s; showing %s\n", unreachable.target, source)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(m.Stdout, raw)
	}
	t := newTable(m.Stdout, "NAME", "CODE", "BATCHED")
	for _, e := range list.Events {
		t.row(e.Name, e.Code, yesNo(e.Batched))
	}
	return t.flush()
}

// localEvents is the catalog of the config file, with its custom events,
// or the built-in one when the file does not load. source says which.
func (m *Main) localEvents(configFile string) (list eventList, raw []byte, source string, err error) {
	cat, source := config.NewCatalog(), "the built-in catalog"
	if cfg, err := config.Load(configFile); err == nil {
		cat, source = cfg.Catalog, "the catalog of "+configFile
	}
	list = eventList{Events: cat.Types()}
	if raw, err = json.Marshal(list); err != nil {
		return eventList{}, nil, "", fmt.Errorf("encode catalog: %w", err)
	}
	return list, raw, source, nil
}
