package delivery

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

func TestRetry_SucceedsOnThirdAttempt(t *testing.T) {
	rc := newReplyingReceiver(t, func(n int, w http.ResponseWriter) int {
		w.Header().Set("X-Attempt", fmt.Sprint(n))
		return []int{500, 503, 200}[min(n, 3)-1]
	}, func(n int) string { return fmt.Sprintf(`{"attempt":%d}`, n) })
	wh := hook("flaky", rc.URL, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"x":1}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if d.AttemptCount != 3 || len(d.Attempts) != 3 {
		t.Fatalf("attempts = %d (%d recorded), want 3", d.AttemptCount, len(d.Attempts))
	}
	wantErr := []string{"HTTP 500", "HTTP 503", ""}
	for i, a := range d.Attempts {
		if a.N != i+1 || a.Manual {
			t.Errorf("attempt %d: n=%d manual=%v, want n=%d automatic", i, a.N, a.Manual, i+1)
		}
		if a.Response == nil || a.Response.Status != []int{500, 503, 200}[i] {
			t.Errorf("attempt %d: response %+v, want status %d", i+1, a.Response, []int{500, 503, 200}[i])
			continue
		}
		if a.Response.Headers["X-Attempt"] != fmt.Sprint(i+1) || a.Response.Body != fmt.Sprintf(`{"attempt":%d}`, i+1) {
			t.Errorf("attempt %d: response headers %v body %q, want the receiver's answer", i+1, a.Response.Headers, a.Response.Body)
		}
		if wantErr[i] == "" && a.Error != "" || !strings.Contains(a.Error, wantErr[i]) {
			t.Errorf("attempt %d: error %q, want %q", i+1, a.Error, wantErr[i])
		}
		if i < 2 && a.RetryAt == nil {
			t.Errorf("attempt %d: no retry_at recorded", i+1)
		}
		if i > 0 && a.At.Before(d.Attempts[i-1].At) {
			t.Errorf("attempt %d at %v before attempt %d at %v", i+1, a.At, i, d.Attempts[i-1].At)
		}
		if a.Request == nil || a.Request.Body != `{"x":1}` {
			t.Errorf("attempt %d: request %+v, want the body sent", i+1, a.Request)
		}
	}
	if d.LastStatusCode != 200 || d.LastError != "" || d.FinishedAt == nil {
		t.Errorf("summary: last code %d error %q finished %v, want 200, no error, a finish time", d.LastStatusCode, d.LastError, d.FinishedAt)
	}
	if c := e.Counts("flaky"); c != (Counts{Success: 1}) {
		t.Errorf("counts = %+v, want one success", c)
	}
}

func TestRetry_AttemptsExhausted(t *testing.T) {
	rc := newReceiver(t, statuses(500))
	wh := hook("down", rc.URL, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	if c := e.Counts("down"); c != (Counts{InQueue: 1}) {
		t.Errorf("counts after ingest = %+v, want one in queue", c)
	}
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	if d.AttemptCount != 3 {
		t.Errorf("attempts = %d, want 3", d.AttemptCount)
	}
	for i, a := range d.Attempts {
		if a.Response == nil || a.Response.Status != 500 || !strings.Contains(a.Error, "500") {
			t.Errorf("attempt %d: response %+v error %q, want 500", i+1, a.Response, a.Error)
		}
	}
	if last := d.Attempts[len(d.Attempts)-1]; last.RetryAt != nil {
		t.Errorf("last attempt has retry_at %v, want none", last.RetryAt)
	}
	if d.LastStatusCode != 500 {
		t.Errorf("last status code = %d, want 500", d.LastStatusCode)
	}
	if c := e.Counts("down"); c != (Counts{Failure: 1}) {
		t.Errorf("counts = %+v, want one failure", c)
	}
	if q := e.QueueDepth(); q != 0 {
		t.Errorf("queue depth = %d, want 0", q)
	}
	time.Sleep(150 * time.Millisecond)
	if n := rc.count(); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
}

func TestRetry_TimeoutIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		if n == 1 {
			time.Sleep(700 * time.Millisecond)
		}
		return http.StatusOK
	})
	wh := hook("slow", rc.URL, "Lead_Post_Create")
	wh.Timeout = 200 * time.Millisecond
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if len(d.Attempts) != 2 {
		t.Fatalf("attempts = %d, want 2 (a timeout, then a success)", len(d.Attempts))
	}
	a := d.Attempts[0]
	if a.Response != nil || !strings.Contains(strings.ToLower(a.Error), "timeout") {
		t.Errorf("first attempt: response %+v error %q, want no response and an error mentioning timeout", a.Response, a.Error)
	}
	if a.DurationMS < 150 {
		t.Errorf("first attempt lasted %.1f ms, want about the 200ms timeout", a.DurationMS)
	}
}

func TestRetry_ConnectionRefused(t *testing.T) {
	wh := hook("nobody", closedURL(t), "Lead_Post_Create")
	wh.Retry.Attempts = 2
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	if len(d.Attempts) != 2 {
		t.Fatalf("attempts = %d, want 2", len(d.Attempts))
	}
	for i, a := range d.Attempts {
		if a.Response != nil || !strings.Contains(a.Error, "refused") {
			t.Errorf("attempt %d: response %+v error %q, want a connection refused error", i+1, a.Response, a.Error)
		}
		if a.Request == nil || !strings.HasPrefix(a.Request.URL, wh.URL+"?") {
			t.Errorf("attempt %d: request %+v, want the URL recorded", i+1, a.Request)
		}
	}
	if d.LastStatusCode != 0 || d.LastError == "" {
		t.Errorf("summary: code %d error %q, want 0 and the error", d.LastStatusCode, d.LastError)
	}
}

func TestRetry_RetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	wh := hook("limited", rc.URL, "Lead_Post_Create")
	wh.Retry.Backoff = time.Millisecond
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	got := rc.wait(t, 2)
	if gap := got[1].at.Sub(got[0].at); gap < 900*time.Millisecond {
		t.Errorf("second attempt came %v after the 429, want >= ~1s (Retry-After: 1)", gap)
	}
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if a := d.Attempts[0]; a.RetryAt == nil || a.RetryAt.Sub(a.At) < 900*time.Millisecond {
		t.Errorf("first attempt retry_at %v (at %v), want about 1s later", a.RetryAt, a.At)
	}
}

func TestRetry_SuccessStatusNarrowed(t *testing.T) {
	rc := newReceiver(t, statuses(201))
	wh := hook("strict", rc.URL, "Lead_Post_Create")
	wh.SuccessStatus = []int{200}
	wh.Retry.Attempts = 2
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	if len(d.Attempts) != 2 {
		t.Fatalf("attempts = %d, want 2", len(d.Attempts))
	}
	if a := d.Attempts[0]; a.Response == nil || a.Response.Status != 201 || !strings.Contains(a.Error, "201") {
		t.Errorf("attempt: response %+v error %q, want 201 counted as a failure", a.Response, a.Error)
	}
}

func TestRetryDelay_DoublesWithJitterAndCap(t *testing.T) {
	r := config.Retry{Attempts: 10, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for tries := 1; tries <= 8; tries++ {
		base := min(r.Backoff<<(tries-1), r.MaxBackoff)
		lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := retryDelay(r, tries, 0)
			if d < lo || d > hi {
				t.Fatalf("retryDelay(tries=%d) = %v, want within [%v, %v]", tries, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("retryDelay(tries=%d) gave one value over 200 calls, want jitter", tries)
		}
	}
	if d := retryDelay(r, 1, time.Hour); d != time.Hour {
		t.Errorf("with Retry-After 1h: %v, want 1h (the longer wait wins)", d)
	}
	if d := retryDelay(r, 1, time.Millisecond); d < 80*time.Millisecond {
		t.Errorf("with a short Retry-After: %v, want the backoff (>= 80ms)", d)
	}
	if d := retryDelay(r, 1, 48*time.Hour); d != 24*time.Hour {
		t.Errorf("with Retry-After 48h: %v, want it capped at 24h", d)
	}
	huge := config.Retry{Attempts: 100, Backoff: time.Hour, MaxBackoff: 1 << 62}
	if d := retryDelay(huge, 90, 0); d <= 0 {
		t.Errorf("many tries with a huge cap: %v, want a positive wait", d)
	}
}

func TestRetry_ManualAfterFailure(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		if n <= 3 {
			return 500
		}
		return 200
	})
	wh := hook("fixed", rc.URL, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"m":1}`)
	id := acc.Deliveries[0].ID
	waitStatus(t, e, id, StatusFailure)
	if c := e.Counts("fixed"); c != (Counts{Failure: 1}) {
		t.Fatalf("counts = %+v, want one failure", c)
	}

	d, err := e.Retry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusSuccess || d.AttemptCount != 4 || len(d.Attempts) != 4 {
		t.Fatalf("after retry: %s with %d attempts, want success with 4", d.Status, d.AttemptCount)
	}
	last := d.Attempts[3]
	if !last.Manual || last.N != 4 || last.Response == nil || last.Response.Status != 200 {
		t.Errorf("manual attempt = %+v, want n=4 manual answered 200", last)
	}
	for _, a := range d.Attempts[:3] {
		if a.Manual {
			t.Errorf("automatic attempt %d marked manual", a.N)
		}
	}
	if c := e.Counts("fixed"); c != (Counts{Success: 1}) {
		t.Errorf("counts = %+v, want one success, no failure", c)
	}
	got := rc.wait(t, 4)
	if got[3].body != `{"m":1}` {
		t.Errorf("retried body = %q, want the event data", got[3].body)
	}
	if _, err := e.Retry(context.Background(), "dlv_00000000000000000000000000"); err != ErrNotFound {
		t.Errorf("Retry(unknown) = %v, want ErrNotFound", err)
	}
}

func TestRetry_ManualDoesNotRearmAutomaticRetries(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, statuses(500))
	wh := hook("broken", rc.URL, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{}`)
	id := acc.Deliveries[0].ID
	waitStatus(t, e, id, StatusFailure)

	d, err := e.Retry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusFailure || d.AttemptCount != 4 {
		t.Fatalf("after manual retry: %s with %d attempts, want failure with 4", d.Status, d.AttemptCount)
	}
	if a := d.Attempts[3]; !a.Manual || a.RetryAt != nil {
		t.Errorf("manual attempt = %+v, want manual with no retry_at", a)
	}
	if q := e.QueueDepth(); q != 0 {
		t.Errorf("queue depth = %d, want 0", q)
	}
	if c := e.Counts("broken"); c != (Counts{Failure: 1}) {
		t.Errorf("counts = %+v, want one failure", c)
	}
	// Several backoffs later nothing else has been sent.
	time.Sleep(300 * time.Millisecond)
	if n := rc.count(); n != 4 {
		t.Errorf("receiver got %d requests, want 4 (3 automatic + 1 manual)", n)
	}
	if d := mustGet(t, e, id); d.AttemptCount != 4 || d.Status != StatusFailure {
		t.Errorf("later: %s with %d attempts, want failure with 4", d.Status, d.AttemptCount)
	}
}

// A scheduled attempt records its outcome on the record as it stands when
// it ends, not as it was read: a manual retry made while the attempt was
// in flight keeps its place in the history.
func TestRetry_ManualDuringAScheduledAttemptKeepsBoth(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		if n == 1 {
			<-release // the scheduled attempt waits here
			return 200
		}
		return 500 // the manual one fails at once
	})
	wh := hook("slow", rc.URL, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	id := ingest(t, e, "Lead Creation", "", `{}`).Deliveries[0].ID
	for rc.count() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := e.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	close(release)
	d := waitStatus(t, e, id, StatusSuccess)
	if d.AttemptCount != 2 || len(d.Attempts) != 2 {
		t.Fatalf("delivery has %d attempts (%d listed), want the manual one and the scheduled one", d.AttemptCount, len(d.Attempts))
	}
	if a := d.Attempts[0]; !a.Manual || a.N != 1 || a.Response == nil || a.Response.Status != 500 {
		t.Errorf("attempt 1 = %+v, want the manual one, answered 500", a)
	}
	if a := d.Attempts[1]; a.Manual || a.N != 2 || a.Response == nil || a.Response.Status != 200 {
		t.Errorf("attempt 2 = %+v, want the scheduled one, answered 200", a)
	}
}
