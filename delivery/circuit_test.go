package delivery

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

func TestCircuit_PausesAfterFailuresAndResumes(t *testing.T) {
	var healthy atomic.Bool
	rc := newReceiver(t, func(int, http.ResponseWriter) int {
		if healthy.Load() {
			return 200
		}
		return 500
	})
	wh := hook("flaky", rc.URL, "Lead_Post_Create")
	wh.Concurrency = 1
	wh.Retry = config.Retry{Attempts: 1000, Backoff: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	wh.Circuit = &config.Circuit{Failures: 3, Probe: 200 * time.Millisecond}
	e := openEngine(t, t.TempDir(), testConfig(wh))

	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, ingest(t, e, "Lead Creation", "", `{"n":1}`).Deliveries[0].ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Circuit(wh).State != "open" {
		if time.Now().After(deadline) {
			t.Fatalf("circuit = %+v, want open after 3 failures", e.Circuit(wh))
		}
		time.Sleep(5 * time.Millisecond)
	}
	rc.mu.Lock()
	atOpen := len(rc.reqs)
	rc.mu.Unlock()
	time.Sleep(time.Second) // open: only probes go out (200ms, 400ms, ...)
	rc.mu.Lock()
	during := len(rc.reqs) - atOpen
	rc.mu.Unlock()
	if during > 3 {
		t.Errorf("%d requests in the second after the circuit opened, want only probes (at most 3)", during)
	}
	if d, _ := e.Get(ids[9]); d.Status != StatusInQueue {
		t.Errorf("queued delivery status = %s while paused, want in_queue", d.Status)
	}
	healthy.Store(true)
	for _, id := range ids {
		waitStatus(t, e, id, StatusSuccess)
	}
	if c := e.Circuit(wh); c.State != "closed" || c.Failures != 0 {
		t.Errorf("circuit after the receiver healed = %+v, want closed", c)
	}
}

func TestCircuit_GoneOpensAtOnce(t *testing.T) {
	rc := newReceiver(t, func(n int, _ http.ResponseWriter) int {
		if n == 1 {
			return http.StatusGone
		}
		return 200
	})
	wh := hook("gone", rc.URL, "Lead_Post_Create")
	wh.Circuit = &config.Circuit{Failures: 100, Probe: time.Hour}
	e := openEngine(t, t.TempDir(), testConfig(wh))
	id := ingest(t, e, "Lead Creation", "", `{}`).Deliveries[0].ID
	rc.wait(t, 1)
	deadline := time.Now().Add(5 * time.Second)
	for e.Circuit(wh).State != "open" {
		if time.Now().After(deadline) {
			t.Fatalf("circuit = %+v after a 410, want open", e.Circuit(wh))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d, _ := e.Get(id); d.Status != StatusInQueue || d.AttemptCount != 1 {
		t.Errorf("delivery = %s after %d attempts, want in_queue after 1 (paused, probe in an hour)", d.Status, d.AttemptCount)
	}
	// A manual retry that succeeds closes the circuit.
	if _, err := e.Retry(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if c := e.Circuit(wh); c.State != "closed" {
		t.Errorf("circuit after a successful manual retry = %+v, want closed", c)
	}
}

// The attempts in flight when the circuit opens are not probes: their
// failures leave the probe wait as it is. A manual retry that succeeds
// closes the circuit and the queue goes out at once, without waiting for
// the next probe.
func TestCircuit_InFlightFailuresAndManualRetry(t *testing.T) {
	var healthy atomic.Bool
	release := make(chan struct{})
	rc := newReceiver(t, func(int, http.ResponseWriter) int {
		if healthy.Load() {
			return 200
		}
		<-release // hold every attempt until all slots are busy
		return 500
	})
	wh := hook("busy", rc.URL, "Lead_Post_Create")
	wh.Concurrency = 8
	wh.Retry = config.Retry{Attempts: 1000, Backoff: time.Hour, MaxBackoff: time.Hour}
	wh.Circuit = &config.Circuit{Failures: 2, Probe: 10 * time.Minute}
	e := openEngine(t, t.TempDir(), testConfig(wh))
	var ids []string
	for range 20 {
		ids = append(ids, ingest(t, e, "Lead Creation", "", `{}`).Deliveries[0].ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc.mu.Lock()
		n := len(rc.reqs)
		rc.mu.Unlock()
		if n == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts in flight, want 8", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	// All eight fail; the second opens the circuit.
	deadline = time.Now().Add(10 * time.Second)
	for e.Counts("busy").InQueue != 20 || e.Circuit(wh).State != "open" || countAttempts(t, e, ids) < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("circuit %+v, want open after the 8 attempts failed", e.Circuit(wh))
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := e.Circuit(wh)
	if wait := c.ProbeAt.Sub(*c.Since); wait > 10*time.Minute+time.Second {
		t.Errorf("first probe %v after the circuit opened, want the configured 10m", wait)
	}

	healthy.Store(true)
	var untried []string
	for _, id := range ids {
		if d, _ := e.Get(id); d.AttemptCount == 0 {
			untried = append(untried, id)
		}
	}
	if len(untried) < 10 {
		t.Fatalf("%d of 20 deliveries never tried, want most: the open circuit holds them", len(untried))
	}
	if _, err := e.Retry(t.Context(), untried[0]); err != nil {
		t.Fatal(err)
	}
	// The ones never tried go out now; the eight that failed keep their
	// hour of backoff.
	for _, id := range untried {
		waitStatus(t, e, id, StatusSuccess)
	}
	if c := e.Circuit(wh); c.State != "closed" {
		t.Errorf("circuit after a successful manual retry = %+v, want closed", c)
	}
}

func countAttempts(t *testing.T, e *Engine, ids []string) int {
	t.Helper()
	n := 0
	for _, id := range ids {
		d, err := e.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		n += d.AttemptCount
	}
	return n
}
