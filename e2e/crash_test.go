package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ack is one event the daemon acknowledged with 202.
type ack struct {
	data     []byte
	delivery string
}

// load posts events with consecutive "n" from several goroutines until
// stopped, and records which ones were acknowledged.
type load struct {
	d    *daemon
	next atomic.Int64
	errs atomic.Int64 // posts that got no answer (daemon down or killed mid-request)

	mu       sync.Mutex
	acked    map[int64]ack
	unacked  []int64     // posted but not acknowledged: may or may not arrive
	statuses map[int]int // answers other than 202, by status
	problems []string    // 202 answers that break the contract

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startLoad starts posters goroutines posting to d.
func startLoad(d *daemon, posters int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{
		d:        d,
		acked:    make(map[int64]ack),
		statuses: make(map[int]int),
		cancel:   cancel,
	}
	for range posters {
		l.wg.Go(func() { l.post(ctx) })
	}
	return l
}

// stop stops the posters and waits for them.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) post(ctx context.Context) {
	for ctx.Err() == nil {
		n := l.next.Add(1)
		data := eventData(n)
		status, body, err := l.d.post(ctx, eventBody("", data))
		if err != nil || status != http.StatusAccepted {
			l.mu.Lock()
			l.unacked = append(l.unacked, n)
			if err == nil {
				l.statuses[status]++
			}
			l.mu.Unlock()
			if err != nil {
				l.errs.Add(1)
			}
			// The daemon is down or restarting: do not spin.
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		var a accepted
		err = json.Unmarshal(body, &a)
		l.mu.Lock()
		switch {
		case err != nil:
			l.problemLocked("202 body for n=%d is not JSON: %v: %.200s", n, err, body)
		case a.ID == "" || len(a.Deliveries) != 1 || a.Deliveries[0].Webhook != "sink" || a.Deliveries[0].ID == "":
			l.problemLocked("202 body for n=%d does not name one delivery to sink: %.200s", n, body)
		}
		var dlv string
		if len(a.Deliveries) > 0 {
			dlv = a.Deliveries[0].ID
		}
		l.acked[n] = ack{data: data, delivery: dlv}
		l.mu.Unlock()
	}
}

func (l *load) problemLocked(format string, args ...any) {
	if len(l.problems) < 20 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

// ackedCount returns how many events have been acknowledged so far.
func (l *load) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// randBetween returns a random duration in [lo, hi).
func randBetween(lo, hi time.Duration) time.Duration {
	return lo + rand.N(hi-lo)
}

// TestCrash_KillNine_LosesNothingAcknowledged posts a steady load while the
// daemon is killed with SIGKILL again and again — while deliveries succeed,
// while they wait for a retry after 503s, while attempts are in flight to a
// slow receiver, and now and then while it is still starting up — and
// restarted on the same data directory. Every event answered 202 must reach
// the receiver at least once, byte for byte, and nothing may be left in the
// queue or end as failure.
func TestCrash_KillNine_LosesNothingAcknowledged(t *testing.T) {
	requireBinary(t)
	kills := envInt(t, "SIDEHOOK_CRASH_KILLS", 5)

	rcv := newReceiver(t, "sink")
	d := newDaemon(t, hookConfig{url: rcv.srv.URL, concurrency: 16, attempts: 100})
	d.start()
	l := startLoad(d, 8)

	// Each interval runs in one receiver mode and ends with a kill; the
	// restarted daemon meets the same mode until the next interval.
	phases := []receiverMode{modeOK, mode503, modeSlow}
	killedIn := make(map[receiverMode]int)
	startupKills := 0
	for i := range kills {
		mode := phases[i%len(phases)]
		rcv.setMode(mode)
		time.Sleep(randBetween(150*time.Millisecond, 600*time.Millisecond))
		inFlight := rcv.inFlight.Load()
		d.kill()
		killedIn[mode]++
		t.Logf("kill %d/%d: receiver %s, %d attempts in flight, %d events acknowledged so far",
			i+1, kills, mode, inFlight, l.ackedCount())
		if i%4 == 3 {
			// Also crash it while it opens the store and recovers.
			d.spawn()
			time.Sleep(rand.N(50 * time.Millisecond))
			d.kill()
			startupKills++
			t.Logf("kill %d/%d: and once more while starting up", i+1, kills)
		}
		d.start()
	}
	// Keep posting a little after the last restart, then stop.
	time.Sleep(200 * time.Millisecond)
	l.stop()
	rcv.setMode(modeOK)

	if err := d.waitDrained(60 * time.Second); err != nil {
		t.Errorf("after the load: %v", err)
	}
	ctx := t.Context()
	if failed, err := d.deliveries(ctx, "failure", 10); err != nil {
		t.Errorf("list failed deliveries: %v", err)
	} else if len(failed) > 0 {
		t.Errorf("%d+ deliveries ended as failure (retry budget is 100 attempts), first: %s", len(failed), failed[0].ID)
	}

	l.mu.Lock()
	acked, unacked, problems, statuses := l.acked, l.unacked, l.problems, l.statuses
	l.mu.Unlock()
	got := rcv.snapshot()

	if len(acked) == 0 {
		t.Fatal("no event was acknowledged with 202: the load never ran")
	}
	for _, p := range problems {
		t.Errorf("ingest: %s", p)
	}
	for status, count := range statuses {
		// 503 means "not writable (yet)": the poster may try again. Any
		// other answer to a valid event is a bug.
		if status != http.StatusServiceUnavailable {
			t.Errorf("ingest: %d valid events answered %d, want 202 (or 503)", count, status)
		}
	}
	for _, p := range got.problems {
		t.Errorf("receiver: %s", p)
	}

	var missing []int64
	var altered []int64
	for n, a := range acked {
		if got.got[n] == 0 {
			missing = append(missing, n)
			continue
		}
		if !bytes.Equal(got.first[n], a.data) {
			altered = append(altered, n)
		}
	}
	slices.Sort(missing)
	slices.Sort(altered)
	if len(missing) > 0 {
		var lines []string
		for i, n := range missing {
			if i == 50 {
				lines = append(lines, fmt.Sprintf("… and %d more", len(missing)-50))
				break
			}
			lines = append(lines, fmt.Sprintf("n=%d delivery %s%s", n, acked[n].delivery, d.describe(ctx, acked[n].delivery, i < 5)))
		}
		t.Errorf("LOST: %d of %d acknowledged events never reached the receiver:\n%s",
			len(missing), len(acked), strings.Join(lines, "\n"))
	}
	if len(altered) > 0 {
		n := altered[0]
		t.Errorf("%d events reached the receiver with a body that differs from the posted data; n=%d:\n got %s\nwant %s",
			len(altered), n, got.first[n], acked[n].data)
	}

	unackedArrived := 0
	for _, n := range unacked {
		if got.got[n] > 0 {
			unackedArrived++
		}
	}
	dups := got.total - len(got.got)
	t.Logf("kills: %d (receiver ok %d, 503 %d, slow %d) and %d more during startup; daemon starts: %d",
		kills, killedIn[modeOK], killedIn[mode503], killedIn[modeSlow], startupKills, d.starts)
	t.Logf("events acknowledged: %d, lost: %d; posts not acknowledged: %d (no answer %d, statuses %v), of which delivered anyway: %d",
		len(acked), len(missing), len(unacked), l.errs.Load(), statuses, unackedArrived)
	t.Logf("deliveries received (200): %d for %d distinct events, duplicates: %d (%.2f%%); answered 503: %d; abandoned by sender: %d",
		got.total, len(got.got), dups, 100*float64(dups)/float64(max(len(got.got), 1)), rcv.rejected.Load(), rcv.abandoned.Load())

	if code := d.stop(10 * time.Second); code != 0 {
		t.Errorf("SIGTERM at the end: exit code %d, want 0", code)
	}
}

// describe fetches a delivery's status and attempt count for a failure
// message, when fetch is set.
func (d *daemon) describe(ctx context.Context, id string, fetch bool) string {
	if !fetch || id == "" {
		return ""
	}
	var dl delivery
	if err := d.getJSON(ctx, "/v1/deliveries/"+id, &dl); err != nil {
		return fmt.Sprintf(" (%v)", err)
	}
	return fmt.Sprintf(" (status %s, %d attempts)", dl.Status, len(dl.Attempts))
}

// TestGracefulStop_InFlightAndQueued stops the daemon with SIGTERM while
// attempts are in flight and most deliveries are still queued: it must
// exit 0, and after a restart every event must arrive. The receiver is
// slow (attempts finish during the stop), or hangs (attempts end at the
// webhook's timeout, or are cut short by a second SIGTERM and handed back).
func TestGracefulStop_InFlightAndQueued(t *testing.T) {
	requireBinary(t)
	const events = 100
	tests := []struct {
		name         string
		mode         receiverMode
		timeout      time.Duration // the webhook's per-attempt timeout
		secondSignal bool
	}{
		{name: "slow receiver", mode: modeSlow},
		{name: "hung receiver, attempts time out", mode: modeHang, timeout: 2 * time.Second},
		{name: "hung receiver, second SIGTERM", mode: modeHang, timeout: time.Minute, secondSignal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, "sink")
			rcv.setMode(tt.mode)
			d := newDaemon(t, hookConfig{url: rcv.srv.URL, concurrency: 4, attempts: 100, timeout: tt.timeout})
			d.start()

			ctx := t.Context()
			for n := int64(1); n <= events; n++ {
				status, body, err := d.post(ctx, eventBody("", eventData(n)))
				if err != nil {
					t.Fatalf("post n=%d: %v", n, err)
				}
				if status != http.StatusAccepted {
					t.Fatalf("post n=%d: status %d, want 202: %s", n, status, body)
				}
			}
			// Wait until attempts are in flight, so SIGTERM meets them.
			deadline := time.Now().Add(10 * time.Second)
			for rcv.inFlight.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no delivery attempt reached the receiver within 10s")
				}
				time.Sleep(5 * time.Millisecond)
			}
			inFlight := rcv.inFlight.Load()
			d.sigterm()
			if tt.secondSignal {
				time.Sleep(300 * time.Millisecond)
				d.sigterm()
			}
			if code := d.wait(15 * time.Second); code != 0 {
				t.Errorf("SIGTERM with %d attempts in flight: exit code %d, want 0", inFlight, code)
			}
			before := rcv.snapshot()

			rcv.setMode(modeOK)
			d.start()
			queued, err := d.deliveries(ctx, "in_queue", 200)
			if err != nil {
				t.Fatalf("list queue after restart: %v", err)
			}
			if err := d.waitDrained(30 * time.Second); err != nil {
				t.Fatalf("after restart: %v", err)
			}
			got := rcv.snapshot()
			var missing []int64
			for n := int64(1); n <= events; n++ {
				if got.got[n] == 0 {
					missing = append(missing, n)
				}
			}
			if len(missing) > 0 {
				t.Errorf("LOST: %d of %d events never reached the receiver: %v", len(missing), events, missing)
			}
			for _, p := range got.problems {
				t.Errorf("receiver: %s", p)
			}
			t.Logf("SIGTERM with %d attempts in flight; %d delivered before the stop, %d in queue at restart, %d delivered in all (%d requests)",
				inFlight, len(before.got), len(queued), len(got.got), got.total)

			if code := d.stop(10 * time.Second); code != 0 {
				t.Errorf("final SIGTERM: exit code %d, want 0", code)
			}
		})
	}
}

// TestIdempotency_AcrossRestart posts an event with an idempotency key,
// restarts the daemon (cleanly, and by SIGKILL), and posts the same key
// again: the repeat must get the first answer, byte for byte, and the
// receiver exactly one delivery.
func TestIdempotency_AcrossRestart(t *testing.T) {
	requireBinary(t)
	tests := []struct {
		name        string
		restart     func(d *daemon)
		exactlyOnce bool
	}{
		{"sigterm", func(d *daemon) {
			if code := d.stop(10 * time.Second); code != 0 {
				d.t.Errorf("SIGTERM: exit code %d, want 0", code)
			}
		}, true},
		{"kill-9", func(d *daemon) { d.kill() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, "sink")
			d := newDaemon(t, hookConfig{url: rcv.srv.URL, concurrency: 4, attempts: 10})
			d.start()
			ctx := t.Context()

			first := eventBody("k1", eventData(1))
			status1, body1, err := d.post(ctx, first)
			if err != nil {
				t.Fatalf("first post: %v", err)
			}
			if status1 != http.StatusAccepted {
				t.Fatalf("first post: status %d, want 202: %s", status1, body1)
			}
			if err := d.waitDrained(10 * time.Second); err != nil {
				t.Fatalf("before restart: %v", err)
			}

			tt.restart(d)
			d.start()

			// The same key again, once with the same event and once with
			// other data: a repeat of the key is answered from the first.
			for _, repeat := range [][]byte{first, eventBody("k1", eventData(2))} {
				status2, body2, err := d.post(ctx, repeat)
				if err != nil {
					t.Fatalf("repeat post: %v", err)
				}
				if status2 != status1 || !bytes.Equal(body2, body1) {
					t.Errorf("repeat of key k1 after restart:\n got %d %s\nwant %d %s", status2, body2, status1, body1)
				}
			}
			if err := d.waitDrained(10 * time.Second); err != nil {
				t.Fatalf("after restart: %v", err)
			}
			all, err := d.deliveries(ctx, "", 10)
			if err != nil {
				t.Fatalf("list deliveries: %v", err)
			}
			if len(all) != 1 {
				t.Errorf("deliveries in history: %d, want 1", len(all))
			}
			// After SIGKILL the delivery's success may not have reached the
			// disk, and at-least-once allows sending it again; the repeat
			// must still never add a delivery of its own.
			got := rcv.snapshot()
			if got.got[2] != 0 || got.got[1] == 0 || (tt.exactlyOnce && got.total != 1) {
				t.Errorf("receiver got %d requests (n=1: %d, n=2: %d), want exactly one, for n=1", got.total, got.got[1], got.got[2])
			}
			if code := d.stop(10 * time.Second); code != 0 {
				t.Errorf("final SIGTERM: exit code %d, want 0", code)
			}
		})
	}
}
