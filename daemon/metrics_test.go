package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricValue returns the value of the sample of name whose labels
// include every one of labels (`key="value"`), or -1 when there is none.
func metricValue(text, name string, labels ...string) float64 {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest, l)
		}
		if !match {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		return v
	}
	return -1
}

func TestMetrics(t *testing.T) {
	// The receiver answers the first request with 200, every later one
	// with 500.
	recv := newReceiver(t, func(n int) int {
		if n == 0 {
			return 200
		}
		return 500
	})
	sock := sockPath(t)
	path := writeTemp(t, "socket: "+sock+`
webhooks:
  - id: crm
    events: [Lead Creation]
    url: `+recv.URL+`/crm
    retry: { attempts: 2, backoff: 20ms }
`)
	td := startAt(t, path)
	scrape := func() string {
		_, m := td.do(t, "GET", "/metrics", "", "")
		return m
	}
	m := scrape()
	for _, name := range []string{"sidehook_events_rejected_total", "sidehook_config_reloads_total", "sidehook_config_stale",
		"sidehook_webhook_queue_depth", "sidehook_webhook_oldest_due_age_seconds", "sidehook_store_size_bytes", "sidehook_queue_depth",
		"sidehook_config_last_reload_success_timestamp_seconds"} {
		if metricValue(m, name) < 0 {
			t.Errorf("metric %s missing:\n%s", name, grep(m, "sidehook_"))
		}
	}

	td.post(t, `{"event":"Lead Creation","data":{"n":1}}`)
	eventually(t, 5*time.Second, "first delivery succeeds", func() bool { return td.Engine().Counts("crm").Success == 1 })
	m = scrape()
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sidehook_events_accepted_total", []string{`event_type="Lead_Post_Create"`}, 1},
		{"sidehook_deliveries_finished_total", []string{`status="success"`, `webhook="crm"`}, 1},
		{"sidehook_attempts_total", []string{`outcome="2xx"`, `webhook="crm"`}, 1},
		{"sidehook_attempt_duration_seconds_count", []string{`webhook="crm"`}, 1},
	}
	for _, c := range checks {
		if got := metricValue(m, c.name, c.labels...); got != c.want {
			t.Errorf("after a success: %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	if v := metricValue(m, "sidehook_store_size_bytes"); v <= 0 {
		t.Errorf("sidehook_store_size_bytes = %v, want the store's size", v)
	}

	td.post(t, `{"event":"Lead Creation","data":{"n":2}}`)
	eventually(t, 5*time.Second, "second delivery fails", func() bool { return td.Engine().Counts("crm").Failure == 1 })
	m = scrape()
	checks = []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sidehook_events_accepted_total", []string{`event_type="Lead_Post_Create"`}, 2},
		{"sidehook_deliveries_finished_total", []string{`status="success"`, `webhook="crm"`}, 1},
		{"sidehook_deliveries_finished_total", []string{`status="failure"`, `webhook="crm"`}, 1},
		{"sidehook_attempts_total", []string{`outcome="5xx"`, `webhook="crm"`}, 2},
		{"sidehook_attempt_duration_seconds_count", []string{`webhook="crm"`}, 3},
		{"sidehook_webhook_queue_depth", []string{`webhook="crm"`}, 0},
		{"sidehook_webhook_oldest_due_age_seconds", []string{`webhook="crm"`}, 0},
	}
	for _, c := range checks {
		if got := metricValue(m, c.name, c.labels...); got != c.want {
			t.Errorf("after a failure: %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// Rejections, by reason.
	td.do(t, "POST", "/v1/events", "text/plain", `{}`)
	td.post(t, `{"event":"Lead Creaton","data":{}}`)
	td.post(t, `[{"event":"Lead Creation","data":1},{"event":"Nope","data":2}]`)
	td.post(t, `{"event":`)
	td.post(t, `{"event":"Lead Creation","data":"`+strings.Repeat("x", 1<<20)+`"}`)
	m = scrape()
	for reason, want := range map[string]float64{"unsupported_media_type": 1, "unknown_event": 2, "malformed": 1, "too_large": 1, "storage": 0} {
		if got := metricValue(m, "sidehook_events_rejected_total", fmt.Sprintf("reason=%q", reason)); got != want {
			t.Errorf("rejected{%s} = %v, want %v", reason, got, want)
		}
	}

	// Reloads, by result.
	td.Reload()
	writeConfig(t, path, "webhooks: [\n")
	td.Reload()
	m = scrape()
	if ok, bad := metricValue(m, "sidehook_config_reloads_total", `result="ok"`), metricValue(m, "sidehook_config_reloads_total", `result="error"`); ok != 1 || bad < 1 {
		t.Errorf("reloads ok=%v error=%v, want 1 and at least 1", ok, bad)
	}
}

// TestDirSize_CountsTheJournal checks that the store's size counts the
// files in its subdirectories (the journal's segments) too.
func TestDirSize_CountsTheJournal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "000001.vlog"), make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	top := dirSize(dir)
	if err := os.Mkdir(filepath.Join(dir, "journal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "journal", "0000000000000001.journal"), make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := dirSize(dir); top < 64<<10 || got < top+64<<10 {
		t.Errorf("dirSize = %d with the journal, %d without; want 64 KiB more", got, top)
	}
}
