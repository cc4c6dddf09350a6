package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The outage mode: a long receiver outage with a deep queue.
//
// The daemon starts with one webhook, "sink" (Lead Creation, concurrency
// --concurrency), whose URL is a loopback port where nothing listens: every
// attempt is refused at connect. The webhook has the circuit breaker on
// (circuit {failures: 10, probe: --outage-probe}) and a retry budget no
// outage of a few hours can spend (1000 attempts, backoff 1s up to 30s), so
// once ten attempts have failed the circuit opens and the deliveries stay
// queued, one probe every probe interval (doubling up to an hour), instead
// of failing for good. --outage-events events of --size bytes are then
// queued (arrays of perRequest from fillClients workers, as the depth mode
// fills), and the receiver stays down for --outage-duration from the
// moment the queue is full. Then a receiver that answers 200 at once
// starts on that same port. With --outage-resume retry (the default) the
// mode then makes one manual retry of a queued delivery (POST
// /v1/deliveries/{id}/retry, as `sidehook retry` does), whose success
// closes the circuit; with probe it waits for the circuit's next probe,
// which after a long outage can be up to an hour away (the table shows
// when it was due either way). If nothing more arrives within 5 s of that
// retry, it reloads the config (POST /v1/reload), which wakes the
// webhook's dispatcher: a manual retry that closes the circuit does not,
// so the queue would wait for the planned probe. The queue then drains. Sampling goes on
// for --outage-after past the drain.
//
// The config sets history_retention: 1m. Finished deliveries stay in the
// history (with their event and attempts) for history_retention, 720h by
// default, so with the default nothing a drain finishes is deleted for a
// month and its disk space cannot come back. With 1m, the retention sweep
// (every minute, delivery/engine.go maintain) deletes the drained
// deliveries a minute or two after the drain, and the value-log GC (every
// 5 minutes, same loop, RunValueLogGC(0.5) until it declines) can reclaim
// their value-log files: --outage-after should cover at least one GC tick
// after that (the default 15m covers two or three).
//
// Every --outage-sample (and at each phase boundary) it records the
// daemon's RssAnon, VmRSS and VmHWM (/proc/PID/status), its CPU time
// (/proc/PID/stat) and share of a core since the previous sample, the Go
// heap in use and sidehook_store_size_bytes (GET /metrics), the data
// directory's size (allocated blocks, as du counts them, and apparent
// file sizes: Badger preallocates its .vlog and .mem files sparsely, so
// the apparent size overstates the disk used), the count and bytes of its
// .vlog and .sst files, the sink webhook's in_queue, success and failure
// counts and circuit state (GET /v1/webhooks), failed attempts so far,
// and what the receiver has seen. The rows go to a CSV file as they are
// taken (--outage-csv; by default beside --json as NAME-series.csv, else
// in the temporary directory), and a summary goes in the table: memory at
// the start, minimum, maximum and end of the outage; disk when the queue
// was full, at its largest during the outage, when the drain ended and at
// the end; the wait from the receiver coming back to the first delivery
// (the circuit's next probe) and the drain's time and rate.

// outageOptions are the outage mode's flags.
type outageOptions struct {
	events   int
	duration time.Duration
	after    time.Duration
	sample   time.Duration
	probe    time.Duration
	resume   string // "retry" or "probe"
	csv      string
}

// addOutageFlags registers the outage mode's flags on fs.
func addOutageFlags(fs *flag.FlagSet, o *outageOptions) {
	*o = outageOptions{events: 1_000_000, duration: time.Hour, after: 15 * time.Minute, sample: 10 * time.Second, probe: 30 * time.Second, resume: "retry"}
	fs.Var(positiveInt{&o.events}, "outage-events", "outage: `count` of events queued for the dead receiver")
	fs.Var(positiveDuration{&o.duration}, "outage-duration", "outage: `duration` the receiver stays down once the queue is full")
	fs.Var(positiveDuration{&o.after}, "outage-after", "outage: `duration` to go on sampling after the drain, for the retention sweep and value-log GC")
	fs.Var(positiveDuration{&o.sample}, "outage-sample", "outage: sampling `interval`")
	fs.Var(positiveDuration{&o.probe}, "outage-probe", "outage: the webhook's circuit.probe `duration`, the first wait between probes")
	fs.Func("outage-resume", "outage: how the circuit closes once the receiver is back: retry (one manual retry of a queued delivery at once, as `sidehook retry` does) or probe (wait for the circuit's next probe) (default retry)", func(s string) error {
		if s != "retry" && s != "probe" {
			return errors.New("want retry or probe")
		}
		o.resume = s
		return nil
	})
	fs.StringVar(&o.csv, "outage-csv", "", "outage: write the time series here (default: beside --json as NAME-series.csv, else in the temp dir)")
}

// positiveInt is an int flag that refuses values below 1.
type positiveInt struct{ p *int }

func (v positiveInt) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v positiveInt) Set(s string) error {
	n, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 1 {
		return errors.New("must be positive")
	}
	*v.p = n
	return nil
}

// positiveDuration is a duration flag that refuses zero and below.
type positiveDuration struct{ p *time.Duration }

func (v positiveDuration) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v positiveDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (e.g. 90s, 1h)")
	}
	if d <= 0 {
		return errors.New("must be positive")
	}
	*v.p = d
	return nil
}

// outageReceiver is the webhook's receiver once it is back: it answers 200
// at once and records which events arrived, when the first request came
// and when the last new event arrived.
type outageReceiver struct {
	srv *http.Server

	mu       sync.Mutex
	seen     []bool // by event n, 1..target
	distinct int64
	requests int64
	dups     int64
	bad      int64     // bodies that were not eventData, or n out of range
	first    time.Time // the first request
	second   time.Time // the second distinct event: the queue is moving
	last     time.Time // the last first arrival
	target   int64
	all      chan struct{} // closed when every event has arrived
}

func newOutageReceiver(target int64) *outageReceiver {
	return &outageReceiver{seen: make([]bool, target+1), target: target, all: make(chan struct{})}
}

// listen starts serving on addr, the port the webhook has been failing to
// reach.
func (r *outageReceiver) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("start the receiver on %s: %w", addr, err)
	}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
	return nil
}

func (r *outageReceiver) close() {
	if r.srv != nil {
		r.srv.Close()
	}
}

func (r *outageReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	now := time.Now()
	n, _, ok := parseData(body)
	r.mu.Lock()
	r.requests++
	if r.first.IsZero() {
		r.first = now
	}
	switch {
	case err != nil || !ok || n < 1 || n > r.target:
		r.bad++
	case r.seen[n]:
		r.dups++
	default:
		r.seen[n] = true
		r.distinct++
		r.last = now
		if r.distinct == 2 {
			r.second = now
		}
		if r.distinct == r.target {
			close(r.all)
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// outageRcvStats is what the receiver has seen so far.
type outageRcvStats struct {
	distinct, requests, dups, bad int64
	first, second, last           time.Time
}

func (r *outageReceiver) stats() outageRcvStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return outageRcvStats{r.distinct, r.requests, r.dups, r.bad, r.first, r.second, r.last}
}

// outageHook is the sink webhook as GET /v1/webhooks shows it.
type outageHook struct {
	InQueue, Success, Failure int64
	Circuit                   string
	NextProbe                 time.Time // while the circuit is open
}

// outageHookState reads the sink webhook's counts and circuit state.
func outageHookState(ctx context.Context, d *daemon) (outageHook, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidehook/v1/webhooks", nil)
	if err != nil {
		return outageHook{}, fmt.Errorf("build request: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return outageHook{}, fmt.Errorf("get /v1/webhooks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return outageHook{}, fmt.Errorf("get /v1/webhooks: status %d", resp.StatusCode)
	}
	var body struct {
		Webhooks []struct {
			ID     string `json:"id"`
			Counts struct {
				InQueue int64 `json:"in_queue"`
				Success int64 `json:"success"`
				Failure int64 `json:"failure"`
			} `json:"counts"`
			Circuit struct {
				State   string     `json:"state"`
				ProbeAt *time.Time `json:"next_probe_at"`
			} `json:"circuit"`
		} `json:"webhooks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return outageHook{}, fmt.Errorf("decode /v1/webhooks: %w", err)
	}
	for _, w := range body.Webhooks {
		if w.ID == "sink" {
			h := outageHook{w.Counts.InQueue, w.Counts.Success, w.Counts.Failure, w.Circuit.State, time.Time{}}
			if w.Circuit.ProbeAt != nil {
				h.NextProbe = *w.Circuit.ProbeAt
			}
			return h, nil
		}
	}
	return outageHook{}, errors.New("get /v1/webhooks: no webhook sink")
}

// outageRetryOne makes one manual retry of the sink webhook's newest
// queued delivery, as `sidehook retry` does, and returns its status after
// the attempt. A success closes the circuit.
func outageRetryOne(ctx context.Context, d *daemon) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidehook/v1/webhooks/sink/deliveries?status=in_queue&limit=1", nil)
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("list queued deliveries: %w", err)
	}
	var page struct {
		Deliveries []struct {
			ID string `json:"id"`
		} `json:"deliveries"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("list queued deliveries: status %d, %v", resp.StatusCode, err)
	}
	if len(page.Deliveries) == 0 {
		return "", errors.New("no queued delivery to retry")
	}
	b, err := postRead(ctx, d.client, "http://sidehook/v1/deliveries/"+page.Deliveries[0].ID+"/retry", nil, http.StatusAccepted)
	if err != nil {
		return "", fmt.Errorf("retry %s: %w", page.Deliveries[0].ID, err)
	}
	var dl struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(b, &dl); err != nil {
		return "", fmt.Errorf("decode retry answer: %w", err)
	}
	return page.Deliveries[0].ID + " " + dl.Status, nil
}

// outageMetrics are the figures the mode reads from GET /metrics.
type outageMetrics struct {
	heapInuse  float64 // go_memstats_heap_inuse_bytes
	storeSize  float64 // sidehook_store_size_bytes
	failedTrys float64 // sidehook_attempts_total of sink, other than 2xx
}

func outageReadMetrics(ctx context.Context, d *daemon) (outageMetrics, error) {
	var m outageMetrics
	all, err := d.scrape(ctx)
	for name, v := range all {
		switch {
		case name == "go_memstats_heap_inuse_bytes":
			m.heapInuse = v
		case name == "sidehook_store_size_bytes":
			m.storeSize = v
		case strings.HasPrefix(name, "sidehook_attempts_total{") && strings.Contains(name, `webhook="sink"`) && !strings.Contains(name, `outcome="2xx"`):
			m.failedTrys += v
		}
	}
	return m, err
}

// storeDisk is what a data directory holds, by kind of file.
type storeDisk struct {
	alloc, apparent         int64 // all files: allocated blocks, sizes
	vlogs, ssts             int
	vlogAlloc, vlogApparent int64
	sstAlloc                int64
}

func storeDiskUsage(dir string) (storeDisk, error) {
	var u storeDisk
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // Badger removed it while we walked
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		var alloc int64
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			alloc = st.Blocks * 512
		}
		u.alloc += alloc
		u.apparent += info.Size()
		switch filepath.Ext(path) {
		case ".vlog":
			u.vlogs++
			u.vlogAlloc += alloc
			u.vlogApparent += info.Size()
		case ".sst":
			u.ssts++
			u.sstAlloc += alloc
		}
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("measure %s: %w", dir, err)
	}
	return u, nil
}

// outageSample is one row of the time series.
type outageSample struct {
	at     time.Duration // since the daemon started
	phase  string        // fill, outage, drain, after
	mark   string        // queue-full, receiver-up, drained, end; or ""
	proc   procUsage
	cpuPct float64 // share of one core since the previous sample, %
	disk   storeDisk
	hook   outageHook
	met    outageMetrics
	rcv    outageRcvStats
}

var outageCSVHeader = []string{
	"t_s", "phase", "mark", "rss_anon_bytes", "vm_rss_bytes", "vm_hwm_bytes", "cpu_s", "cpu_pct",
	"go_heap_inuse_bytes", "store_size_bytes", "disk_alloc_bytes", "disk_apparent_bytes",
	"vlog_files", "vlog_alloc_bytes", "vlog_apparent_bytes", "sst_files", "sst_alloc_bytes",
	"in_queue", "success", "failure", "circuit", "failed_attempts", "received_distinct", "received_requests",
}

func (s outageSample) csv() []string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	return []string{
		f(s.at.Seconds(), 1), s.phase, s.mark, i(s.proc.anon), i(s.proc.rss), i(s.proc.hwm),
		f(s.proc.cpu.Seconds(), 2), f(s.cpuPct, 1), f(s.met.heapInuse, 0), f(s.met.storeSize, 0),
		i(s.disk.alloc), i(s.disk.apparent), i(int64(s.disk.vlogs)), i(s.disk.vlogAlloc), i(s.disk.vlogApparent),
		i(int64(s.disk.ssts)), i(s.disk.sstAlloc), i(s.hook.InQueue), i(s.hook.Success), i(s.hook.Failure),
		s.hook.Circuit, f(s.met.failedTrys, 0), i(s.rcv.distinct), i(s.rcv.requests),
	}
}

// outageSampler takes samples and writes each to the CSV file at once, so
// a run cut short keeps what it measured.
type outageSampler struct {
	b       *bench
	d       *daemon
	dataDir string
	start   time.Time
	rcv     *outageReceiver
	phase   atomic.Value // string

	mu      sync.Mutex
	samples []outageSample
	prevCPU time.Duration
	prevAt  time.Time
	out     *os.File
	w       *bufio.Writer
}

// take records one sample labelled with the current phase and mark.
func (s *outageSampler) take(ctx context.Context, mark string) outageSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	smp := outageSample{at: now.Sub(s.start), phase: s.phase.Load().(string), mark: mark}
	var errs []string
	var err error
	if smp.proc, err = readProc(s.d.pid(), s.b.clkTck); err != nil {
		errs = append(errs, err.Error())
	}
	if !s.prevAt.IsZero() && now.After(s.prevAt) {
		smp.cpuPct = 100 * float64(smp.proc.cpu-s.prevCPU) / float64(now.Sub(s.prevAt))
	}
	s.prevCPU, s.prevAt = smp.proc.cpu, now
	if smp.disk, err = storeDiskUsage(s.dataDir); err != nil {
		errs = append(errs, err.Error())
	}
	if smp.hook, err = outageHookState(ctx, s.d); err != nil {
		errs = append(errs, err.Error())
	}
	if smp.met, err = outageReadMetrics(ctx, s.d); err != nil {
		errs = append(errs, err.Error())
	}
	smp.rcv = s.rcv.stats()
	if len(errs) > 0 && ctx.Err() == nil {
		s.b.logf("sample: %s", strings.Join(errs, "; "))
	}
	s.samples = append(s.samples, smp)
	if s.w != nil {
		s.w.WriteString(strings.Join(smp.csv(), ",") + "\n")
		s.w.Flush()
	}
	label := smp.phase
	if mark != "" {
		label += " (" + mark + ")"
	}
	s.b.logf("+%-8v %-22s anon %4.0f MiB, rss %5.0f MiB, heap %4.0f MiB, cpu %5.1f%%; disk %6.0f MiB (vlog %d: %.0f MiB, sst %d: %.0f MiB); in_queue %d, success %d, failure %d, circuit %s, received %d",
		smp.at.Round(time.Second), label, mib(smp.proc.anon), mib(smp.proc.rss), mib(int64(smp.met.heapInuse)), smp.cpuPct,
		mib(smp.disk.alloc), smp.disk.vlogs, mib(smp.disk.vlogAlloc), smp.disk.ssts, mib(smp.disk.sstAlloc),
		smp.hook.InQueue, smp.hook.Success, smp.hook.Failure, smp.hook.Circuit, smp.rcv.distinct)
	return smp
}

// run samples every interval until ctx ends.
func (s *outageSampler) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.take(ctx, "")
		}
	}
}

// inPhase returns the samples of a phase.
func (s *outageSampler) inPhase(phase string) []outageSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []outageSample
	for _, smp := range s.samples {
		if smp.phase == phase {
			out = append(out, smp)
		}
	}
	return out
}

// outageCSVPath picks where the time series goes.
func (b *bench) outageCSVPath() string {
	switch {
	case b.opts.outage.csv != "":
		return b.opts.outage.csv
	case b.opts.jsonPath != "":
		return strings.TrimSuffix(b.opts.jsonPath, filepath.Ext(b.opts.jsonPath)) + "-series.csv"
	}
	return filepath.Join(os.TempDir(), "sidehook-outage-"+time.Now().UTC().Format("20060102T150405Z")+".csv")
}

// startOutageDaemon starts sidehook with the outage config: the sink
// webhook pointing at url, circuit breaker on, a retry budget the outage
// cannot spend, and a one-minute history retention.
func (b *bench) startOutageDaemon(ctx context.Context, dir, url string) (*daemon, error) {
	return b.launch(ctx, dir, fmt.Sprintf(`history_retention: 1m
webhooks:
  - id: sink
    events: [Lead Creation]
    url: %s
    timeout: 10s
    concurrency: %d
    retry: { attempts: 1000, backoff: 1s, max_backoff: 30s }
    circuit: { failures: 10, probe: %s }
`, url, b.opts.concurrency, b.opts.outage.probe))
}

// outage runs the long-outage benchmark (see the comment at the top of
// this file).
func (b *bench) outage(ctx context.Context) (rows []row, err error) {
	const mode = "outage"
	o := b.opts.outage
	dir, err := b.dir(mode)
	if err != nil {
		return nil, err
	}

	// A port where nothing listens: attempts are refused at connect until
	// the receiver starts on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pick a port for the receiver: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rcv := newOutageReceiver(int64(o.events))
	defer rcv.close()

	d, err := b.startOutageDaemon(ctx, dir, "http://"+addr+"/hook")
	if err != nil {
		return nil, err
	}
	defer d.stop()

	csvPath := b.outageCSVPath()
	s := &outageSampler{b: b, d: d, dataDir: filepath.Join(dir, "data"), start: time.Now(), rcv: rcv}
	s.phase.Store("fill")
	if f, err := os.Create(csvPath); err != nil {
		b.logf("no time series: %v", err)
	} else {
		defer f.Close()
		s.out, s.w = f, bufio.NewWriter(f)
		s.w.WriteString(strings.Join(outageCSVHeader, ",") + "\n")
		b.logf("time series: %s", csvPath)
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	s.take(ctx, "start")
	go s.run(sampleCtx, o.sample)

	// Fill, with the receiver down.
	b.logf("receiver down (%s refuses connections); queueing %d events", addr, o.events)
	fill, err := b.fill(ctx, d, "queued", "Lead Creation", 1, int64(o.events), nil)
	if err != nil {
		return nil, err
	}
	s.phase.Store("outage")
	full := s.take(ctx, "queue-full")
	if full.hook.InQueue < fill.ok-int64(b.opts.concurrency) {
		b.logf("warning: in_queue %d with %d events accepted: is the webhook failing deliveries?", full.hook.InQueue, fill.ok)
	}
	outageStart := time.Now()

	// The outage.
	b.logf("receiver stays down for %v", o.duration)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.done:
		return nil, fmt.Errorf("sidehook exited during the outage: %v (log: %s)", d.err, d.log)
	case <-time.After(o.duration):
	}
	endOutage := s.take(ctx, "receiver-up")
	down := time.Since(outageStart)

	// The receiver comes back; the next probe closes the circuit.
	s.phase.Store("drain")
	before, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	drainAnon := b.watchAnon(d.pid())
	up := time.Now()
	if err := rcv.listen(addr); err != nil {
		drainAnon()
		return nil, err
	}
	b.logf("receiver up on %s", addr)
	var probeIn time.Duration
	var reloaded float64 // 1 when the manual retry needed a reload to start the drain
	if !endOutage.hook.NextProbe.IsZero() {
		probeIn = endOutage.hook.NextProbe.Sub(up)
		b.logf("circuit %s; its next probe is due in %v", endOutage.hook.Circuit, probeIn.Round(time.Second))
	}
	if o.resume == "retry" {
		res, err := outageRetryOne(ctx, d)
		if err != nil {
			drainAnon()
			return nil, err
		}
		b.logf("manual retry: %s", res)
		// The retry's success closes the circuit, but the dispatcher
		// sleeps until the probe it had planned; a reload wakes it.
		for t0 := time.Now(); rcv.stats().distinct < 2 && time.Since(t0) < 5*time.Second; {
			time.Sleep(10 * time.Millisecond)
		}
		if rcv.stats().distinct < 2 {
			b.logf("nothing more delivered within 5s of the retry: reloading the config to wake the dispatcher")
			if err := post(ctx, d.client, "http://sidehook/v1/reload", nil, http.StatusOK); err != nil {
				drainAnon()
				return nil, fmt.Errorf("reload: %w", err)
			}
			reloaded = 1
		}
	}
	drainCtx, stopProgress := context.WithCancel(ctx)
	go b.progress(drainCtx, "delivered", func() int64 { return rcv.stats().distinct })
	timeout := time.Hour + 10*time.Minute + time.Duration(o.events)*2*time.Millisecond
	drained := false
	select {
	case <-rcv.all:
		drained = true
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	stopProgress()
	peakAnon := drainAnon()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	after, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	st := rcv.stats()
	// The daemon records each success after the receiver answered: give
	// in_queue a moment to reach 0.
	for i := 0; i < 100; i++ {
		if h, err := outageHookState(ctx, d); err == nil && h.InQueue == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.phase.Store("after")
	drainedAt := s.take(ctx, "drained")
	if !drained {
		b.logf("only %d of %d events arrived within %v of the receiver coming back (log: %s)", st.distinct, o.events, timeout, d.log)
	} else {
		b.logf("drained: first request %v after the receiver came up, second event %v, last %v", st.first.Sub(up).Round(time.Millisecond), st.second.Sub(up).Round(time.Millisecond), st.last.Sub(up).Round(time.Millisecond))
	}

	// After the drain: the retention sweep and the value-log GC.
	b.logf("sampling for %v more (retention sweep every 1m, value-log GC every 5m)", o.after)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.after):
	}
	stopSampling()
	end := s.take(ctx, "end")
	if err := d.stop(); err != nil {
		return nil, err
	}
	b.logf("time series: %s", csvPath)

	// Summaries.
	outage := s.inPhase("outage")
	var minAnon, maxAnon, maxRSS, maxDisk int64 = full.proc.anon, full.proc.anon, full.proc.rss, full.disk.alloc
	var maxVlogs int
	for _, smp := range outage {
		minAnon = min(minAnon, smp.proc.anon)
		maxAnon = max(maxAnon, smp.proc.anon)
		maxRSS = max(maxRSS, smp.proc.rss)
		maxDisk = max(maxDisk, smp.disk.alloc)
		maxVlogs = max(maxVlogs, smp.disk.vlogs)
	}
	outageCPU := float64(endOutage.proc.cpu-full.proc.cpu) / float64(endOutage.at-full.at) * 100
	minAfter := drainedAt.disk
	for _, smp := range s.inPhase("after") {
		if smp.disk.alloc < minAfter.alloc {
			minAfter = smp.disk
		}
	}
	var firstIn, movingIn, drainSpan, drainMoving time.Duration
	if !st.second.IsZero() {
		firstIn, movingIn = st.first.Sub(up), st.second.Sub(up)
		drainSpan, drainMoving = st.last.Sub(up), st.last.Sub(st.second)
	}
	qLabel := fmt.Sprintf("(%s queued, receiver down %v)", groupThousands(strconv.Itoa(o.events)), down.Round(time.Minute))
	rows = []row{
		soloRow(mode, fmt.Sprintf("filling: accepted (arrays of %d, %d clients)", perRequest, fillClients), "events/s", rate(fill.ok, fill.elapsed)),
		soloRow(mode, "in_queue, queue full "+qLabel, "deliveries", float64(full.hook.InQueue)),
		soloRow(mode, "anonymous RSS, queue full", "MiB", mib(full.proc.anon)),
		soloRow(mode, "anonymous RSS, min during the outage", "MiB", mib(minAnon)),
		soloRow(mode, "anonymous RSS, max during the outage", "MiB", mib(maxAnon)),
		soloRow(mode, "anonymous RSS, end of the outage", "MiB", mib(endOutage.proc.anon)),
		soloRow(mode, "RSS (VmRSS), queue full", "MiB", mib(full.proc.rss)),
		soloRow(mode, "RSS (VmRSS), max during the outage", "MiB", mib(maxRSS)),
		soloRow(mode, "RSS (VmRSS), end of the outage", "MiB", mib(endOutage.proc.rss)),
		soloRow(mode, "Go heap in use, queue full", "MiB", mib(int64(full.met.heapInuse))),
		soloRow(mode, "Go heap in use, end of the outage", "MiB", mib(int64(endOutage.met.heapInuse))),
		soloRow(mode, "daemon CPU during the outage", "% of a core", outageCPU),
		soloRow(mode, "failed attempts by the end of the outage", "attempts", endOutage.met.failedTrys),
		soloRow(mode, "deliveries failed for good by the end of the outage", "deliveries", float64(endOutage.hook.Failure)),
		soloRow(mode, "disk, queue full", "MiB", mib(full.disk.alloc)),
		soloRow(mode, "disk, max during the outage", "MiB", mib(maxDisk)),
		soloRow(mode, "disk, end of the outage", "MiB", mib(endOutage.disk.alloc)),
		soloRow(mode, "disk, drained", "MiB", mib(drainedAt.disk.alloc)),
		soloRow(mode, "disk, min after the drain", "MiB", mib(minAfter.alloc)),
		soloRow(mode, fmt.Sprintf("disk, %v after the drain", o.after), "MiB", mib(end.disk.alloc)),
		soloRow(mode, "value-log files, queue full", "files", float64(full.disk.vlogs)),
		soloRow(mode, "value-log files, max during the outage", "files", float64(maxVlogs)),
		soloRow(mode, "value-log files, drained", "files", float64(drainedAt.disk.vlogs)),
		soloRow(mode, fmt.Sprintf("value-log files, %v after the drain", o.after), "files", float64(end.disk.vlogs)),
		soloRow(mode, "SST files, queue full", "files", float64(full.disk.ssts)),
		soloRow(mode, fmt.Sprintf("SST files, %v after the drain", o.after), "files", float64(end.disk.ssts)),
		soloRow(mode, "receiver up -> the circuit's next probe", "s", probeIn.Seconds()),
		soloRow(mode, fmt.Sprintf("receiver up -> first request (resume: %s)", o.resume), "s", firstIn.Seconds()),
		soloRow(mode, "receiver up -> second event (the queue moves)", "s", movingIn.Seconds()),
		soloRow(mode, "a reload was needed after the retry (1 = yes)", "", reloaded),
		soloRow(mode, "receiver up -> last event arrived", "s", drainSpan.Seconds()),
		soloRow(mode, "drain rate, second to last event", "events/s", rate(st.distinct-1, drainMoving)),
		soloRow(mode, "events delivered", "events", float64(st.distinct)),
		soloRow(mode, "duplicate deliveries", "requests", float64(st.dups)),
		soloRow(mode, "drain: daemon CPU", "µs/event", perEventMicros(after.cpu-before.cpu, st.distinct)),
		soloRow(mode, "drain: peak anonymous RSS", "MiB", mib(peakAnon)),
		soloRow(mode, fmt.Sprintf("anonymous RSS, %v after the drain", o.after), "MiB", mib(end.proc.anon)),
		soloRow(mode, fmt.Sprintf("success in history, %v after the drain (retention 1m)", o.after), "deliveries", float64(end.hook.Success)),
	}
	if !drained {
		return rows, fmt.Errorf("only %d of %d events arrived within %v of the receiver coming back (log: %s)", st.distinct, o.events, timeout, d.log)
	}
	if st.bad > 0 {
		return rows, fmt.Errorf("the receiver got %d requests that were not a queued event", st.bad)
	}
	return rows, nil
}
