package delivery

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

// startEngine opens and starts an engine on dir and returns it with a
// function that closes it once; the test may call it to restart on the
// same directory, and cleanup calls it otherwise.
func startEngine(t *testing.T, dir string, cfg *config.Config) (*Engine, func(ctx context.Context)) {
	t.Helper()
	e, err := Open(cfg, Options{Dir: dir, UserAgent: "sidehook/test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeFn := func(ctx context.Context) {
		once.Do(func() {
			if err := e.Close(ctx); err != nil {
				t.Errorf("close engine: %v", err)
			}
		})
	}
	t.Cleanup(func() { closeFn(context.Background()) })
	return e, closeFn
}

// statuses answers the n-th request with codes[n-1], and the last code
// after that.
func statuses(codes ...int) func(n int, w http.ResponseWriter) int {
	return func(n int, w http.ResponseWriter) int {
		if n <= len(codes) {
			return codes[n-1]
		}
		return codes[len(codes)-1]
	}
}

// closedURL returns a URL on a port nothing listens on: it was bound and
// released, so a connection to it is refused.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

// count returns how many requests the receiver has seen so far, answered
// or not.
func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// requests returns a copy of the requests seen so far.
func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// ingestAll posts several events in one Ingest call.
func ingestAll(t *testing.T, e *Engine, evs ...Incoming) []Accepted {
	t.Helper()
	acc, err := e.Ingest(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(acc) != len(evs) {
		t.Fatalf("Ingest answered %d events, want %d", len(acc), len(evs))
	}
	return acc
}

func incoming(t *testing.T, name, key, data string) Incoming {
	return Incoming{Type: lookup(t, name), Key: key, Data: json.RawMessage(data)}
}

// waitFinished polls until the delivery leaves the queue.
func waitFinished(t *testing.T, e *Engine, id string) Delivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := e.Get(id)
		if err == nil && d.Status != StatusInQueue {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s still %q after 20s (err %v)", id, d.Status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAttempts polls until the delivery has at least n attempts.
func waitAttempts(t *testing.T, e *Engine, id string, n int) Delivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := e.Get(id)
		if err == nil && d.AttemptCount >= n {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s has %d attempts after 20s, want %d (err %v)", id, d.AttemptCount, n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustGet reads a delivery or fails the test.
func mustGet(t *testing.T, e *Engine, id string) Delivery {
	t.Helper()
	d, err := e.Get(id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return d
}

// ids returns the ids of a page's deliveries.
func ids(ds []Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func sameIDs(got, want []string) bool {
	return strings.Join(got, ",") == strings.Join(want, ",")
}

// signal sends on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// await waits for ch or fails after d.
func await(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

func retryOf(attempts int, backoff time.Duration) config.Retry {
	return config.Retry{Attempts: attempts, Backoff: backoff, MaxBackoff: 10 * backoff}
}
