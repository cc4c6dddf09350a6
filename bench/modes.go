package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// query is what sidehook appends to the sink webhook's URL; the bare
// client sends it too, so the receiver sees the same requests.
const query = "?entityType=Webhook&entityId=sink&eventType=Lead_Post_Create"

// ingest measures accepted events/s over the Unix socket against the no-op
// server.
func (b *bench) ingest(ctx context.Context) ([]row, error) {
	const mode = "ingest"
	dir, err := b.dir(mode)
	if err != nil {
		return nil, err
	}
	rcv, err := startReceiver(false)
	if err != nil {
		return nil, err
	}
	defer rcv.close()

	// A 1h delay keeps delivery out of the measurement.
	d, err := b.startDaemon(ctx, dir, hookSettings{url: rcv.url, delay: time.Hour, timeout: 10 * time.Second, concurrency: 4})
	if err != nil {
		return nil, err
	}
	profiled := b.profile(ctx, d, b.opts.duration, filepath.Join(dir, "ingest-cpu.pprof"))
	countersBefore := b.storeCounters(ctx, d)
	sh, shUse, err := b.ingestLoad(ctx, d.child, d.client, "http://sidehook/v1/events")
	countersAfter := b.storeCounters(ctx, d)
	profiled()
	if stopErr := d.stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}

	n, err := b.startNoop(ctx, dir)
	if err != nil {
		return nil, err
	}
	base, baseUse, err := b.ingestLoad(ctx, n.child, n.client, "http://noop/v1/events")
	if stopErr := n.stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}

	shP50, shP99, shMax := latencies(sh.lat)
	baseP50, baseP99, baseMax := latencies(base.lat)
	label := fmt.Sprintf("(%d clients, %d B)", b.opts.clients, b.opts.size)
	return append([]row{
		newRow(mode, "accepted "+label, "events/s", rate(sh.ok, sh.elapsed), rate(base.ok, base.elapsed)),
		newRow(mode, "answers other than 202", "count", float64(sh.errs), float64(base.errs)),
		newRow(mode, "202 latency p50", "ms", shP50, baseP50),
		newRow(mode, "202 latency p99", "ms", shP99, baseP99),
		newRow(mode, "202 latency max", "ms", shMax, baseMax),
		newRow(mode, "server CPU", "µs/event", perEventMicros(shUse.cpu, sh.ok), perEventMicros(baseUse.cpu, base.ok)),
		newRow(mode, "server peak RSS", "MiB", mib(shUse.hwm), mib(baseUse.hwm)),
		newRow(mode, "server peak anonymous RSS", "MiB", mib(shUse.anon), mib(baseUse.anon)),
	}, amplificationRows(mode, countersBefore, countersAfter, sh.ok)...), nil
}

// ingestLoad runs the closed-loop ingest load against url and returns the
// server process's CPU time over the load, its peak RSS, and (in anon) its
// peak anonymous RSS during the load.
func (b *bench) ingestLoad(ctx context.Context, server *child, client *http.Client, url string) (loadStats, procUsage, error) {
	before, err := readProc(server.pid(), b.clkTck)
	if err != nil {
		return loadStats{}, procUsage{}, err
	}
	anon := b.watchAnon(server.pid())
	st := closedLoop(ctx, b.opts.clients, time.Now().Add(b.opts.duration), 0, func(n int64) error {
		return post(ctx, client, url, eventRequest(eventData(n, time.Now(), b.opts.size)), http.StatusAccepted)
	})
	peakAnon := anon()
	after, err := readProc(server.pid(), b.clkTck)
	if err != nil {
		return st, procUsage{}, err
	}
	if st.errs > 0 {
		b.logf("%s: %d answers other than 202, last: %v", server.name, st.errs, st.lastErr)
	}
	b.logf("%s: %d events in %v", server.name, st.ok, st.elapsed.Round(time.Millisecond))
	after.cpu -= before.cpu
	after.anon = peakAnon
	return st, after, ctx.Err()
}

// rate is count per second.
func rate(count int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(count) / d.Seconds()
}

// delivery measures how fast sidehook drains a deep queue to a receiver
// against a bare client posting the same bodies.
//
// The queue is filled while the receiver holds every request at a closed
// gate: the webhook's concurrency attempts wait there (with a 1h timeout,
// so none fails) and the rest wait in the store. No attempt fails and
// nothing is retried, so the drain after the gate opens is pure delivery.
func (b *bench) delivery(ctx context.Context) ([]row, error) {
	const mode = "delivery"
	dir, err := b.dir(mode)
	if err != nil {
		return nil, err
	}
	rcv, err := startReceiver(true)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	d, err := b.startDaemon(ctx, dir, hookSettings{url: rcv.url, timeout: time.Hour, concurrency: b.opts.concurrency})
	if err != nil {
		return nil, err
	}
	defer d.stop()

	// Fill.
	fillCtx, stopProgress := context.WithCancel(ctx)
	var acked atomic.Int64
	go b.progress(fillCtx, "queued", func() int64 { return acked.Load() })
	fillAnon := b.watchAnon(d.pid())
	fill := closedLoop(ctx, b.opts.clients, time.Now().Add(24*time.Hour), int64(b.opts.events), func(n int64) error {
		err := post(ctx, d.client, "http://sidehook/v1/events", eventRequest(eventData(n, time.Now(), b.opts.size)), http.StatusAccepted)
		if err == nil {
			acked.Add(1)
		}
		return err
	})
	stopProgress()
	fillPeakAnon := fillAnon()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fill.errs > 0 {
		b.logf("fill: %d answers other than 202, last: %v", fill.errs, fill.lastErr)
	}
	b.logf("queued %d events in %v (%.0f events/s)", fill.ok, fill.elapsed.Round(time.Millisecond), rate(fill.ok, fill.elapsed))
	if fill.ok == 0 {
		return nil, fmt.Errorf("no event was accepted (last error: %v)", fill.lastErr)
	}

	// Where the memory is: the Go heap (an in-memory queue would show
	// here) against the whole process.
	heapFull, err := d.metrics(ctx, "go_memstats_heap_inuse_bytes", "sidehook_queue_depth")
	if err != nil {
		b.logf("metrics: %v", err)
	}

	// Drain.
	rcv.reset(int(fill.ok))
	before, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	drainCtx, stopProgress := context.WithCancel(ctx)
	go b.progress(drainCtx, "delivered", func() int64 { return int64(rcv.distinct()) })
	drainAnon := b.watchAnon(d.pid())
	profiled := b.profile(ctx, d, b.opts.drainProfile, filepath.Join(dir, "delivery-cpu.pprof"))
	countersBefore := b.storeCounters(ctx, d)
	start := time.Now()
	rcv.openGate()
	timeout := max(5*time.Minute, time.Duration(fill.ok)*10*time.Millisecond)
	select {
	case <-rcv.doneCh():
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	elapsed := time.Since(start)
	stopProgress()
	profiled()
	drainPeakAnon := drainAnon()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if got := rcv.distinct(); got < int(fill.ok) {
		return nil, fmt.Errorf("only %d of %d queued events delivered within %v (log: %s)", got, fill.ok, timeout, d.log)
	}
	after, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	countersAfter := b.storeCounters(ctx, d)
	b.logf("sidehook delivered %d events in %v", fill.ok, elapsed.Round(time.Millisecond))
	if err := d.stop(); err != nil {
		return nil, err
	}

	// Baseline: the same bodies from a bare client, same concurrency.
	rcv.reset(int(fill.ok))
	bare, bareUse, err := b.runBare(ctx, dir, "--url", rcv.url+query,
		"--concurrency", strconv.Itoa(b.opts.concurrency), "--count", strconv.FormatInt(fill.ok, 10),
		"--size", strconv.Itoa(b.opts.size))
	if err != nil {
		return nil, err
	}
	bareElapsed := time.Duration(bare.ElapsedNS)
	b.logf("bare client posted %d events in %v (%d errors)", bare.Sent, bareElapsed.Round(time.Millisecond), bare.Errors)

	label := fmt.Sprintf("(%d queued, concurrency %d)", fill.ok, b.opts.concurrency)
	return append([]row{
		newRow(mode, "delivered "+label, "events/s", rate(fill.ok, elapsed), rate(bare.Sent, bareElapsed)),
		newRow(mode, "sender CPU", "µs/event", perEventMicros(after.cpu-before.cpu, fill.ok), perEventMicros(bareUse.cpu, bare.Sent)),
		newRow(mode, "sender peak RSS", "MiB", mib(after.hwm), mib(bareUse.hwm)),
		soloRow(mode, "sidehook RSS, queue full", "MiB", mib(before.rss)),
		soloRow(mode, "sidehook anonymous RSS, queue full", "MiB", mib(before.anon)),
		soloRow(mode, "sidehook peak anonymous RSS, filling", "MiB", mib(fillPeakAnon)),
		soloRow(mode, "sidehook peak anonymous RSS, draining", "MiB", mib(drainPeakAnon)),
		soloRow(mode, "sidehook Go heap in use, queue full", "MiB", mib(int64(heapFull["go_memstats_heap_inuse_bytes"]))),
		soloRow(mode, "sidehook_queue_depth, queue full", "deliveries", heapFull["sidehook_queue_depth"]),
		soloRow(mode, "filling: accepted", "events/s", rate(fill.ok, fill.elapsed)),
	}, amplificationRows(mode, countersBefore, countersAfter, fill.ok)...), nil
}

// logStalls logs when during an open-loop run 202s took over 50ms, one
// line per 100ms window, so stalls can be matched to what the daemon does
// periodically.
func (b *bench) logStalls(st loadStats) {
	const slow = 50 * time.Millisecond
	type window struct {
		n     int
		worst time.Duration
	}
	windows := make(map[time.Duration]*window)
	for i, l := range st.lat {
		if l < slow {
			continue
		}
		k := st.at[i].Truncate(100 * time.Millisecond)
		w := windows[k]
		if w == nil {
			w = &window{}
			windows[k] = w
		}
		w.n++
		w.worst = max(w.worst, l)
	}
	keys := slices.Sorted(maps.Keys(windows))
	for _, k := range keys {
		b.logf("202 stall at +%v: %d sends over %v, worst %v", k, windows[k].n, slow, windows[k].worst.Round(time.Millisecond))
	}
}

// watchAnon samples pid's anonymous RSS every 100ms until the returned
// function is called, which returns the largest sample. VmHWM also counts
// the store's memory-mapped files, which the kernel can drop at will; the
// anonymous part is the memory the process really holds.
func (b *bench) watchAnon(pid int) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if u, err := readProc(pid, b.clkTck); err == nil {
				peak = max(peak, u.anon)
			}
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-result
	}
}

// progress logs count() every 5 seconds until ctx ends.
func (b *bench) progress(ctx context.Context, what string, count func() int64) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.logf("%s %d", what, count())
		}
	}
}

// runBare runs this program as post-bare with args and returns its result,
// CPU time and peak RSS.
func (b *bench) runBare(ctx context.Context, dir string, args ...string) (bareResult, procUsage, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, b.self, append([]string{"post-bare"}, args...)...)
	cmd.Stdout = &out
	c, err := startChild("post-bare", cmd, filepath.Join(dir, "bare.log"))
	if err != nil {
		return bareResult{}, procUsage{}, err
	}
	<-c.done
	if c.err != nil {
		return bareResult{}, procUsage{}, fmt.Errorf("post-bare: %w (log: %s)", c.err, filepath.Join(dir, "bare.log"))
	}
	var res bareResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return res, procUsage{}, fmt.Errorf("decode post-bare result %q: %w", out.Bytes(), err)
	}
	if res.LastError != "" {
		b.logf("post-bare: %d errors, last: %s", res.Errors, res.LastError)
	}
	ps := cmd.ProcessState
	use := procUsage{cpu: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		use.hwm = ru.Maxrss * 1024
	}
	return res, use, nil
}

// e2e offers a steady rate of events and measures the time from each 202
// to the event's arrival at the receiver.
func (b *bench) e2e(ctx context.Context) ([]row, error) {
	const mode = "e2e"
	dir, err := b.dir(mode)
	if err != nil {
		return nil, err
	}
	rcv, err := startReceiver(false)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	d, err := b.startDaemon(ctx, dir, hookSettings{url: rcv.url, timeout: 10 * time.Second, concurrency: b.opts.concurrency})
	if err != nil {
		return nil, err
	}
	defer d.stop()

	// Sample the queue depth through the run.
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var (
		samplesMu sync.Mutex
		samples   []int64
		sampling  sync.WaitGroup
	)
	sampling.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if q, err := d.queueDepth(sampleCtx); err == nil {
				samplesMu.Lock()
				samples = append(samples, q)
				samplesMu.Unlock()
			} else if sampleCtx.Err() == nil {
				b.logf("queue depth: %v", err)
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	})

	total := int64(float64(b.opts.rate)*b.opts.duration.Seconds()) + 1
	acks := make([]atomic.Int64, total+1) // n -> time of its 202, Unix nanoseconds
	before, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	anon := b.watchAnon(d.pid())
	profiled := b.profile(ctx, d, b.opts.duration, filepath.Join(dir, "e2e-cpu.pprof"))
	countersBefore := b.storeCounters(ctx, d)
	st, shed := openLoop(ctx, b.opts.rate, b.opts.duration, 1024, func(n int64) error {
		t0 := time.Now()
		err := post(ctx, d.client, "http://sidehook/v1/events", eventRequest(eventData(n, t0, b.opts.size)), http.StatusAccepted)
		if err == nil && n < int64(len(acks)) {
			acks[n].Store(time.Now().UnixNano())
		}
		return err
	})
	loadEnd := time.Now()
	// Wait for the queue to drain: every accepted event at the receiver.
	for rcv.distinct() < int(st.ok) && time.Since(loadEnd) < 2*time.Minute && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	drain := time.Since(loadEnd)
	countersAfter := b.storeCounters(ctx, d)
	profiled()
	peakAnon := anon()
	after, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	stopSampling()
	sampling.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.stop(); err != nil {
		return nil, err
	}
	if st.errs > 0 || shed > 0 {
		b.logf("sidehook: %d answers other than 202 (last: %v), %d sends shed", st.errs, st.lastErr, shed)
	}
	arrived := rcv.arrivals()
	if len(arrived) < int(st.ok) {
		b.logf("sidehook: only %d of %d accepted events arrived within 2m of the end of the load", len(arrived), st.ok)
	}
	var ackLat []time.Duration
	early := 0
	for n := range acks {
		ack := acks[n].Load()
		at, ok := arrived[int64(n)]
		if ack == 0 || !ok {
			continue
		}
		if at < ack {
			early++ // delivered before the client had read its 202
			at = ack
		}
		ackLat = append(ackLat, time.Duration(at-ack))
	}
	sendLat := rcv.sendLatencies()
	var qStart, qMax, qEnd int64
	if len(samples) > 0 {
		qStart, qEnd = samples[0], samples[len(samples)-1]
		for _, q := range samples {
			qMax = max(qMax, q)
		}
	}

	// Baseline: the same bodies, same rate, straight to the receiver.
	rcv.reset(0)
	bare, bareUse, err := b.runBare(ctx, dir, "--url", rcv.url+query,
		"--concurrency", "1024", "--rate", strconv.Itoa(b.opts.rate),
		"--duration", b.opts.duration.String(), "--size", strconv.Itoa(b.opts.size))
	if err != nil {
		return nil, err
	}
	baseLat := rcv.sendLatencies()

	shP50, shP99, shMax := latencies(sendLat)
	baseP50, baseP99, baseMax := latencies(baseLat)
	ackP50, ackP99, ackMax := latencies(ackLat)
	b.logStalls(st)
	ingestP50, ingestP99, ingestMax := latencies(st.lat)
	label := fmt.Sprintf("(%d/s offered)", b.opts.rate)
	return append([]row{
		newRow(mode, "accepted "+label, "events/s", rate(st.ok, st.elapsed), rate(bare.Sent, time.Duration(bare.ElapsedNS))),
		newRow(mode, "lost offers (errors + shed)", "count", float64(st.errs+shed), float64(bare.Errors+bare.Shed)),
		newRow(mode, "latency send -> arrival p50", "ms", shP50, baseP50),
		newRow(mode, "latency send -> arrival p99", "ms", shP99, baseP99),
		newRow(mode, "latency send -> arrival max", "ms", shMax, baseMax),
		soloRow(mode, "202 latency p50", "ms", ingestP50),
		soloRow(mode, "202 latency p99", "ms", ingestP99),
		soloRow(mode, "202 latency max", "ms", ingestMax),
		soloRow(mode, "latency 202 -> arrival p50", "ms", ackP50),
		soloRow(mode, "latency 202 -> arrival p99", "ms", ackP99),
		soloRow(mode, "latency 202 -> arrival max", "ms", ackMax),
		soloRow(mode, "arrived before the 202 was read", "events", float64(early)),
		soloRow(mode, "in_queue at start", "deliveries", float64(qStart)),
		soloRow(mode, "in_queue max", "deliveries", float64(qMax)),
		soloRow(mode, "in_queue at end of load", "deliveries", float64(qEnd)),
		soloRow(mode, "drain after the load", "ms", float64(drain)/float64(time.Millisecond)),
		newRow(mode, "sender CPU", "µs/event", perEventMicros(after.cpu-before.cpu, st.ok), perEventMicros(bareUse.cpu, bare.Sent)),
		newRow(mode, "sender peak RSS", "MiB", mib(after.hwm), mib(bareUse.hwm)),
		soloRow(mode, "sidehook peak anonymous RSS", "MiB", mib(peakAnon)),
	}, amplificationRows(mode, countersBefore, countersAfter, st.ok)...), nil
}
