package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// depthFigures is what one depth run measured, on an empty store or with
// the queue filled first.
type depthFigures struct {
	queued     int64         // events (and deliveries) the fill queued
	fill       loadStats     // the fill, counted in events
	settled    procUsage     // memory once the filled daemon was quiet
	idle       procUsage     // memory after idlePeriod, a forced GC and scavengeWait
	heap       float64       // go_memstats_heap_inuse_bytes then
	qDepth     float64       // sidehook_queue_depth then
	storeSize  float64       // sidehook_store_size_bytes then
	disk       int64         // bytes the data directory takes on disk then
	stopIn     time.Duration // from SIGTERM to exit
	readyIn    time.Duration // from the restart to /readyz answering 200
	atReady    procUsage     // memory of the restarted daemon when ready
	restarted  procUsage     // its memory after a settle, idlePeriod and a GC
	qRestarted float64       // sidehook_queue_depth after the restart
	ingest     loadStats     // the ingest load on the restarted daemon
	ingestUse  procUsage     // the daemon's CPU over it and peak memory
	drained    int64         // events queued behind the gate, then delivered
	drainIn    time.Duration // from opening the gate until all had arrived
	drainCPU   time.Duration // the daemon's CPU time over the drain
	// ingestOthers and drainOthers are the cores the rest of the machine
	// used during the ingest load and the drain.
	ingestOthers, drainOthers float64
}

// depth measures how sidehook scales with the depth of its queue: the same
// sequence runs twice, once on an empty store (the baseline column) and
// once after queueing --depth deliveries due in 24 hours (the sidehook
// column), so the ratio is what the deep queue costs.
//
// Each run starts a daemon with two webhooks: "sink" for Lead Creation,
// delayed 24h, and "drain" for Lead Update, undelayed, whose receiver
// holds every request at a closed gate. The run queues the --depth events
// for sink (arrays of perRequest from fillClients workers; none in the
// empty run), waits for the daemon to go quiet, reads its memory, leaves
// it idle for idlePeriod, forces a GC and reads it again (see
// restingMemory), with the data directory's size on disk; stops it with SIGTERM and restarts it on the same data
// directory, timing process start to /readyz 200 and reading its memory
// the same way; runs the ingest mode's load (--clients clients, --size
// byte Lead Creation events, for --duration) against it; then queues
// --events Lead Update events behind the gate, opens it and times the
// drain as the delivery mode does. With --keep, a CPU profile of the
// daemon over each ingest load is left in the run's directory
// (ingest-cpu.pprof, for go tool pprof).
func (b *bench) depth(ctx context.Context) ([]row, error) {
	const mode = "depth"
	empty, err := b.depthRun(ctx, mode+"/empty", 0)
	if err != nil {
		return nil, fmt.Errorf("empty store: %w", err)
	}
	if !b.opts.keep {
		os.RemoveAll(filepath.Join(b.work, mode, "empty"))
	}
	syscall.Sync()
	deep, err := b.depthRun(ctx, mode+"/deep", int64(b.opts.depth))
	if err != nil {
		return nil, fmt.Errorf("%d queued: %w", b.opts.depth, err)
	}

	depthP50, depthP99, _ := latencies(deep.ingest.lat)
	emptyP50, emptyP99, _ := latencies(empty.ingest.lat)
	vs := fmt.Sprintf("(%s queued / empty)", groupThousands(fmt.Sprint(deep.queued)))
	ingestLabel := fmt.Sprintf("ingest accepted (%d clients, %d B) %s", b.opts.clients, b.opts.size, vs)
	drainLabel := fmt.Sprintf("delivered (%d behind the gate, concurrency %d) %s", deep.drained, b.opts.concurrency, vs)
	return []row{
		soloRow(mode, fmt.Sprintf("filling: accepted (arrays of %d, %d clients)", perRequest, fillClients), "events/s", rate(deep.fill.ok, deep.fill.elapsed)),
		newRow(mode, "queued: sidehook_queue_depth "+vs, "deliveries", deep.qDepth, empty.qDepth),
		newRow(mode, "queued: anonymous RSS, quiet", "MiB", mib(deep.settled.anon), mib(empty.settled.anon)),
		newRow(mode, fmt.Sprintf("queued: anonymous RSS, %v idle + GC", idlePeriod), "MiB", mib(deep.idle.anon), mib(empty.idle.anon)),
		newRow(mode, "queued: RSS, idle + GC", "MiB", mib(deep.idle.rss), mib(empty.idle.rss)),
		newRow(mode, "queued: peak RSS (VmHWM)", "MiB", mib(deep.idle.hwm), mib(empty.idle.hwm)),
		newRow(mode, "queued: Go heap in use, idle + GC", "MiB", mib(int64(deep.heap)), mib(int64(empty.heap))),
		newRow(mode, "queued: data directory on disk", "MiB", mib(deep.disk), mib(empty.disk)),
		newRow(mode, "queued: sidehook_store_size_bytes", "MiB", mib(int64(deep.storeSize)), mib(int64(empty.storeSize))),
		newRow(mode, "stop: SIGTERM to exit", "ms", ms(deep.stopIn), ms(empty.stopIn)),
		newRow(mode, "restart: process start to /readyz 200", "ms", ms(deep.readyIn), ms(empty.readyIn)),
		newRow(mode, "restart: sidehook_queue_depth", "deliveries", deep.qRestarted, empty.qRestarted),
		newRow(mode, "restart: anonymous RSS when ready", "MiB", mib(deep.atReady.anon), mib(empty.atReady.anon)),
		newRow(mode, "restart: anonymous RSS, idle + GC", "MiB", mib(deep.restarted.anon), mib(empty.restarted.anon)),
		newRow(mode, "restart: peak RSS (VmHWM) by then", "MiB", mib(deep.restarted.hwm), mib(empty.restarted.hwm)),
		newRow(mode, ingestLabel, "events/s", rate(deep.ingest.ok, deep.ingest.elapsed), rate(empty.ingest.ok, empty.ingest.elapsed)),
		newRow(mode, "ingest: answers other than 202", "count", float64(deep.ingest.errs), float64(empty.ingest.errs)),
		newRow(mode, "ingest: 202 latency p50", "ms", depthP50, emptyP50),
		newRow(mode, "ingest: 202 latency p99", "ms", depthP99, emptyP99),
		newRow(mode, "ingest: server CPU", "µs/event", perEventMicros(deep.ingestUse.cpu, deep.ingest.ok), perEventMicros(empty.ingestUse.cpu, empty.ingest.ok)),
		newRow(mode, "ingest: peak anonymous RSS", "MiB", mib(deep.ingestUse.anon), mib(empty.ingestUse.anon)),
		newRow(mode, "ingest: other processes' CPU", "cores", deep.ingestOthers, empty.ingestOthers),
		newRow(mode, drainLabel, "events/s", rate(deep.drained, deep.drainIn), rate(empty.drained, empty.drainIn)),
		newRow(mode, "delivery: sender CPU", "µs/event", perEventMicros(deep.drainCPU, deep.drained), perEventMicros(empty.drainCPU, empty.drained)),
		newRow(mode, "delivery: other processes' CPU", "cores", deep.drainOthers, empty.drainOthers),
	}, nil
}

// depthRun runs the depth sequence in a directory of its own with queued
// events filled first (0: none).
func (b *bench) depthRun(ctx context.Context, name string, queued int64) (depthFigures, error) {
	f := depthFigures{queued: queued}
	dir, err := b.dir(name)
	if err != nil {
		return f, err
	}
	rcv, err := startReceiver(true)
	if err != nil {
		return f, err
	}
	defer rcv.close()
	hooks := []hookSettings{
		{url: rcv.url, delay: 24 * time.Hour, timeout: 10 * time.Second, concurrency: 4},
		{id: "drain", events: "[Lead Update]", url: rcv.url, timeout: time.Hour, concurrency: b.opts.concurrency},
	}
	b.logf("%s: starting the daemon", name)
	d, err := b.startDaemon(ctx, dir, hooks...)
	if err != nil {
		return f, err
	}
	defer func() { d.stop() }()

	// (a) The queue at rest.
	if queued > 0 {
		if f.fill, err = b.fill(ctx, d, "queued", "Lead Creation", 1, queued, nil); err != nil {
			return f, err
		}
	}
	if f.settled, f.idle, err = b.restingMemory(ctx, d); err != nil {
		return f, err
	}
	m, err := d.metrics(ctx, "go_memstats_heap_inuse_bytes", "sidehook_queue_depth", "sidehook_store_size_bytes")
	if err != nil {
		return f, err
	}
	f.heap, f.qDepth, f.storeSize = m["go_memstats_heap_inuse_bytes"], m["sidehook_queue_depth"], m["sidehook_store_size_bytes"]
	if f.disk, err = diskUsage(filepath.Join(dir, "data")); err != nil {
		return f, err
	}

	// (b) Stop and restart on the same data directory.
	t0 := time.Now()
	if err := d.stop(); err != nil {
		return f, fmt.Errorf("stop: %w", err)
	}
	f.stopIn = time.Since(t0)
	syscall.Sync()
	again, err := b.startDaemon(ctx, dir, hooks...)
	if err != nil {
		return f, fmt.Errorf("restart: %w", err)
	}
	d = again
	f.readyIn = d.readyIn
	if f.atReady, err = readProc(d.pid(), b.clkTck); err != nil {
		return f, err
	}
	b.logf("%s: stopped in %v, restarted and ready in %v", name, f.stopIn.Round(time.Millisecond), f.readyIn.Round(time.Millisecond))
	if _, f.restarted, err = b.restingMemory(ctx, d); err != nil {
		return f, err
	}
	if m, err = d.metrics(ctx, "sidehook_queue_depth"); err != nil {
		return f, err
	}
	f.qRestarted = m["sidehook_queue_depth"]
	if int64(f.qRestarted) != queued {
		return f, fmt.Errorf("%v deliveries queued after the restart, want %d (log: %s)", f.qRestarted, queued, d.log)
	}

	// (c) The ingest mode's load.
	meter, err := b.startCPUMeter(d.pid())
	if err != nil {
		return f, err
	}
	profiled := b.profile(ctx, d, b.opts.duration, filepath.Join(dir, "ingest-cpu.pprof"))
	f.ingest, f.ingestUse, err = b.ingestLoad(ctx, d.child, d.client, "http://sidehook/v1/events")
	profiled()
	if err != nil {
		return f, err
	}
	if f.ingestOthers, err = meter.others(); err != nil {
		return f, err
	}

	// (d) Delivery from behind the gate.
	if _, err := b.settle(ctx, d.pid()); err != nil {
		return f, err
	}
	if f.drained, f.drainIn, f.drainCPU, f.drainOthers, err = b.gatedDrain(ctx, d, rcv, "Lead Update", int64(b.opts.events)); err != nil {
		return f, err
	}
	if err := d.stop(); err != nil {
		return f, err
	}
	return f, nil
}

// gatedDrain queues count events of type event (arrays, as fill posts
// them) while rcv, the webhook's receiver, holds every request at its
// closed gate, waits for the daemon to go quiet, then opens the gate and
// returns how many were delivered, the time from opening the gate until
// rcv had seen each of them, the daemon's CPU time over that and the cores
// the rest of the machine used meanwhile.
func (b *bench) gatedDrain(ctx context.Context, d *daemon, rcv *receiver, event string, count int64) (delivered int64, elapsed, cpu time.Duration, others float64, err error) {
	st, err := b.fill(ctx, d, "queued behind the gate", event, 1, count, nil)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if _, err := b.settle(ctx, d.pid()); err != nil {
		return 0, 0, 0, 0, err
	}
	rcv.reset(int(st.ok))
	before, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	meter, err := b.startCPUMeter(d.pid())
	if err != nil {
		return 0, 0, 0, 0, err
	}
	drainCtx, stopProgress := context.WithCancel(ctx)
	go b.progress(drainCtx, "delivered", func() int64 { return int64(rcv.distinct()) })
	start := time.Now()
	rcv.openGate()
	timeout := max(5*time.Minute, time.Duration(st.ok)*10*time.Millisecond)
	select {
	case <-rcv.doneCh():
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	elapsed = time.Since(start)
	stopProgress()
	if err := ctx.Err(); err != nil {
		return 0, 0, 0, 0, err
	}
	if got := rcv.distinct(); got < int(st.ok) {
		return 0, 0, 0, 0, fmt.Errorf("only %d of %d queued events delivered within %v (log: %s)", got, st.ok, timeout, d.log)
	}
	after, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if others, err = meter.others(); err != nil {
		return 0, 0, 0, 0, err
	}
	b.logf("delivered %d events in %v (%.0f/s)", st.ok, elapsed.Round(time.Millisecond), rate(st.ok, elapsed))
	return st.ok, elapsed, after.cpu - before.cpu, others, nil
}

// profile takes, with --keep, a CPU profile of the daemon over the next
// dur into path (for go tool pprof) while the caller runs its load; the
// returned function waits for it. Without --keep it does nothing.
func (b *bench) profile(ctx context.Context, d *daemon, dur time.Duration, path string) (wait func()) {
	if !b.opts.keep {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.cpuProfile(ctx, dur, path); err != nil {
			b.logf("%v", err)
		}
	}()
	return func() { <-done }
}

// cpuProfile saves a CPU profile of the daemon over the next dur (whole
// seconds, from 1 to 50, within the client's timeout) in path.
func (d *daemon) cpuProfile(ctx context.Context, dur time.Duration, path string) error {
	secs := min(max(1, int(dur/time.Second)), 50)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://sidehook/debug/pprof/profile?seconds=%d", secs), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: status %d", resp.StatusCode)
	}
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return fmt.Errorf("cpu profile: write %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("cpu profile: write %s: %w", path, err)
	}
	return nil
}
