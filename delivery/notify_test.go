package delivery

import (
	"encoding/json"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

func TestNotify_CoalescesFailuresPerWebhook(t *testing.T) {
	dead := newReceiver(t, func(int, http.ResponseWriter) int { return 500 })
	ops := newReceiver(t, nil)
	crm := hook("crm", dead.URL, "Lead_Post_Create")
	crm.NotifyOnFailure = true
	crm.Retry.Attempts = 1
	tasks := hook("tasks", dead.URL, "Task_Post_Complete")
	tasks.NotifyOnFailure = true
	tasks.Retry.Attempts = 1
	quiet := hook("quiet", dead.URL, "Lead_Post_Create")
	quiet.Retry.Attempts = 1
	cfg := testConfig(crm, tasks, quiet)
	cfg.Notify = &config.Notify{URL: ops.URL + "/failures", Timeout: 5 * time.Second, Window: 300 * time.Millisecond,
		Headers: []config.Header{{Name: "Authorization", Value: "Bearer ops", Secret: true}}}
	e := openEngine(t, t.TempDir(), cfg)

	var crmIDs []string
	for i := 0; i < 3; i++ {
		acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
		for _, p := range acc.Deliveries {
			if p.Webhook == "crm" {
				crmIDs = append(crmIDs, p.ID)
			}
		}
	}
	ingest(t, e, "Task Complete", "", `{"n":2}`)
	dead.wait(t, 7) // 3 crm + 3 quiet + 1 tasks, one attempt each

	got := ops.wait(t, 2)
	notices := map[string]Notice{}
	for _, r := range got {
		var n Notice
		if err := json.Unmarshal([]byte(r.body), &n); err != nil {
			t.Fatalf("notice is not JSON: %v: %s", err, r.body)
		}
		notices[n.Webhook] = n
		if r.header.Get("Authorization") != "Bearer ops" {
			t.Errorf("notice headers = %v, want the notify headers", r.header)
		}
	}
	n, ok := notices["crm"]
	if !ok || n.Count != 3 || len(n.Failures) != 3 {
		t.Fatalf("crm notice = %+v, want one notice listing 3 failures", n)
	}
	var listed []string
	for _, f := range n.Failures {
		listed = append(listed, f.Delivery)
		if f.Attempts != 1 || f.LastStatus != 500 || f.EventType != "Lead_Post_Create" || f.History != "sidehook show "+f.Delivery || len(f.EventIDs) != 1 {
			t.Errorf("failure = %+v, want attempts 1, last_status 500, the event type, its event and the history command", f)
		}
	}
	sort.Strings(listed)
	sort.Strings(crmIDs)
	if n.Delivery != n.Failures[0].Delivery || !equal(listed, crmIDs) {
		t.Errorf("notice lists %v (top %s), want the failed crm deliveries %v", listed, n.Delivery, crmIDs)
	}
	if tn := notices["tasks"]; tn.Count != 1 || tn.Webhook != "tasks" {
		t.Errorf("tasks notice = %+v, want its own notice with one failure", tn)
	}
	if _, ok := notices["quiet"]; ok {
		t.Errorf("a webhook without notify_on_failure was notified")
	}
	// Notices are kept in history under the reserved webhook.
	page, err := e.List(Query{Webhook: NotifyWebhook})
	if err != nil || len(page.Deliveries) != 2 {
		t.Fatalf("notice history = %d deliveries (err %v), want 2", len(page.Deliveries), err)
	}
	for _, d := range page.Deliveries {
		waitStatus(t, e, d.ID, StatusSuccess)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
