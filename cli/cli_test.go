package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHelp(t *testing.T) {
	commands := []string{"run", "validate", "send", "webhooks", "history", "show", "retry", "events", "ping", "reload"}
	for _, args := range [][]string{nil, {"-h"}, {"--help"}, {"help"}} {
		t.Run(strings.Join(append([]string{"sidehook"}, args...), " "), func(t *testing.T) {
			r := sidehook(t, nil, "", args...)
			if r.err != nil {
				t.Fatalf("got error %v, want none", r.err)
			}
			for _, c := range commands {
				wantContains(t, "help", r.stdout, "\n  "+c+" ")
			}
		})
	}
	t.Run("help send", func(t *testing.T) {
		r := sidehook(t, nil, "", "help", "send")
		wantContains(t, "usage", r.stdout, "Usage: sidehook send --event NAME", "--data JSON", "--socket PATH", "--addr URL")
	})
	t.Run("send -h", func(t *testing.T) {
		r := sidehook(t, nil, "", "send", "-h")
		if !errors.Is(r.err, flag.ErrHelp) {
			t.Errorf("got error %v, want flag.ErrHelp (exit 0)", r.err)
		}
		wantContains(t, "usage on stderr", r.stderr, "Usage: sidehook send")
	})
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"frobnicate"}, 1, `unknown command "frobnicate" (see: sidehook help)`},
		{[]string{"show"}, 1, "show: missing DELIVERY_ID (see: sidehook show -h)"},
		{[]string{"ping", "a", "b"}, 1, `ping: unexpected argument "b" (see: sidehook ping -h)`},
		{[]string{"webhooks", "--nope"}, 2, ""},
		{[]string{"history", "--status", "done"}, 1, `history: --status "done": want in_queue, success or failure`},
		{[]string{"send", "--data", "{}"}, 1, `send: --event is required, e.g. --event "Lead Creation" (see: sidehook events)`},
		{[]string{"send", "--event", "Lead Creation"}, 1, `send: --data is required: inline JSON ('{"ProspectID": "4711"}'), @FILE, or - for standard input`},
		{[]string{"send", "--event", "Lead Creation", "--data", "{oops"}, 1, "--data is not valid JSON: invalid character 'o' looking for beginning of object key string"},
		{[]string{"run", "--log-level", "loud"}, 1, `unknown log level "loud" (use one of: debug, info, warn, error)`},
		{[]string{"history", "--addr", "ftp://x"}, 1, `--addr "ftp://x": want the daemon's URL, e.g. http://127.0.0.1:8787`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := sidehook(t, nil, "", tt.args...)
			if got := r.exitCode(); got != tt.wantCode {
				t.Errorf("exit code %d, want %d (err %v)", got, tt.wantCode, r.err)
			}
			if tt.wantErr != "" && (r.err == nil || r.err.Error() != tt.wantErr) {
				t.Errorf("got error %v, want %q", r.err, tt.wantErr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "webhooks.yaml")
	writeFile(t, good, `webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: https://api.example.com/leads
  - id: tasks
    events: [Task Complete, Lead Creation, Lead Update]
    url: https://api.example.com/tasks
`)
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `webhooks:
  - id: crm-new-lead
    events: [Lead Creaton]
    url: ftp://api.example.com/leads
`)

	t.Run("valid", func(t *testing.T) {
		r := sidehook(t, nil, "", "validate", "--config", good)
		if r.exitCode() != 0 {
			t.Fatalf("exit %d (%v), want 0", r.exitCode(), r.err)
		}
		wantOutput(t, "stdout", r.stdout, good+": ok, 2 webhooks, 3 event types subscribed\n")
	})
	t.Run("config from SIDEHOOK_CONFIG", func(t *testing.T) {
		r := sidehook(t, map[string]string{"SIDEHOOK_CONFIG": good}, "", "validate")
		wantOutput(t, "stdout", r.stdout, good+": ok, 2 webhooks, 3 event types subscribed\n")
	})
	t.Run("invalid", func(t *testing.T) {
		r := sidehook(t, nil, "", "validate", "--config", bad)
		if r.exitCode() != 1 {
			t.Fatalf("exit %d (%v), want 1", r.exitCode(), r.err)
		}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("got %d lines, want one per problem (2):\n%s", len(lines), r.stdout)
		}
		wantContains(t, "first problem", lines[0], bad+`:3:14: `, `unknown event "Lead Creaton" (did you mean "Lead Creation"?`)
		wantContains(t, "second problem", lines[1], bad+`:4:10: `, "must be http or https")
	})
	t.Run("missing file", func(t *testing.T) {
		r := sidehook(t, nil, "", "validate", "--config", filepath.Join(dir, "nope.yaml"))
		if r.exitCode() != 1 || r.stdout != "" {
			t.Fatalf("exit %d, stdout %q; want 1 and nothing", r.exitCode(), r.stdout)
		}
		wantContains(t, "error", r.err.Error(), "read config", "nope.yaml", "no such file")
	})
}

func TestSend(t *testing.T) {
	f := newFakeDaemon(t)
	due := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	f.answer("POST /v1/events", http.StatusAccepted, `{"id": "evt_1", "deliveries": [
		{"id": "dlv_1", "webhook": "crm-new-lead", "due_at": "2026-03-01T12:00:30Z"},
		{"id": "dlv_2", "webhook": "audit", "due_at": "2026-03-01T12:00:00Z"}]}`)
	dataFile := filepath.Join(t.TempDir(), "lead.json")
	writeFile(t, dataFile, `{"ProspectID": "4711", "Amount": 12.50}`+"\n")

	tests := []struct {
		name, data, stdin, want string
	}{
		{"inline", `{"ProspectID": "4711", "Amount": 12.50}`, "", `{"ProspectID": "4711", "Amount": 12.50}`},
		{"file", "@" + dataFile, "", `{"ProspectID": "4711", "Amount": 12.50}`},
		{"stdin", "-", ` [1, 2.0] `, `[1, 2.0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sidehook(t, nil, tt.stdin, "send", "--event", "Lead Creation", "--id", "lead-4711", "--data", tt.data, "--socket", f.socket)
			if r.err != nil {
				t.Fatal(r.err)
			}
			req := f.last(t)
			if req.Method != "POST" || req.Path != "/v1/events" || req.ContentType != "application/json" {
				t.Errorf("got %s %s (%s), want POST /v1/events (application/json)", req.Method, req.Path, req.ContentType)
			}
			wantOutput(t, "posted body", req.Body, `{"event":"Lead Creation","id":"lead-4711","data":`+tt.want+`}`)
			wantOutput(t, "stdout", r.stdout, "event evt_1 accepted for 2 deliveries:\n"+
				"DELIVERY  WEBHOOK       DUE AT\n"+
				"dlv_1     crm-new-lead  "+due.Local().Format("2006-01-02 15:04:05")+"\n"+
				"dlv_2     audit         "+due.Add(-30*time.Second).Local().Format("2006-01-02 15:04:05")+"\n")
		})
	}
	t.Run("no id is left out", func(t *testing.T) {
		sidehook(t, nil, "", "send", "--event", "Lead Creation", "--data", `"x"`, "--socket", f.socket)
		wantOutput(t, "posted body", f.last(t).Body, `{"event":"Lead Creation","data":"x"}`)
	})
	t.Run("json", func(t *testing.T) {
		r := sidehook(t, nil, "", "send", "--event", "Lead Creation", "--data", "{}", "--json", "--socket", f.socket)
		var v struct{ ID string }
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.ID != "evt_1" {
			t.Errorf("got %q (%v), want the daemon's JSON", r.stdout, err)
		}
	})
}

func TestSend_NoMatchAndErrors(t *testing.T) {
	f := newFakeDaemon(t)
	f.answer("POST /v1/events", http.StatusAccepted, `{"id": "evt_9", "deliveries": []}`)
	r := f.run(t, "send", "--event", "Lead Delete", "--data", "{}")
	wantOutput(t, "stdout", r.stdout, "event evt_9 accepted; it matched no webhook\n")

	g := newFakeDaemon(t)
	g.answer("POST /v1/events", http.StatusBadRequest, `{"error": "unknown event \"Lead Creaton\" (did you mean \"Lead Creation\"? see: sidehook events)"}`)
	r = g.run(t, "send", "--event", "Lead Creaton", "--data", "{}")
	if r.err == nil || r.err.Error() != `unknown event "Lead Creaton" (did you mean "Lead Creation"? see: sidehook events)` {
		t.Errorf("got error %v, want the daemon's message", r.err)
	}

	h := newFakeDaemon(t)
	h.mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream broke\nmore", http.StatusBadGateway)
	})
	r = h.run(t, "send", "--event", "Lead Creation", "--data", "{}")
	if r.err == nil || r.err.Error() != "the daemon answered 502 Bad Gateway: upstream broke" {
		t.Errorf("got error %v, want the status and first line of a non-JSON answer", r.err)
	}
}

const webhooksJSON = `{"webhooks": [
	{"id": "crm-new-lead", "description": "New Lead Data", "events": ["Lead Creation"], "url": "https://api.example.com/leads/add",
	 "enabled": true, "counts": {"in_queue": 2, "success": 40, "failure": 1}},
	{"id": "crm-sync", "events": ["Lead Update", "Lead Stage Change"], "url": "",
	 "enabled": false, "counts": {"in_queue": 0, "success": 0, "failure": 0}}],
	"config_error": null}`

func TestWebhooks(t *testing.T) {
	f := newFakeDaemon(t)
	f.answer("GET /v1/webhooks", http.StatusOK, webhooksJSON)
	r := f.run(t, "webhooks")
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantOutput(t, "table", r.stdout, ""+
		"ID            EVENTS                          URL                                ENABLED  IN QUEUE  SUCCESS  FAILURE\n"+
		"crm-new-lead  Lead Creation                   https://api.example.com/leads/add  yes      2         40       1\n"+
		"crm-sync      Lead Update, Lead Stage Change  -                                  no       0         0        0\n")
	wantOutput(t, "stderr", r.stderr, "")
}

func TestWebhooks_Handshake(t *testing.T) {
	f := newFakeDaemon(t)
	f.answer("GET /v1/webhooks", http.StatusOK, `{"webhooks": [
	{"id": "a", "events": ["Lead Creation"], "url": "https://a.example/x", "enabled": true, "counts": {},
	 "handshake": {"status": 200, "latency_ms": 12.4, "error": "", "at": "2026-03-01T12:00:00Z"}},
	{"id": "b", "events": ["Lead Creation"], "url": "https://b.example/x", "enabled": true, "counts": {},
	 "handshake": {"status": 0, "latency_ms": 3, "error": "connection refused", "at": "2026-03-01T12:00:00Z"}},
	{"id": "c", "events": ["Lead Creation"], "url": "https://c.example/x", "enabled": true, "counts": {}, "handshake": null}],
	"config_error": null}`)
	r := f.run(t, "webhooks")
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantOutput(t, "table", r.stdout, ""+
		"ID  EVENTS         URL                  ENABLED  IN QUEUE  SUCCESS  FAILURE  HANDSHAKE\n"+
		"a   Lead Creation  https://a.example/x  yes      0         0        0        200 in 12ms\n"+
		"b   Lead Creation  https://b.example/x  yes      0         0        0        error: connection refused\n"+
		"c   Lead Creation  https://c.example/x  yes      0         0        0        -\n")
}

func TestWebhooks_ConfigError(t *testing.T) {
	f := newFakeDaemon(t)
	f.answer("GET /v1/webhooks", http.StatusOK, `{"webhooks": [], "config_error": "webhooks.yaml:3:14: unknown event \"X\"\nwebhooks.yaml:4:10: bad url"}`)
	r := f.run(t, "webhooks")
	if r.exitCode() != 0 {
		t.Errorf("exit %d (%v), want 0", r.exitCode(), r.err)
	}
	wantOutput(t, "stderr", r.stderr, ""+
		"warning: running config differs from the file: webhooks.yaml:3:14: unknown event \"X\"\n"+
		"  webhooks.yaml:4:10: bad url\n"+
		"  (the previous config stays in force until the file is fixed; see: sidehook validate)\n")
}

func TestJSONPassthrough(t *testing.T) {
	f := newFakeDaemon(t)
	f.answer("GET /v1/webhooks", http.StatusOK, webhooksJSON)
	r := f.run(t, "webhooks", "--json")
	var want bytes.Buffer
	if err := json.Indent(&want, []byte(webhooksJSON), "", "  "); err != nil {
		t.Fatal(err)
	}
	wantOutput(t, "stdout", r.stdout, want.String()+"\n")
}

func TestHistory(t *testing.T) {
	f := newFakeDaemon(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	page := `{"deliveries": [
		{"id": "dlv_3", "webhook": "crm-new-lead", "event_type": "Lead_Post_Create", "event_ids": ["evt_3"], "status": "failure",
		 "created_at": "2026-03-01T11:59:00Z", "due_at": "2026-03-01T11:59:00Z",
		 "attempts": [{"n": 1, "at": "2026-03-01T11:59:00Z", "response": {"status": 500}},
		              {"n": 2, "at": "2026-03-01T12:00:00Z", "response": null, "error": "timeout"}]},
		{"id": "dlv_2", "webhook": "crm-new-lead", "event_type": "Lead_Post_Create", "event_ids": ["evt_2"], "status": "success",
		 "created_at": "2026-03-01T11:00:00Z", "due_at": "2026-03-01T11:00:00Z",
		 "attempts": [{"n": 1, "at": "2026-03-01T12:00:00Z", "response": {"status": 200}}]},
		{"id": "dlv_1", "webhook": "crm-new-lead", "event_type": "Lead_Post_Create", "event_ids": ["evt_1"], "status": "in_queue",
		 "created_at": "2026-03-01T11:00:00Z", "due_at": "2026-03-01T13:00:00Z", "attempts": []}],
		"next_cursor": "c2"}`
	f.answer("GET /v1/webhooks/{id}/deliveries", http.StatusOK, page)
	f.answer("GET /v1/deliveries", http.StatusOK, `{"deliveries": [], "next_cursor": null}`)

	t.Run("one webhook, flags after the id", func(t *testing.T) {
		r := f.run(t, "history", "crm-new-lead", "--status", "failure", "--limit", "3", "--cursor", "c1")
		if r.err != nil {
			t.Fatal(r.err)
		}
		req := f.last(t)
		wantOutput(t, "request", req.Path+"?"+req.Query, "/v1/webhooks/crm-new-lead/deliveries?cursor=c1&limit=3&status=failure")
		local := at.Local().Format("2006-01-02 15:04:05")
		wantOutput(t, "table", r.stdout, ""+
			"ID     WEBHOOK       EVENT TYPE        STATUS    ATTEMPTS  LAST TRANSMISSION    LAST CODE\n"+
			"dlv_3  crm-new-lead  Lead_Post_Create  Failure   2         "+local+"  -\n"+
			"dlv_2  crm-new-lead  Lead_Post_Create  Success   1         "+local+"  200\n"+
			"dlv_1  crm-new-lead  Lead_Post_Create  In Queue  0         -                    -\n")
		wantOutput(t, "paging hint", r.stderr,
			"more: sidehook history crm-new-lead --limit 3 --socket "+f.socket+" --status failure --cursor c2\n")
	})
	t.Run("all deliveries by event", func(t *testing.T) {
		r := f.run(t, "history", "--event", "evt_7")
		req := f.last(t)
		wantOutput(t, "request", req.Path+"?"+req.Query, "/v1/deliveries?event=evt_7")
		wantOutput(t, "stdout", r.stdout, "no deliveries\n")
		wantOutput(t, "stderr", r.stderr, "")
	})
	t.Run("summary fields when a listing leaves attempts out", func(t *testing.T) {
		g := newFakeDaemon(t)
		g.answer("GET /v1/deliveries", http.StatusOK, `{"deliveries": [
			{"id": "dlv_5", "webhook": "w", "event_type": "Lead_Post_Create", "status": "success", "attempts": [],
			 "attempt_count": 3, "last_attempt_at": "2026-03-01T12:00:00Z", "last_status_code": 204}], "next_cursor": null}`)
		r := g.run(t, "history")
		wantContains(t, "table", r.stdout, "Success  3         "+at.Local().Format("2006-01-02 15:04:05")+"  204")
	})
}

func TestShow(t *testing.T) {
	f := newFakeDaemon(t)
	f.answer("GET /v1/deliveries/{id}", http.StatusOK, `{"id": "dlv_3", "webhook": "crm-new-lead", "event_type": "Lead_Post_Create",
		"event_ids": ["evt_3", "evt_4"], "status": "success",
		"created_at": "2026-03-01T11:59:00Z", "due_at": "2026-03-01T11:59:30Z",
		"attempts": [
		 {"n": 1, "at": "2026-03-01T11:59:30Z", "duration_ms": 10000, "manual": false,
		  "request": {"url": "https://api.example.com/leads?entityType=Webhook", "headers": {"X-Api-Key": "[redacted]", "Content-Type": "application/json"}, "body": "{\"a\":1}"},
		  "response": null, "error": "timeout after 10s"},
		 {"n": 2, "at": "2026-03-01T12:05:00Z", "duration_ms": 12.34, "manual": true,
		  "request": {"url": "https://api.example.com/leads?entityType=Webhook", "headers": {}, "body": "{\"a\":1}"},
		  "response": {"status": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok\nthanks\n", "truncated": true}, "error": ""}]}`)
	r := f.run(t, "show", "dlv_3")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := f.last(t).Path; got != "/v1/deliveries/dlv_3" {
		t.Errorf("got request %s, want /v1/deliveries/dlv_3", got)
	}
	loc := func(s string) string {
		tm, _ := time.Parse(time.RFC3339, s)
		return tm.Local().Format("2006-01-02 15:04:05")
	}
	wantOutput(t, "stdout", r.stdout, ""+
		"Delivery    dlv_3\n"+
		"Webhook     crm-new-lead\n"+
		"Event type  Lead_Post_Create\n"+
		"Status      Success\n"+
		"Events      evt_3, evt_4\n"+
		"Created     "+loc("2026-03-01T11:59:00Z")+"\n"+
		"Due         "+loc("2026-03-01T11:59:30Z")+"\n"+
		"\n"+
		"Attempt 1 at "+loc("2026-03-01T11:59:30Z")+", took 10s\n"+
		"  Request:\n"+
		"    POST https://api.example.com/leads?entityType=Webhook\n"+
		"    Content-Type: application/json\n"+
		"    X-Api-Key: [redacted]\n"+
		"\n"+
		"    {\"a\":1}\n"+
		"  Response: none\n"+
		"  Error: timeout after 10s\n"+
		"\n"+
		"Attempt 2 at "+loc("2026-03-01T12:05:00Z")+", took 12.3ms (manual retry)\n"+
		"  Request:\n"+
		"    POST https://api.example.com/leads?entityType=Webhook\n"+
		"\n"+
		"    {\"a\":1}\n"+
		"  Response: 200 OK\n"+
		"    Content-Type: text/plain\n"+
		"\n"+
		"    ok\n"+
		"    thanks\n"+
		"    (body truncated: only its beginning was kept)\n")

	t.Run("not found", func(t *testing.T) {
		g := newFakeDaemon(t)
		g.answer("GET /v1/deliveries/{id}", http.StatusNotFound, `{"error": "no delivery \"dlv_x\" (see: sidehook history)"}`)
		r := g.run(t, "show", "dlv_x")
		if r.err == nil || r.err.Error() != `no delivery "dlv_x" (see: sidehook history)` {
			t.Errorf("got error %v, want the daemon's message", r.err)
		}
	})
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name, answer, want string
		wantCode           int
	}{
		{"success", `{"id": "dlv_3", "status": "success", "attempts": [{"n": 1}, {"n": 2, "duration_ms": 12.3, "manual": true, "response": {"status": 200}}]}`,
			"dlv_3: attempt 2 answered 200 OK in 12.3ms\nstatus: Success (see: sidehook show dlv_3)\n", 0},
		{"failure", `{"id": "dlv_3", "status": "failure", "attempts": [{"n": 4, "duration_ms": 0.25, "manual": true, "response": null, "error": "connection refused"}]}`,
			"dlv_3: attempt 4 failed after 250µs: connection refused\nstatus: Failure (see: sidehook show dlv_3)\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDaemon(t)
			f.answer("POST /v1/deliveries/{id}/retry", http.StatusAccepted, tt.answer)
			r := f.run(t, "retry", "dlv_3")
			if got := f.last(t).Path; got != "/v1/deliveries/dlv_3/retry" {
				t.Errorf("got request %s, want /v1/deliveries/dlv_3/retry", got)
			}
			wantOutput(t, "stdout", r.stdout, tt.want)
			if r.exitCode() != tt.wantCode {
				t.Errorf("exit %d (%v), want %d", r.exitCode(), r.err, tt.wantCode)
			}
		})
	}
}

func TestPing(t *testing.T) {
	tests := []struct {
		name, answer, want string
		wantCode           int
	}{
		{"up", `{"webhook": "crm-new-lead", "url": "https://api.example.com/leads", "status": 200, "latency_ms": 12.3, "error": ""}`,
			"crm-new-lead: HEAD https://api.example.com/leads: 200 OK in 12.3ms\n", 0},
		{"not 2xx", `{"webhook": "crm-new-lead", "url": "https://api.example.com/leads", "status": 405, "latency_ms": 3, "error": ""}`,
			"crm-new-lead: HEAD https://api.example.com/leads: 405 Method Not Allowed in 3ms\n", 1},
		{"down", `{"webhook": "crm-new-lead", "url": "https://api.example.com/leads", "status": 0, "latency_ms": 10000, "error": "timeout after 10s"}`,
			"crm-new-lead: HEAD https://api.example.com/leads failed after 10s: timeout after 10s\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDaemon(t)
			f.answer("POST /v1/webhooks/{id}/ping", http.StatusOK, tt.answer)
			r := f.run(t, "ping", "crm-new-lead")
			if got := f.last(t).Path; got != "/v1/webhooks/crm-new-lead/ping" {
				t.Errorf("got request %s, want /v1/webhooks/crm-new-lead/ping", got)
			}
			wantOutput(t, "stdout", r.stdout, tt.want)
			if r.exitCode() != tt.wantCode {
				t.Errorf("exit %d (%v), want %d", r.exitCode(), r.err, tt.wantCode)
			}
		})
	}
}

func TestReload(t *testing.T) {
	t.Run("ok", func(t *testing.T) {
		f := newFakeDaemon(t)
		f.answer("POST /v1/reload", http.StatusOK, `{"ok": true, "webhooks": 4}`)
		r := f.run(t, "reload")
		wantOutput(t, "stdout", r.stdout, "config reloaded: 4 webhooks\n")
		if r.exitCode() != 0 {
			t.Errorf("exit %d (%v), want 0", r.exitCode(), r.err)
		}
	})
	refused := `{"error": "config rejected; the previous config stays in force",
		"errors": ["webhooks.yaml:3:14: unknown event", "webhooks.yaml:4:10: bad url"]}`
	t.Run("refused", func(t *testing.T) {
		f := newFakeDaemon(t)
		f.answer("POST /v1/reload", http.StatusUnprocessableEntity, refused)
		r := f.run(t, "reload")
		wantOutput(t, "stdout", r.stdout, ""+
			"reload refused: config rejected; the previous config stays in force\n"+
			"webhooks.yaml:3:14: unknown event\n"+
			"webhooks.yaml:4:10: bad url\n")
		if r.exitCode() != 1 {
			t.Errorf("exit %d (%v), want 1", r.exitCode(), r.err)
		}
	})
	t.Run("refused json", func(t *testing.T) {
		f := newFakeDaemon(t)
		f.answer("POST /v1/reload", http.StatusUnprocessableEntity, refused)
		r := f.run(t, "reload", "--json")
		wantContains(t, "stdout", r.stdout, "\n  \"errors\": [\n    \"webhooks.yaml:3:14: unknown event\",")
		if r.exitCode() != 1 {
			t.Errorf("exit %d (%v), want 1", r.exitCode(), r.err)
		}
	})
}

func TestEvents(t *testing.T) {
	t.Run("from the daemon", func(t *testing.T) {
		f := newFakeDaemon(t)
		f.answer("GET /v1/events", http.StatusOK, `{"events": [
			{"name": "Lead Creation", "code": "Lead_Post_Create", "batched": false},
			{"name": "Lead Activity Creation", "code": "LeadActivity_Post_Create", "batched": true}]}`)
		r := f.run(t, "events")
		wantOutput(t, "stdout", r.stdout, ""+
			"NAME                    CODE                      BATCHED\n"+
			"Lead Creation           Lead_Post_Create          no\n"+
			"Lead Activity Creation  LeadActivity_Post_Create  yes\n")
	})
	t.Run("without a daemon", func(t *testing.T) {
		socket := filepath.Join(shortTempDir(t), "none.sock")
		r := sidehook(t, nil, "", "events", "--socket", socket)
		if r.err != nil {
			t.Fatal(r.err)
		}
		wantContains(t, "stdout", r.stdout, "Lead Creation  ", "Lead_Post_Create", "Sales Activity Cancel")
		wantOutput(t, "stderr", r.stderr, "note: no daemon answers at "+socket+"; showing the built-in catalog\n")
	})
	t.Run("custom events from the config without a daemon", func(t *testing.T) {
		dir := shortTempDir(t)
		cfg := filepath.Join(dir, "webhooks.yaml")
		writeFile(t, cfg, "socket: s.sock\nevents:\n  - name: Invoice Paid\n    code: Invoice_Post_Paid\nwebhooks: []\n")
		r := sidehook(t, nil, "", "events", "--config", cfg, "--json")
		wantContains(t, "stdout", r.stdout, `"name": "Invoice Paid"`, `"code": "Invoice_Post_Paid"`)
		wantContains(t, "stderr", r.stderr, "showing the catalog of "+cfg)
	})
}

func TestDaemonNotRunning(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "sidehook.sock")
	cfg := filepath.Join(dir, "webhooks.yaml")
	r := sidehook(t, map[string]string{"SIDEHOOK_CONFIG": cfg, "SIDEHOOK_SOCKET": socket}, "", "webhooks")
	want := "cannot reach the daemon at " + socket + " (is it running? start it with: sidehook run --config " + cfg + ")"
	if r.err == nil || r.err.Error() != want {
		t.Errorf("got error %v, want %q", r.err, want)
	}
	if r.stdout != "" {
		t.Errorf("got stdout %q, want none", r.stdout)
	}
}

func TestFindingTheDaemon(t *testing.T) {
	t.Run("relative socket in the config file", func(t *testing.T) {
		dir := shortTempDir(t)
		f := newFakeDaemonAt(t, filepath.Join(dir, "d.sock"))
		f.answer("POST /v1/reload", http.StatusOK, `{"ok": true, "webhooks": 1}`)
		cfg := filepath.Join(dir, "webhooks.yaml")
		writeFile(t, cfg, "socket: d.sock\nwebhooks: []\n")
		r := sidehook(t, map[string]string{"SIDEHOOK_SOCKET": "/nonexistent.sock"}, "", "reload", "--config", cfg)
		wantOutput(t, "stdout", r.stdout, "config reloaded: 1 webhook\n")
	})
	t.Run("SIDEHOOK_SOCKET", func(t *testing.T) {
		f := newFakeDaemon(t)
		f.answer("POST /v1/reload", http.StatusOK, `{"ok": true, "webhooks": 2}`)
		r := sidehook(t, map[string]string{"SIDEHOOK_SOCKET": f.socket}, "", "reload")
		wantOutput(t, "stdout", r.stdout, "config reloaded: 2 webhooks\n")
	})
	t.Run("--addr", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/reload" {
				http.NotFound(w, r)
				return
			}
			w.Write([]byte(`{"ok": true, "webhooks": 3}`))
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		for _, addr := range []string{"http://" + ln.Addr().String(), ln.Addr().String()} {
			r := sidehook(t, nil, "", "reload", "--addr", addr)
			wantOutput(t, "stdout with --addr "+addr, r.stdout, "config reloaded: 3 webhooks\n")
		}
	})
}
