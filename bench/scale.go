package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Helpers shared by the depth, precision and batching modes, which fill
// the daemon's queue in bulk and read its memory and disk at rest.

const (
	// fillClients is how many workers post arrays when a mode fills the
	// queue: enough to keep the daemon's group commit busy without
	// holding dozens of half-megabyte bodies in its memory at once.
	fillClients = 8
	// perRequest is how many events one POST carries when a mode fills
	// the queue (the daemon takes up to limits.max_events, 1000, and
	// 500 events of 1 KiB stay under limits.max_body, 1 MiB).
	perRequest = 500
	// idlePeriod is how long a quiet daemon is left alone before a
	// forced GC: Badger keeps up to 8 table-builder buffers (tens of MiB
	// after a bulk load) in a pool that frees one every 2 s once none is
	// taken, so 20 s empties it.
	idlePeriod = 20 * time.Second
	// scavengeWait is how long after the forced GC the memory is read,
	// so the Go runtime can return the pages it freed to the kernel.
	scavengeWait = 10 * time.Second
)

// eventArray is a POST /v1/events body: an array of count events named
// event whose data is eventData for n = first, first+1, … sent at t.
func eventArray(event string, first int64, count, size int, t time.Time) []byte {
	b := make([]byte, 0, count*(size+len(event)+24)+2)
	b = append(b, '[')
	for i := range count {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"event":`...)
		b = strconv.AppendQuote(b, event)
		b = append(b, `,"data":`...)
		b = append(b, eventData(first+int64(i), t, size)...)
		b = append(b, '}')
	}
	return append(b, ']')
}

// answer is the daemon's answer for one accepted event.
type answer struct {
	ID         string `json:"id"`
	Deliveries []struct {
		ID      string    `json:"id"`
		Webhook string    `json:"webhook"`
		DueAt   time.Time `json:"due_at"`
	} `json:"deliveries"`
}

// fill posts total events named event to the daemon, perRequest to an
// array, from fillClients workers, numbering their data from first, and
// logs progress as what. When got is set it is called with each array's
// first n and the daemon's decoded answers (one per event, in order),
// from several goroutines at once. The returned stats count events, not
// requests, in ok; errs counts failed requests.
func (b *bench) fill(ctx context.Context, d *daemon, what, event string, first, total int64, got func(first int64, answers []answer)) (loadStats, error) {
	requests := (total + perRequest - 1) / perRequest
	var acked atomic.Int64
	progressCtx, stopProgress := context.WithCancel(ctx)
	go b.progress(progressCtx, what, acked.Load)
	st := closedLoop(ctx, fillClients, time.Now().Add(24*time.Hour), requests, func(k int64) error {
		from := (k - 1) * perRequest
		count := min(perRequest, total-from)
		body := eventArray(event, first+from, int(count), b.opts.size, time.Now())
		ans, err := postRead(ctx, d.client, "http://sidehook/v1/events", body, http.StatusAccepted)
		if err != nil {
			return err
		}
		if got != nil {
			var answers []answer
			if err := json.Unmarshal(ans, &answers); err != nil {
				return fmt.Errorf("decode answer: %w", err)
			}
			if int64(len(answers)) != count {
				return fmt.Errorf("answer has %d elements for %d events", len(answers), count)
			}
			got(first+from, answers)
		}
		acked.Add(count)
		return nil
	})
	stopProgress()
	st.ok = acked.Load()
	if st.errs > 0 {
		b.logf("%s: %d requests failed, last: %v", what, st.errs, st.lastErr)
	}
	b.logf("%s %d events in %v (%.0f events/s)", what, st.ok, st.elapsed.Round(time.Millisecond), rate(st.ok, st.elapsed))
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if st.ok < total {
		return st, fmt.Errorf("%s: only %d of %d events accepted (last error: %v; log: %s)", what, st.ok, total, st.lastErr, d.log)
	}
	return st, nil
}

// settle waits until pid has used under 2% of a core for two seconds in a
// row (the store's flushes and compactions done), at most two minutes, and
// returns how long it waited.
func (b *bench) settle(ctx context.Context, pid int) (time.Duration, error) {
	const (
		tick    = time.Second
		quiet   = tick / 50
		maxWait = 2 * time.Minute
	)
	start := time.Now()
	prev, err := readProc(pid, b.clkTck)
	if err != nil {
		return 0, err
	}
	calm := 0
	for calm < 2 && time.Since(start) < maxWait {
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(tick):
		}
		cur, err := readProc(pid, b.clkTck)
		if err != nil {
			return time.Since(start), err
		}
		if cur.cpu-prev.cpu < quiet {
			calm++
		} else {
			calm = 0
		}
		prev = cur
	}
	waited := time.Since(start)
	if calm < 2 {
		b.logf("pid %d still busy after %v; measuring anyway", pid, waited.Round(time.Second))
	}
	return waited, nil
}

// restingMemory settles the daemon and reads its memory (settled), then
// leaves it idle for idlePeriod, forces a GC through its profiler, waits
// scavengeWait and reads it again (idle): what an idle daemon comes down
// to. Without the forced GC an idle Go process keeps the garbage of its
// last burst until the runtime's two-minute periodic GC.
func (b *bench) restingMemory(ctx context.Context, d *daemon) (settled, idle procUsage, err error) {
	waited, err := b.settle(ctx, d.pid())
	if err != nil {
		return settled, idle, err
	}
	settled, err = readProc(d.pid(), b.clkTck)
	if err != nil {
		return settled, idle, err
	}
	if err := sleep(ctx, idlePeriod); err != nil {
		return settled, idle, err
	}
	if err := d.forceGC(ctx); err != nil {
		return settled, idle, err
	}
	if err := sleep(ctx, scavengeWait); err != nil {
		return settled, idle, err
	}
	idle, err = readProc(d.pid(), b.clkTck)
	if err != nil {
		return settled, idle, err
	}
	b.logf("settled in %v: anonymous RSS %.0f MiB; after %v idle, a GC and %v, %.0f MiB (VmHWM %.0f MiB)",
		waited.Round(time.Second), mib(settled.anon), idlePeriod, scavengeWait, mib(idle.anon), mib(idle.hwm))
	return settled, idle, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// forceGC makes the daemon run a garbage collection: the heap profile
// does one first when asked with gc=1 (startDaemon turns pprof on).
func (d *daemon) forceGC(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidehook/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("force a GC: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("force a GC: GET /debug/pprof/heap: status %d", resp.StatusCode)
	}
	return nil
}

// diskUsage returns the bytes the files under dir take on disk (allocated
// blocks, as du counts them; Badger's files are preallocated and sparse).
func diskUsage(dir string) (int64, error) {
	u, err := storeDiskUsage(dir)
	return u.alloc, err
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuMeter measures how much CPU the rest of the machine used over an
// interval: everything /proc/stat counts as busy (steal included) minus
// the daemon's and this program's own time. On a shared machine it tells
// how quiet a figure's run was.
type cpuMeter struct {
	clkTck              int64
	pid                 int
	start               time.Time
	busy, daemon, local time.Duration
}

// startCPUMeter starts measuring, with pid as the daemon.
func (b *bench) startCPUMeter(pid int) (*cpuMeter, error) {
	m := &cpuMeter{clkTck: b.clkTck, pid: pid}
	var err error
	m.busy, m.daemon, m.local, err = m.read()
	m.start = time.Now()
	return m, err
}

// others returns the cores the rest of the machine kept busy on average
// since the meter started.
func (m *cpuMeter) others() (float64, error) {
	busy, daemon, local, err := m.read()
	if err != nil {
		return 0, err
	}
	rest := (busy - m.busy) - (daemon - m.daemon) - (local - m.local)
	return max(0, rest.Seconds()/time.Since(m.start).Seconds()), nil
}

// read returns the machine's busy CPU time, the daemon's and this
// program's.
func (m *cpuMeter) read() (busy, daemon, local time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, 0, fmt.Errorf("parse /proc/stat: %q", line)
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal: all but idle and
	// iowait are busy (guest time is already in user).
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("parse /proc/stat: %q: %w", line, err)
		}
		ticks += n
	}
	busy = time.Duration(ticks * int64(time.Second) / m.clkTck)
	d, err := readProc(m.pid, m.clkTck)
	if err != nil {
		return 0, 0, 0, err
	}
	self, err := readProc(os.Getpid(), m.clkTck)
	if err != nil {
		return 0, 0, 0, err
	}
	return busy, d.cpu, self.cpu, nil
}
