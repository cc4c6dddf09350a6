package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestLoad_Errors loads each testdata/*.bad.yaml and checks that every
// wanted line appears in the error, exactly as a user sees it.
func TestLoad_Errors(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_UNSET", "")
	os.Unsetenv("SIDEHOOK_TEST_UNSET")

	tests := []struct {
		file string
		want []string
		// wantCount, when not 0, is the exact number of problems.
		wantCount int
	}{
		{"unknown_key", []string{
			`unknown_key.bad.yaml:1:1: unknown key "webhook" (did you mean "webhooks"?)`,
			`unknown_key.bad.yaml:6:5: webhooks[0]: unknown key "urll" (did you mean "url"?)`,
		}, 0},
		{"unknown_event", []string{
			`unknown_event.bad.yaml:3:14: webhooks[0].events[0]: unknown event "Lead Creaton" (did you mean "Lead Creation"? see: sidehook events)`,
			`unknown_event.bad.yaml:3:41: webhooks[0].events[2]: unknown event "Invoice Paid" (see: sidehook events)`,
			`unknown_event.bad.yaml:6:12: webhooks[1].event: unknown event "lead_post_create" (did you mean "Lead_Post_Create"? see: sidehook events)`,
		}, 3},
		{"duplicate_id", []string{
			`duplicate_id.bad.yaml:5:9: webhooks[1].id: duplicate id "crm-new-lead" (first defined at testdata/duplicate_id.bad.yaml:2:5)`,
		}, 1},
		{"bad_url", []string{
			`bad_url.bad.yaml:4:10: webhooks[0].url: not a valid URL: invalid character " " in host name (got "http://exa mple.com/leads")`,
			`bad_url.bad.yaml:7:10: webhooks[1].url: has no host`,
			`bad_url.bad.yaml:10:10: webhooks[2].url: must be http or https (got "api.example.com/leads")`,
			`bad_url.bad.yaml:11:5: webhooks[3]: url is missing`,
		}, 4},
		{"ftp_url", []string{
			`ftp_url.bad.yaml:4:10: webhooks[0].url: must be http or https (got "ftp://x")`,
		}, 1},
		{"content_type", []string{
			`content_type.bad.yaml:5:19: webhooks[0].content_type: must be application/json, application/x-www-form-urlencoded or text/plain (got "application/xml")`,
		}, 1},
		{"negative_duration", []string{
			`negative_duration.bad.yaml:1:20: history_retention: must be greater than 0 (got "0s")`,
			`negative_duration.bad.yaml:6:12: webhooks[0].delay: must not be negative (got "-5s")`,
			`negative_duration.bad.yaml:7:14: webhooks[0].timeout: must be greater than 0 (got "0")`,
			`negative_duration.bad.yaml:8:35: webhooks[0].retry.backoff: must not be negative (got "-1")`,
			`negative_duration.bad.yaml:9:21: webhooks[0].batch.window: must be a duration like 500ms, 30s, 5m or 720h, or a number of seconds; there is no d unit, write days as hours (7d = 168h) (got "7d")`,
		}, 5},
		{"unset_var", []string{
			`unset_var.bad.yaml:6:22: webhooks[0].headers.Authorization: environment variable SIDEHOOK_TEST_UNSET is not set`,
			`unset_var.bad.yaml:7:14: webhooks[0].headers.X-Bad: ${not a name}: not a variable name`,
			`unset_var.bad.yaml:8:15: webhooks[0].headers.X-Open: unterminated ${`,
		}, 3},
		{"unreadable_file", []string{
			`unreadable_file.bad.yaml:5:13: webhooks[0].secret: read ${file:no-such-secret.txt}: open ` +
				filepath.Join("testdata", "no-such-secret.txt") + `: no such file or directory`,
		}, 1},
		{"batch_form", []string{
			`batch_form.bad.yaml:6:12: webhooks[0].batch: batching needs content_type application/json (this webhook sends application/x-www-form-urlencoded); remove batch or set batch: off`,
			`batch_form.bad.yaml:10:12: webhooks[1].batch: must be off or a mapping such as {window: 1m, max: 100} (got "maybe")`,
			`batch_form.bad.yaml:14:30: webhooks[2].batch.max: must be at least 1 (got 0)`,
		}, 3},
		{"bad_secret", []string{
			`bad_secret.bad.yaml:5:13: webhooks[0].secret: must start with whsec_ followed by a base64 key`,
			`bad_secret.bad.yaml:10:9: webhooks[1].secrets[0]: the part after whsec_ must be a non-empty standard base64 key`,
			`bad_secret.bad.yaml:12:20: webhooks[1].secrets[1].not_after: must be an RFC3339 time such as 2026-01-31T00:00:00Z (got "tomorrow")`,
		}, 3},
		{"yes_bool", []string{
			`yes_bool.bad.yaml:5:14: webhooks[0].enabled: must be true or false (got "yes"; YAML 1.2 reads it as text, not a boolean)`,
			`yes_bool.bad.yaml:6:16: webhooks[0].handshake: must be true or false (got "1")`,
		}, 2},
		{"bad_id", []string{
			`bad_id.bad.yaml:2:9: webhooks[0].id: must be lowercase letters, digits, - and _, starting with a letter or digit, such as crm-new-lead (got "CRM_Lead")`,
			`bad_id.bad.yaml:5:9: webhooks[1].id: ids starting with _ are reserved for sidehook (got "_internal")`,
			`bad_id.bad.yaml:8:5: webhooks[2]: id is missing`,
		}, 3},
		{"command_missing", []string{
			`command_missing.bad.yaml:5:15: webhooks[0].command[0]: program /nonexistent/sidehook-test/crm-sync does not exist; install it or fix the path`,
			`command_missing.bad.yaml:9:15: webhooks[1].command[0]: program "sidehook-test-no-such-program" is not in PATH; give its absolute path`,
			`command_missing.bad.yaml:13:14: webhooks[2].command: must be a list (argv, never a shell string)`,
			`command_missing.bad.yaml:14:5: webhooks[3]: command is missing`,
		}, 4},
		{"type_mismatch", []string{
			`type_mismatch.bad.yaml:5:5: webhooks[0].command: only for type: command; add type: command to run a program, or remove command`,
			`type_mismatch.bad.yaml:10:5: webhooks[1].url: only for type: http; a command webhook runs its program instead, so remove url`,
			`type_mismatch.bad.yaml:12:11: webhooks[2].type: must be http or command (got "lapp")`,
		}, 3},
		{"limits", []string{
			`limits.bad.yaml:5:18: webhooks[0].concurrency: must be between 1 and 1024 (got 0)`,
			`limits.bad.yaml:6:27: webhooks[0].success_status[1]: must be between 100 and 599 (got 99)`,
			`limits.bad.yaml:7:23: webhooks[0].retry.attempts: must be at least 1, the first try (got 0)`,
			`limits.bad.yaml:7:35: webhooks[0].retry.backoff: is more than the default max_backoff 1h; lower it or set max_backoff (got 2h)`,
			`limits.bad.yaml:11:18: webhooks[1].concurrency: must be between 1 and 1024 (got 5000)`,
			`limits.bad.yaml:12:39: webhooks[1].retry.max_backoff: must not be less than backoff (got 30s, backoff is 1m)`,
		}, 6},
		{"notify", []string{
			`notify.bad.yaml:2:8: notify.url: must be http or https (got "ftp://ops.example.com/failures")`,
			`notify.bad.yaml:3:12: notify.timeout: must be a duration like 500ms, 30s, 5m or 720h, or a number of seconds (got "10 seconds")`,
		}, 2},
		{"notify_missing", []string{
			`notify_missing.bad.yaml:5:24: webhooks[0].notify_on_failure: no notify: block is configured`,
		}, 1},
		{"custom_event", []string{
			`custom_event.bad.yaml:2:11: events[0].name: "lead creation" is already an event (see: sidehook events); choose another name`,
			`custom_event.bad.yaml:4:5: events[1]: a custom event needs both name and code`,
			`custom_event.bad.yaml:6:11: events[2].code: "Lead_Post_Create" is already an event (see: sidehook events); choose another code`,
			`custom_event.bad.yaml:8:11: events[3].code: must be letters, digits and _, such as Invoice_Post_Paid (got "Invoice Sent")`,
		}, 4},
		{"listen", []string{
			`listen.bad.yaml:1:9: listen: must be host:port such as 127.0.0.1:8787, or "" for no TCP listener (got "8787")`,
			`listen.bad.yaml:2:9: socket: environment variable SIDEHOOK_TEST_UNSET is not set`,
		}, 2},
		{"socket", []string{
			`socket.bad.yaml:1:9: socket: /run/sidehook/` + strings.Repeat("x", 100) + `.sock is 119 bytes long; Unix socket paths must be at most 107, so choose a shorter one`,
		}, 1},
		{"events", []string{
			`events.bad.yaml:3:5: webhooks[0].event: use either event or events, not both`,
			`events.bad.yaml:6:5: webhooks[1]: no events; add events: [Lead Creation] or event: Lead Creation (see: sidehook events)`,
			`events.bad.yaml:9:13: webhooks[2].events: is empty`,
			`events.bad.yaml:12:13: webhooks[3].events: must be a list, got "Lead Creation"`,
		}, 4},
		{"headers", []string{
			`headers.bad.yaml:7:7: webhooks[0].headers: duplicate header "x-api-key" (first at line 6; header names ignore case)`,
			`headers.bad.yaml:8:7: webhooks[0].headers.Content-Type: set by sidehook from content_type; set content_type instead`,
			`headers.bad.yaml:9:7: webhooks[0].headers: "Bad Header" is not a valid header name`,
		}, 3},
		{"syntax", []string{
			`syntax.bad.yaml:3:1: invalid YAML: did not find expected ',' or ']'`,
		}, 1},
		{"listen_public", []string{
			`listen_public.bad.yaml:2:16: listen_public: true needs api_token, the bearer token every request on the TCP listener must carry, such as api_token: ${SIDEHOOK_API_TOKEN}`,
		}, 1},
		{"security", []string{
			`security.bad.yaml:1:9: listen: "0.0.0.0:8787" is not a loopback address (127.0.0.1, ::1 or localhost); to serve other hosts set listen_public: true and api_token`,
			`security.bad.yaml:2:15: socket_group: must not be empty`,
			`security.bad.yaml:3:12: api_token: is too short (11 characters); use at least 16 random ones`,
			`security.bad.yaml:5:10: network.deny[0]: 10.1.2.3/8 has bits set past the prefix length; did you mean 10.0.0.0/8? (got "10.1.2.3/8")`,
			`security.bad.yaml:5:22: network.deny[1]: must be a CIDR prefix such as 10.0.0.0/8 or fd00::/8, or one address (got "nonsense")`,
			`security.bad.yaml:6:11: network.allow[0]: must not name a zone (%eth0)`,
			`security.bad.yaml:7:3: network: unknown key "alow" (did you mean "allow"?)`,
		}, 7},
		{"tls", []string{
			`tls.bad.yaml:5:11: webhooks[0].tls.cert_file: needs key_file too`,
			`tls.bad.yaml:10:16: webhooks[1].tls.ca_file: read ` + filepath.Join("testdata", "no-such-ca.pem") + `: no such file or directory`,
			`tls.bad.yaml:11:29: webhooks[1].tls.insecure_skip_verify: must be true or false (got "yes"; YAML 1.2 reads it as text, not a boolean)`,
			`tls.bad.yaml:15:20: webhooks[2].tls.ca_file: ` + filepath.Join("testdata", "tls.bad.yaml") + ` holds no PEM certificate`,
			`tls.bad.yaml:15:34: webhooks[2].tls: unknown key "ca_fle" (did you mean "ca_file"?)`,
			`tls.bad.yaml:20:5: webhooks[3].tls: only for type: http; a command webhook runs its program instead, so remove tls`,
		}, 6},
		{"api_limits", []string{
			`api_limits.bad.yaml:2:13: limits.max_body: must be between 1KiB and 1GiB (got "2GiB")`,
			`api_limits.bad.yaml:3:15: limits.max_events: must be between 1 and 100000 (got 0)`,
			`api_limits.bad.yaml:4:14: limits.max_depth: must be a whole number (got "deep")`,
			`api_limits.bad.yaml:5:12: limits.max_key: must be between 1 and 4096 (got 100000)`,
			`api_limits.bad.yaml:6:21: limits.max_header_bytes: must be a size such as 1048576, 512KB or 1MiB (units B, KB, MB, GB, TB and KiB, MiB, GiB, TiB) (got "64 KiBs")`,
			`api_limits.bad.yaml:7:20: limits.max_connections: must be between 1 and 1048576 (got -1)`,
			`api_limits.bad.yaml:8:3: limits: unknown key "max_conections" (did you mean "max_connections"?)`,
		}, 7},
		{"aliases", []string{
			`aliases.bad.yaml:2:1: aliases (*name) add over 10000 values to the file once followed; write the settings out instead`,
		}, 1},
		{"api_sizes", []string{
			`api_sizes.bad.yaml:2:13: limits.max_body: must not be negative (got "-1MiB")`,
			`api_sizes.bad.yaml:3:21: limits.max_header_bytes: is too large (got "99999999999999999999")`,
		}, 2},
		{"multiple", []string{
			`multiple.bad.yaml:4:14: webhooks[0].events[0]: unknown event "Lead Creaton" (did you mean "Lead Creation"? see: sidehook events)`,
			`multiple.bad.yaml:5:10: webhooks[0].url: must be http or https (got "ftp://x")`,
			`multiple.bad.yaml:6:19: webhooks[0].content_type: must be application/json, application/x-www-form-urlencoded or text/plain (got "application/xml")`,
			`multiple.bad.yaml:7:12: webhooks[0].delay: must not be negative (got "-1s")`,
			`multiple.bad.yaml:8:14: webhooks[0].enabled: must be true or false (got "no"; YAML 1.2 reads it as text, not a boolean)`,
		}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file+".bad.yaml")
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) = %d webhooks and no error, want errors", path, len(cfg.Webhooks))
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) error is %T, want config.Errors: %v", path, err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, want := range tt.want {
				if !hasLinePrefix(lines, "testdata/"+want) {
					t.Errorf("missing problem\nwant: testdata/%s\n got:\n%s", want, err)
				}
			}
			if tt.wantCount != 0 && len(errs) != tt.wantCount {
				t.Errorf("got %d problems, want %d:\n%s", len(errs), tt.wantCount, err)
			}
		})
	}
}

// hasLinePrefix reports whether one of lines starts with want.
func hasLinePrefix(lines []string, want string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, filepath.FromSlash(want)) {
			return true
		}
	}
	return false
}

func TestLoad_ErrorsSorted(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "multiple.bad.yaml"))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want config.Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d:%d", e.Pos.Line, e.Pos.Col))
	}
	want := []string{"4:14", "5:10", "6:19", "7:12", "8:14"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("positions in order: got %v, want %v", got, want)
	}
}

func TestLoad_MissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load of a missing file succeeded, want an error")
	}
	if errors.As(err, &Errors{}) {
		t.Errorf("missing file gave config.Errors, want a plain error: %v", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error does not wrap os.ErrNotExist: %v", err)
	}
	want := "read config " + path + ": open " + path + ": no such file or directory (create it, starting from webhooks.example.yaml, or point --config or SIDEHOOK_CONFIG at your file)"
	if got := err.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// writeConfig writes text as webhooks.yaml in a new temporary folder and
// returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustLoad loads text as a configuration that must be valid.
func mustLoad(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := Load(writeConfig(t, text))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func TestLoad_Example(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "webhooks.example.yaml"))
	if err != nil {
		t.Fatalf("webhooks.example.yaml must load in a clean environment:\n%v", err)
	}
	var ids []string
	for _, w := range cfg.Webhooks {
		ids = append(ids, w.ID)
	}
	if got, want := strings.Join(ids, " "), "crm-new-lead lead-stage-change activity-batch task-complete"; got != want {
		t.Errorf("webhook ids: got %q, want %q", got, want)
	}
	if got, want := cfg.Socket, filepath.Join("..", "sidehook.sock"); got != want {
		t.Errorf("socket: got %q, want %q (relative to the file's folder)", got, want)
	}
	if got, want := cfg.Listen, "127.0.0.1:8787"; got != want {
		t.Errorf("listen: got %q, want %q", got, want)
	}
	if _, ok := cfg.Catalog.Lookup("Invoice Paid"); !ok {
		t.Error("custom event Invoice Paid is not in the catalog")
	}
	for _, w := range cfg.Webhooks {
		if strings.Contains(w.URL, "example.com") {
			t.Errorf("webhook %s points at %s; the example should use the local receiver", w.ID, w.URL)
		}
	}
}

func TestLoad_Defaults(t *testing.T) {
	cfg := mustLoad(t, `
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: https://api.example.com/leads/add
`)
	if cfg.Socket != "" || cfg.Listen != "" || cfg.DataDir != "" || cfg.Notify != nil {
		t.Errorf("top level: got socket %q listen %q data_dir %q notify %v, want all unset", cfg.Socket, cfg.Listen, cfg.DataDir, cfg.Notify)
	}
	if got, want := cfg.HistoryRetention, 720*time.Hour; got != want {
		t.Errorf("history_retention: got %v, want %v", got, want)
	}
	if got, want := len(cfg.Webhooks), 1; got != want {
		t.Fatalf("got %d webhooks, want %d", got, want)
	}
	got := cfg.Webhooks[0]
	want := &Webhook{
		ID:          "crm-new-lead",
		Type:        TypeHTTP,
		Events:      []string{"Lead_Post_Create"},
		URL:         "https://api.example.com/leads/add",
		ContentType: ContentJSON,
		Timeout:     10 * time.Second,
		Concurrency: 4,
		Retry:       Retry{Attempts: 3, Backoff: 10 * time.Second, MaxBackoff: time.Hour},
		Enabled:     true,
		Pos:         Pos{File: cfg.File, Line: 3, Col: 5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("webhook:\n got %+v\nwant %+v", got, want)
	}
	if cfg.Webhook("crm-new-lead") != got || cfg.Webhook("nope") != nil {
		t.Error("Config.Webhook does not find webhooks by id")
	}
}

func TestLoad_EmptyFile(t *testing.T) {
	cfg := mustLoad(t, "# nothing yet\n")
	if len(cfg.Webhooks) != 0 || cfg.Catalog == nil {
		t.Errorf("got %d webhooks and catalog %v, want none and the built-in catalog", len(cfg.Webhooks), cfg.Catalog)
	}
}

func TestLoad_AllSettings(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "crm-sync")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\ncat >/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	oldKey := base64.StdEncoding.EncodeToString([]byte("old-key"))
	path := filepath.Join(dir, "webhooks.yaml")
	text := `
socket: /run/test/sidehook.sock
listen: "127.0.0.1:0"
data_dir: state
history_retention: 48h
notify:
  url: https://ops.example.com/failures
  headers: {X-Team: ops}
  timeout: 5s
  window: 30s
events:
  - {name: Invoice Paid, code: Invoice_Post_Paid, batched: true}
webhooks:
  - id: full
    description: Every key
    type: http
    events: [Lead Creation, lead creation, Lead_Post_Create, Invoice Paid]
    url: https://api.example.com/leads?x=1
    content_type: Application/JSON
    delay: 30
    headers:
      X-Second: b
      X-First: a
    secrets:
      - secret: whsec_` + oldKey + `
        not_after: 2026-01-31T00:00:00Z
      - whsec_` + key + `
    notify_on_failure: true
    timeout: 1.5
    concurrency: 8
    success_status: [200, 202]
    retry: {attempts: 5, backoff: 1s, max_backoff: 2m}
    batch: {max: 10}
    enabled: false
    handshake: true
  - id: crm-sync
    type: command
    event: Lead Update
    command: [./crm-sync, --mode, lead]
    env: {CRM_TOKEN: abc}
    workdir: .
    content_type: text/plain
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := fmt.Sprint(cfg.Socket, " ", cfg.Listen, " ", cfg.DataDir, " ", cfg.HistoryRetention),
		fmt.Sprint("/run/test/sidehook.sock 127.0.0.1:0 ", filepath.Join(dir, "state"), " 48h0m0s"); got != want {
		t.Errorf("top level: got %q, want %q", got, want)
	}
	wantNotify := &Notify{URL: "https://ops.example.com/failures", Headers: []Header{{Name: "X-Team", Value: "ops"}}, Timeout: 5 * time.Second, Window: 30 * time.Second}
	if !reflect.DeepEqual(cfg.Notify, wantNotify) {
		t.Errorf("notify:\n got %+v\nwant %+v", cfg.Notify, wantNotify)
	}
	if et, ok := cfg.Catalog.Lookup("Invoice_Post_Paid"); !ok || !et.Batched {
		t.Errorf("custom event: got %+v, %v; want batched Invoice_Post_Paid", et, ok)
	}

	w := cfg.Webhook("full")
	want := &Webhook{
		ID:          "full",
		Description: "Every key",
		Type:        TypeHTTP,
		Events:      []string{"Lead_Post_Create", "Invoice_Post_Paid"},
		URL:         "https://api.example.com/leads?x=1",
		ContentType: ContentJSON,
		Delay:       30 * time.Second,
		Headers:     []Header{{Name: "X-Second", Value: "b"}, {Name: "X-First", Value: "a"}},
		Secrets: []Secret{
			{Key: []byte("old-key"), NotAfter: time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)},
			{Key: []byte("0123456789abcdef0123456789abcdef")},
		},
		NotifyOnFailure: true,
		Timeout:         1500 * time.Millisecond,
		Concurrency:     8,
		SuccessStatus:   []int{200, 202},
		Retry:           Retry{Attempts: 5, Backoff: time.Second, MaxBackoff: 2 * time.Minute},
		Batch:           &Batch{Window: time.Minute, Max: 10},
		Enabled:         false,
		Handshake:       true,
		Pos:             Pos{File: path, Line: 14, Col: 5},
	}
	if !reflect.DeepEqual(w, want) {
		t.Errorf("webhook full:\n got %+v\nwant %+v", w, want)
	}

	c := cfg.Webhook("crm-sync")
	if got, want := fmt.Sprint(c.Type, c.Events, c.Command, c.Env, c.Workdir, c.ContentType),
		fmt.Sprint(TypeCommand, []string{"Lead_Post_Update"}, []string{prog, "--mode", "lead"}, map[string]string{"CRM_TOKEN": "abc"}, dir, ContentText); got != want {
		t.Errorf("command webhook:\n got %s\nwant %s", got, want)
	}
}

func TestLoad_CommandNotExecutable(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "crm-sync")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `webhooks:
  - id: crm-sync
    type: command
    events: [Lead Update]
    command: [`+prog+`]
    workdir: /nonexistent/sidehook-test
`)
	_, err := Load(path)
	want := path + ":5:15: webhooks[0].command[0]: program " + prog + " is not executable; run chmod +x " + prog + "\n" +
		path + ":6:14: webhooks[0].workdir: folder /nonexistent/sidehook-test cannot be used: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestLoad_CommandPathRelativeToRelativeConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "crm-sync"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := `webhooks:
  - id: crm-sync
    type: command
    events: [Lead Update]
    command: [./crm-sync, --mode, lead]
    workdir: /
`
	if err := os.WriteFile(filepath.Join(dir, "webhooks.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	cfg, err := Load("webhooks.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// Absolute: "crm-sync" would be looked up in PATH, and a relative path
	// would be taken from workdir.
	if got, want := cfg.Webhook("crm-sync").Command[0], filepath.Join(dir, "crm-sync"); got != want {
		t.Errorf("program = %q, want %q", got, want)
	}
}

func TestLoad_ExpandEnv(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_HOST", "127.0.0.1:9999")
	t.Setenv("SIDEHOOK_TEST_TOKEN", "s3cret")
	t.Setenv("SIDEHOOK_TEST_DELAY", "45")
	t.Setenv("SIDEHOOK_TEST_SECRET", "whsec_"+base64.StdEncoding.EncodeToString([]byte("key")))
	cfg := mustLoad(t, `
socket: ${SIDEHOOK_TEST_HOST}.sock
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://${SIDEHOOK_TEST_HOST}/leads
    delay: ${SIDEHOOK_TEST_DELAY}
    secret: ${SIDEHOOK_TEST_SECRET}
    headers:
      Authorization: "Bearer ${SIDEHOOK_TEST_TOKEN}"
      X-Literal: "costs $${SIDEHOOK_TEST_TOKEN}"
`)
	w := cfg.Webhooks[0]
	if got, want := w.URL, "http://127.0.0.1:9999/leads"; got != want {
		t.Errorf("url: got %q, want %q", got, want)
	}
	if got, want := w.Delay, 45*time.Second; got != want {
		t.Errorf("delay: got %v, want %v", got, want)
	}
	if got, want := string(w.Secrets[0].Key), "key"; got != want {
		t.Errorf("secret key: got %q, want %q", got, want)
	}
	wantHeaders := []Header{
		{Name: "Authorization", Value: "Bearer s3cret", Secret: true},
		{Name: "X-Literal", Value: "costs ${SIDEHOOK_TEST_TOKEN}", Secret: false},
	}
	if !reflect.DeepEqual(w.Headers, wantHeaders) {
		t.Errorf("headers:\n got %+v\nwant %+v", w.Headers, wantHeaders)
	}
	if got, want := cfg.Socket, filepath.Join(filepath.Dir(cfg.File), "127.0.0.1:9999.sock"); got != want {
		t.Errorf("socket: got %q, want %q", got, want)
	}
}

func TestLoad_ExpandFile(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "token")
	if err := os.WriteFile(secretFile, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, `
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://127.0.0.1:9999/leads
    headers:
      X-Plain: "id=${file:`+secretFile+`}"
`)
	want := []Header{{Name: "X-Plain", Value: "id=from-a-file", Secret: true}}
	if got := cfg.Webhooks[0].Headers; !reflect.DeepEqual(got, want) {
		t.Errorf("headers:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoad_ExpandFileRelative(t *testing.T) {
	path := writeConfig(t, `
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://127.0.0.1:9999/leads
    headers: {X-Token: "${file:secrets/token}"}
`)
	secrets := filepath.Join(filepath.Dir(path), "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "token"), []byte("t0k3n\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := cfg.Webhooks[0].Headers[0].Value, "t0k3n"; got != want {
		t.Errorf("header from ${file:secrets/token}: got %q, want %q", got, want)
	}
}

func TestLoad_HeaderSecret(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_PLAIN", "not-secret-by-name")
	cfg := mustLoad(t, `
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://127.0.0.1:9999/leads
    headers:
      Authorization: Basic dXNlcjpwYXNz
      X-Api-Key: k
      X-Auth-User: u
      X-Access-Token: t
      X-Client-Secret: s
      X-Password: p
      X-Signature: sig
      Cookie: c
      X-Source: sidehook
      Accept: application/json
      X-Env: ${SIDEHOOK_TEST_PLAIN}
`)
	want := map[string]bool{
		"Authorization": true, "X-Api-Key": true, "X-Auth-User": true, "X-Access-Token": true,
		"X-Client-Secret": true, "X-Password": true, "X-Signature": true, "Cookie": true,
		"X-Source": false, "Accept": false, "X-Env": true,
	}
	headers := cfg.Webhooks[0].Headers
	if got, want := len(headers), len(want); got != want {
		t.Fatalf("got %d headers, want %d", got, want)
	}
	for _, h := range headers {
		if h.Secret != want[h.Name] {
			t.Errorf("header %s: got Secret %v, want %v", h.Name, h.Secret, want[h.Name])
		}
	}
}

func TestLoad_BareNumberDurations(t *testing.T) {
	cfg := mustLoad(t, `
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://127.0.0.1:9999/leads
    delay: 30
    timeout: 1.5
    retry: {backoff: 0.25, max_backoff: 600}
    batch: {window: 90}
`)
	w := cfg.Webhooks[0]
	got := []time.Duration{w.Delay, w.Timeout, w.Retry.Backoff, w.Retry.MaxBackoff, w.Batch.Window}
	want := []time.Duration{30 * time.Second, 1500 * time.Millisecond, 250 * time.Millisecond, 10 * time.Minute, 90 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delay, timeout, backoff, max_backoff, window:\n got %v\nwant %v", got, want)
	}
	if got, want := w.Batch.Max, 100; got != want {
		t.Errorf("batch.max default: got %d, want %d", got, want)
	}
}

func TestLoad_Batch(t *testing.T) {
	cfg := mustLoad(t, `
webhooks:
  - id: default-json
    events: [Lead Activity Creation, Lead Creation]
    url: http://127.0.0.1:9999/a
  - id: off
    events: [Lead Activity Creation]
    url: http://127.0.0.1:9999/b
    batch: off
  - id: form
    events: [Lead Activity Creation]
    url: http://127.0.0.1:9999/c
    content_type: application/x-www-form-urlencoded
  - id: form-off
    events: [Lead Activity Creation]
    url: http://127.0.0.1:9999/d
    content_type: application/x-www-form-urlencoded
    batch: off
  - id: window-only
    events: [Lead Creation]
    url: http://127.0.0.1:9999/e
    batch: {window: 10s}
`)
	activity, _ := cfg.Catalog.Lookup("Lead Activity Creation")
	lead, _ := cfg.Catalog.Lookup("Lead Creation")
	tests := []struct {
		id     string
		et     EventType
		want   Batch
		wantOK bool
	}{
		{"default-json", activity, Batch{Window: time.Minute, Max: 100}, true},
		{"default-json", lead, Batch{}, false},
		{"off", activity, Batch{}, false},
		{"form", activity, Batch{}, false},
		{"form-off", activity, Batch{}, false},
		{"window-only", lead, Batch{Window: 10 * time.Second, Max: 100}, true},
	}
	for _, tt := range tests {
		w := cfg.Webhook(tt.id)
		got, ok := w.BatchFor(tt.et)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s.BatchFor(%s) = %+v, %v; want %+v, %v", tt.id, tt.et.Code, got, ok, tt.want, tt.wantOK)
		}
	}
	if w := cfg.Webhook("default-json"); w.Batch != nil || w.BatchOff {
		t.Errorf("absent batch: got Batch %v BatchOff %v, want nil and false", w.Batch, w.BatchOff)
	}
	if w := cfg.Webhook("off"); w.Batch != nil || !w.BatchOff {
		t.Errorf("batch: off: got Batch %v BatchOff %v, want nil and true", w.Batch, w.BatchOff)
	}
}

func TestLoad_DropIns(t *testing.T) {
	path := writeConfig(t, `
events:
  - {name: Invoice Paid, code: Invoice_Post_Paid}
webhooks:
  - id: main-one
    events: [Lead Creation]
    url: http://127.0.0.1:9999/main
`)
	dropIns := filepath.Join(filepath.Dir(path), "webhooks.d")
	files := map[string]string{
		"20-billing.yaml": "webhooks:\n  - id: billing\n    events: [Invoice Paid]\n    url: http://127.0.0.1:9999/billing\n",
		"10-tasks.yaml":   "webhooks:\n  - id: tasks\n    event: Task Create\n    url: http://127.0.0.1:9999/tasks\n",
		"notes.txt":       "not yaml, ignored",
		".hidden.yaml":    "garbage: [",
		"empty.yaml":      "",
	}
	if err := os.Mkdir(dropIns, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dropIns, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var got []string
	for _, w := range cfg.Webhooks {
		got = append(got, w.ID+"@"+filepath.Base(w.Pos.File))
	}
	want := []string{"main-one@webhooks.yaml", "tasks@10-tasks.yaml", "billing@20-billing.yaml"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("webhooks: got %v, want %v", got, want)
	}
	if got, want := cfg.Webhook("billing").Events, []string{"Invoice_Post_Paid"}; !reflect.DeepEqual(got, want) {
		t.Errorf("drop-in using a custom event: got %v, want %v", got, want)
	}
}

func TestLoad_DropInErrors(t *testing.T) {
	path := writeConfig(t, `
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: ftp://x
`)
	dropIns := filepath.Join(filepath.Dir(path), "webhooks.d")
	if err := os.Mkdir(dropIns, 0o755); err != nil {
		t.Fatal(err)
	}
	dup := filepath.Join(dropIns, "crm.yaml")
	text := "socket: /tmp/x.sock\nwebhooks:\n  - id: crm-new-lead\n    events: [Lead Creation]\n    url: http://127.0.0.1:9999/dup\n"
	if err := os.WriteFile(dup, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	yml := filepath.Join(dropIns, "extra.yml")
	if err := os.WriteFile(yml, []byte("webhooks: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + `:5:10: webhooks[0].url: must be http or https (got "ftp://x")` + "\n" +
		dup + `:1:1: unknown key "socket" (a webhooks.d file holds only a webhooks: list; other settings belong in the main file)` + "\n" +
		dup + `:3:9: webhooks[0].id: duplicate id "crm-new-lead" (first defined at ` + path + `:3:5); ids must be unique across the main file and webhooks.d/` + "\n" +
		yml + `: webhooks.d files must end in .yaml; rename it to extra.yaml`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestLoad_DuplicateKey(t *testing.T) {
	path := writeConfig(t, `webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://127.0.0.1:9999/a
    url: http://127.0.0.1:9999/b
`)
	_, err := Load(path)
	want := path + `:5:5: webhooks[0]: duplicate key "url" (first at line 4)`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestPeek(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_DIR", "/srv/sidehook")
	path := writeConfig(t, `
socket: ${SIDEHOOK_TEST_DIR}/sidehook.sock
listen: 127.0.0.1:8787
data_dir: data
webhooks:
  - id: BROKEN
    events: [No Such Event]
    url: ftp://x
    surprise: true
`)
	got, err := Peek(path)
	want := Settings{Socket: "/srv/sidehook/sidehook.sock", Listen: "127.0.0.1:8787", DataDir: filepath.Join(filepath.Dir(path), "data")}
	if err != nil || got != want {
		t.Errorf("Peek = %+v, %v; want %+v, nil", got, err, want)
	}
	if _, err := Load(path); err == nil {
		t.Error("Load accepted the broken file; the test needs it broken")
	}
}

func TestPeek_SyntaxError(t *testing.T) {
	path := writeConfig(t, `socket: "/run/test/sidehook.sock"   # the socket
listen: '127.0.0.1:8787'
webhooks:
  - id: crm-new-lead
    events: [Lead Creation
  data_dir: nope
`)
	got, err := Peek(path)
	want := Settings{Socket: "/run/test/sidehook.sock", Listen: "127.0.0.1:8787"}
	if err != nil || got != want {
		t.Errorf("Peek = %+v, %v; want %+v, nil", got, err, want)
	}
}

func TestPeek_Errors(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_UNSET", "")
	os.Unsetenv("SIDEHOOK_TEST_UNSET")
	path := writeConfig(t, "socket: ${SIDEHOOK_TEST_UNSET}\nlisten: 127.0.0.1:8787\n")
	got, err := Peek(path)
	if got.Listen != "127.0.0.1:8787" {
		t.Errorf("listen: got %q, want %q", got.Listen, "127.0.0.1:8787")
	}
	want := path + ":1:9: socket: environment variable SIDEHOOK_TEST_UNSET is not set (set it in sidehook's environment, or write $${ for a literal ${)"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}

	if _, err := Peek(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || errors.As(err, &Errors{}) {
		t.Errorf("Peek of a missing file: got %v, want a plain error", err)
	}
}
