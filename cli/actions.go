package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

const retryUsage = `Usage: sidehook retry DELIVERY_ID [--json]

Redelivers a delivery now: one manual attempt, outside its retry budget,
recorded in its history. Prints the outcome; exits 1 unless the attempt
succeeded.

Flags:
  --json   print the daemon's JSON answer (the delivery after the attempt)
` + connUsage

func (m *Main) retry(ctx context.Context, args []string) error {
	c, pos, asJSON, err := m.apiCommand("retry", args, "DELIVERY_ID")
	if err != nil {
		return err
	}
	var d delivery
	raw, err := c.call(ctx, http.MethodPost, "/v1/deliveries/"+url.PathEscape(pos[0])+"/retry", nil, &d)
	if err != nil {
		return err
	}
	if asJSON {
		err = writeJSON(m.Stdout, raw)
	} else {
		m.printRetry(pos[0], &d)
	}
	// A successful attempt always makes the delivery a success.
	if err == nil && d.Status != "success" {
		return ExitError{Code: 1}
	}
	return err
}

func (m *Main) printRetry(id string, d *delivery) {
	if len(d.Attempts) == 0 {
		fmt.Fprintf(m.Stdout, "%s: retry accepted (see: sidehook show %s)\n", id, id)
		return
	}
	a := d.Attempts[len(d.Attempts)-1]
	switch {
	case a.Response != nil:
		fmt.Fprintf(m.Stdout, "%s: attempt %d answered %d %s in %s\n",
			id, a.N, a.Response.Status, http.StatusText(a.Response.Status), millis(a.DurationMS))
	default:
		fmt.Fprintf(m.Stdout, "%s: attempt %d failed after %s: %s\n", id, a.N, millis(a.DurationMS), a.Error)
	}
	fmt.Fprintf(m.Stdout, "status: %s (see: sidehook show %s)\n", statusWord(d.Status), id)
}

const pingUsage = `Usage: sidehook ping WEBHOOK_ID [--json]

Checks a webhook's URL with a HEAD request carrying its headers (the
handshake LeadSquared makes) and prints the status and latency. Exits 1
when there is no answer or it is not a 2xx.

Flags:
  --json   print the daemon's JSON answer
` + connUsage

// pingResult is the answer of POST /v1/webhooks/{id}/ping.
type pingResult struct {
	Webhook   string  `json:"webhook"`
	URL       string  `json:"url"`
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error"`
}

func (m *Main) ping(ctx context.Context, args []string) error {
	c, pos, asJSON, err := m.apiCommand("ping", args, "WEBHOOK_ID")
	if err != nil {
		return err
	}
	var res pingResult
	raw, err := c.call(ctx, http.MethodPost, "/v1/webhooks/"+url.PathEscape(pos[0])+"/ping", nil, &res)
	if err != nil {
		return err
	}
	if asJSON {
		err = writeJSON(m.Stdout, raw)
	} else {
		m.printPing(&res)
	}
	if err == nil && (res.Error != "" || res.Status < 200 || res.Status > 299) {
		return ExitError{Code: 1}
	}
	return err
}

func (m *Main) printPing(res *pingResult) {
	latency := millis(res.LatencyMS)
	if res.Error != "" {
		fmt.Fprintf(m.Stdout, "%s: HEAD %s failed after %s: %s\n", res.Webhook, res.URL, latency, res.Error)
		return
	}
	fmt.Fprintf(m.Stdout, "%s: HEAD %s: %d %s in %s\n", res.Webhook, res.URL, res.Status, http.StatusText(res.Status), latency)
}

const reloadUsage = `Usage: sidehook reload [--json]

Asks the daemon to reload its config file now (as SIGHUP does). A broken
file is refused as a whole: its problems are printed, the previous config
stays in force, and the exit status is 1.

Flags:
  --json   print the daemon's JSON answer
` + connUsage

// reloadResult is the answer of POST /v1/reload, 200 or 422.
type reloadResult struct {
	OK       bool     `json:"ok"`
	Webhooks int      `json:"webhooks"`
	Error    string   `json:"error"`
	Errors   []string `json:"errors"`
}

func (m *Main) reload(ctx context.Context, args []string) error {
	c, _, asJSON, err := m.apiCommand("reload", args)
	if err != nil {
		return err
	}
	var res reloadResult
	raw, err := c.call(ctx, http.MethodPost, "/v1/reload", nil, &res)
	if err != nil {
		if raw, err = refusal(err, &res); err != nil {
			return err
		}
	}
	if asJSON {
		if err := writeJSON(m.Stdout, raw); err != nil {
			return err
		}
	} else {
		m.printReload(&res)
	}
	if res.Error != "" {
		return ExitError{Code: 1}
	}
	return nil
}

// refusal decodes the daemon's 422 answer (the config file was rejected)
// into res and returns its body; any other error is returned as it is.
func refusal(err error, res *reloadResult) ([]byte, error) {
	var apiErr *apiError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity {
		return nil, err
	}
	if json.Unmarshal(apiErr.Body, res) != nil || res.Error == "" {
		return nil, err
	}
	return apiErr.Body, nil
}

func (m *Main) printReload(res *reloadResult) {
	if res.Error == "" {
		fmt.Fprintf(m.Stdout, "config reloaded: %s\n", plural(res.Webhooks, "webhook", "webhooks"))
		return
	}
	fmt.Fprintf(m.Stdout, "reload refused: %s\n", res.Error)
	for _, line := range res.Errors {
		fmt.Fprintln(m.Stdout, line)
	}
}
