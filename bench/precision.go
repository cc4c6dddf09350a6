package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// precisionLead is how long after the last measured event was
	// accepted the first one falls due: every measured delivery is in
	// the queue before any is due, and the load generator is quiet while
	// they go out.
	precisionLead = 10 * time.Second
	// farBase numbers the far-ahead events' data, so that one arriving
	// (it should not, for days) is told from a measured one.
	farBase = int64(1) << 40
)

// precisionFigures is what one precision run measured.
type precisionFigures struct {
	far        loadStats       // the far-ahead fill, counted in events
	measured   loadStats       // the paced posting of the measured events
	shed       int64           // measured sends skipped by the open loop
	perSecond  int             // the rate they were posted at (and fall due at)
	delay      time.Duration   // the measured webhook's delay
	queued     float64         // sidehook_queue_depth before the first fell due
	lateness   []time.Duration // arrival - due of each measured event that arrived
	early      int             // of which negative
	missing    int64           // accepted, not arrived by the last due + 1 minute
	stray      int             // arrivals that were not measured events
	cpu        time.Duration   // the daemon's CPU time while delivering
	peakAnon   int64           // its peak anonymous RSS then
	lastDueAge time.Duration   // from the last due time until the wait ended
	others     float64         // cores the rest of the machine used meanwhile
}

// precision measures how punctually a deep queue of delayed deliveries
// goes out: lateness is each delivery's arrival at the receiver minus its
// due time. The due time is the due_at the daemon answered with its 202
// (its clock at commit plus the webhook's delay), so lateness is the
// scheduler's alone: neither the load generator's send time nor the
// ingest latency is in it. The receiver answers 200 at once.
//
// Design: a queue of --depth deliveries cannot all fall due within a
// couple of minutes on this class of machine (the delivery mode drains
// roughly 10-15k/s on two cores, and a queue that falls due faster than
// it can drain measures throughput, not punctuality). So --depth minus
// --precision-events of them are queued first, in bulk, for a webhook
// "far" (Lead Update) with a 72h delay, and stay in the store for the
// whole run; then the --precision-events measured ones (Lead Creation, to
// "sink") are posted one by one at an even rate over --precision-window,
// so their due times spread evenly over a window of that length and need
// precision-events/window deliveries per second (100,000 over 60s: 1,667/s,
// well under the drain rate). Sink's delay is the posting time plus
// precisionLead, so every measured delivery is queued (the full --depth
// in the store) before the first falls due, and nothing but delivery runs
// while they go out. The same sequence without the far-ahead fill (an
// empty store but for the measured set) is the baseline column: the
// ratio is what the deep queue costs in punctuality. Target: p99
// lateness under 50 ms. Each second of due times in which deliveries
// were over 50 ms late is logged, to match bursts of lateness to what the
// daemon was doing then; the CPU the rest of the machine used while they
// went out is a row, since on a shared machine it moves the tail most.
func (b *bench) precision(ctx context.Context) ([]row, error) {
	const mode = "precision"
	background := int64(max(0, b.opts.depth-b.opts.precisionEvents))
	empty, err := b.precisionRun(ctx, mode+"/empty", 0)
	if err != nil {
		return nil, fmt.Errorf("empty store: %w", err)
	}
	if !b.opts.keep {
		os.RemoveAll(filepath.Join(b.work, mode, "empty"))
	}
	syscall.Sync()
	deep, err := b.precisionRun(ctx, mode+"/deep", background)
	if err != nil {
		return nil, fmt.Errorf("%d far ahead: %w", background, err)
	}

	dP50, dP99, dMax := latencies(deep.lateness)
	eP50, eP99, eMax := latencies(empty.lateness)
	dP999, eP999 := ms(percentile(deep.lateness, 99.9)), ms(percentile(empty.lateness, 99.9))
	vs := fmt.Sprintf("(%s far ahead / none)", groupThousands(fmt.Sprint(deep.far.ok)))
	measured := fmt.Sprintf("measured: deliveries due over %v at %d/s, delay %v", b.opts.precisionWindow, deep.perSecond, deep.delay)
	return []row{
		soloRow(mode, fmt.Sprintf("filling far ahead: accepted (arrays of %d, %d clients)", perRequest, fillClients), "events/s", rate(deep.far.ok, deep.far.elapsed)),
		newRow(mode, measured, "count", float64(deep.measured.ok), float64(empty.measured.ok)),
		newRow(mode, "measured: posts lost (errors + shed)", "count", float64(deep.measured.errs+deep.shed), float64(empty.measured.errs+empty.shed)),
		newRow(mode, "queued when the first fell due "+vs, "deliveries", deep.queued, empty.queued),
		newRow(mode, "lateness (arrival - due) p50", "ms", dP50, eP50),
		newRow(mode, "lateness p99", "ms", dP99, eP99),
		newRow(mode, "lateness p99.9", "ms", dP999, eP999),
		newRow(mode, "lateness max", "ms", dMax, eMax),
		newRow(mode, "arrived before due", "count", float64(deep.early), float64(empty.early)),
		newRow(mode, "not arrived by the last due + 1m", "count", float64(deep.missing), float64(empty.missing)),
		newRow(mode, "arrivals from the far-ahead queue", "count", float64(deep.stray), float64(empty.stray)),
		newRow(mode, "sender CPU while delivering", "µs/event", perEventMicros(deep.cpu, deep.measured.ok), perEventMicros(empty.cpu, empty.measured.ok)),
		newRow(mode, "peak anonymous RSS while delivering", "MiB", mib(deep.peakAnon), mib(empty.peakAnon)),
		newRow(mode, "other processes' CPU while delivering", "cores", deep.others, empty.others),
	}, nil
}

// precisionRun runs the precision sequence in a directory of its own with
// far events queued 72 hours ahead first (0: none).
func (b *bench) precisionRun(ctx context.Context, name string, far int64) (precisionFigures, error) {
	var f precisionFigures
	dir, err := b.dir(name)
	if err != nil {
		return f, err
	}
	rcv, err := startReceiver(false)
	if err != nil {
		return f, err
	}
	defer rcv.close()
	want := int64(b.opts.precisionEvents)
	f.perSecond = int(math.Ceil(float64(want) / b.opts.precisionWindow.Seconds()))
	// openLoop sends floor(rate × duration) events: aim half an event past
	// want so rounding does not drop the last.
	postFor := time.Duration((float64(want) + 0.5) / float64(f.perSecond) * float64(time.Second))
	f.delay = (postFor + precisionLead).Round(time.Millisecond)
	d, err := b.startDaemon(ctx, dir,
		hookSettings{url: rcv.url, delay: f.delay, timeout: 10 * time.Second, concurrency: b.opts.concurrency},
		hookSettings{id: "far", events: "[Lead Update]", url: rcv.url, delay: 72 * time.Hour, timeout: 10 * time.Second, concurrency: 4})
	if err != nil {
		return f, err
	}
	defer d.stop()

	if far > 0 {
		if f.far, err = b.fill(ctx, d, "queued far ahead", "Lead Update", farBase, far, nil); err != nil {
			return f, err
		}
		if _, err := b.settle(ctx, d.pid()); err != nil {
			return f, err
		}
	}

	// The measured set, paced so that due times spread evenly.
	b.logf("%s: posting %d events at %d/s, due %v after their 202", name, want, f.perSecond, f.delay)
	dues := make([]atomic.Int64, want+2) // n -> due, Unix nanoseconds
	f.measured, f.shed = openLoop(ctx, f.perSecond, postFor, 1024, func(n int64) error {
		body, err := postRead(ctx, d.client, "http://sidehook/v1/events", eventRequest(eventData(n, time.Now(), b.opts.size)), http.StatusAccepted)
		if err != nil {
			return err
		}
		var a answer
		if err := json.Unmarshal(body, &a); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		if len(a.Deliveries) != 1 || n >= int64(len(dues)) {
			return fmt.Errorf("event %d: %d deliveries in the answer", n, len(a.Deliveries))
		}
		dues[n].Store(a.Deliveries[0].DueAt.UnixNano())
		return nil
	})
	if err := ctx.Err(); err != nil {
		return f, err
	}
	if f.measured.errs > 0 || f.shed > 0 {
		b.logf("%s: %d posts failed (last: %v), %d shed", name, f.measured.errs, f.measured.lastErr, f.shed)
	}
	var first, last int64
	for i := range dues {
		if due := dues[i].Load(); due != 0 {
			if first == 0 || due < first {
				first = due
			}
			last = max(last, due)
		}
	}
	if first == 0 {
		return f, fmt.Errorf("no measured event was accepted (last error: %v; log: %s)", f.measured.lastErr, d.log)
	}
	if untilFirst := time.Until(time.Unix(0, first)); untilFirst < 0 {
		b.logf("%s: posting ran %v past the first due time; lateness includes load", name, -untilFirst.Round(time.Millisecond))
	}
	m, err := d.metrics(ctx, "sidehook_queue_depth")
	if err != nil {
		return f, err
	}
	f.queued = m["sidehook_queue_depth"]

	// Delivery: wait for every accepted event, at most a minute past the
	// last due time.
	before, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return f, err
	}
	anon := b.watchAnon(d.pid())
	meter, err := b.startCPUMeter(d.pid())
	if err != nil {
		return f, err
	}
	progressCtx, stopProgress := context.WithCancel(ctx)
	go b.progress(progressCtx, "arrived", func() int64 { return int64(rcv.distinct()) })
	deadline := time.Unix(0, last).Add(time.Minute)
	for int64(rcv.distinct()) < f.measured.ok && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	f.lastDueAge = time.Since(time.Unix(0, last))
	stopProgress()
	f.peakAnon = anon()
	after, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return f, err
	}
	f.cpu = after.cpu - before.cpu
	if f.others, err = meter.others(); err != nil {
		return f, err
	}
	if err := ctx.Err(); err != nil {
		return f, err
	}
	if err := d.stop(); err != nil {
		return f, err
	}

	late := make(map[int64][]time.Duration) // second after the first due -> lateness
	for n, at := range rcv.arrivals() {
		if n < 1 || n >= int64(len(dues)) || dues[n].Load() == 0 {
			f.stray++
			continue
		}
		due := dues[n].Load()
		l := time.Duration(at - due)
		if l < 0 {
			f.early++
		}
		f.lateness = append(f.lateness, l)
		sec := (due - first) / int64(time.Second)
		late[sec] = append(late[sec], l)
	}
	b.logLateSeconds(late)
	f.missing = f.measured.ok - int64(len(f.lateness))
	p50, p99, mx := latencies(f.lateness)
	b.logf("%s: %d of %d arrived (wait ended %v after the last due time); lateness p50 %.2f ms, p99 %.2f ms, max %.1f ms; %d early",
		name, len(f.lateness), f.measured.ok, f.lastDueAge.Round(time.Millisecond), p50, p99, mx, f.early)
	return f, nil
}

// logLateSeconds logs, for each second of due times (from the first) in
// which a delivery was over 50ms late, how many were and the worst, so
// that lateness can be matched to what the daemon was doing then.
func (b *bench) logLateSeconds(late map[int64][]time.Duration) {
	const slow = 50 * time.Millisecond
	for _, sec := range slices.Sorted(maps.Keys(late)) {
		n, worst := 0, time.Duration(0)
		for _, l := range late[sec] {
			if l > slow {
				n++
			}
			worst = max(worst, l)
		}
		if n > 0 {
			b.logf("due at +%ds: %d of %d over %v late, worst %v", sec, n, len(late[sec]), slow, worst.Round(time.Millisecond))
		}
	}
}
