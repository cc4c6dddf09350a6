// Command bench measures the sidehook binary on the machine it runs on and
// prints each figure beside a bare baseline measured in the same run, and
// their ratio. The numbers in the README come from it.
//
// Usage, from the module root:
//
//	go run ./bench [flags]
//	go run ./bench --modes ingest --duration 5s
//	go run ./bench --modes delivery --events 20000 --json bench.json
//	go run ./bench --modes depth,precision,batching --events 50000
//
// It builds the binary (or takes --bin), runs it as a subprocess on a
// temporary data directory under --dir, and measures:
//
//   - ingest: events/s that --clients concurrent clients get answered 202
//     over the Unix socket for --duration, with --size byte events, and the
//     202 latency. The webhook has a 1h delay so no delivery competes.
//     Baseline: the same load against a no-op HTTP handler on a Unix socket
//     served by a subprocess (this binary re-executed as "serve-noop").
//   - delivery: --events events are queued first while the receiver holds
//     every request at a closed gate (the webhook's --concurrency attempts
//     wait there, with a long timeout; the rest wait in the store, with no
//     failed attempt and no retry). The gate then opens and the figure is
//     events / time from gate open until the receiver has seen each event.
//     Baseline: a bare net/http client in a subprocess ("post-bare") posting
//     the same bodies to the same receiver at the same concurrency.
//   - e2e: an open-loop offered load of --rate events/s for --duration with
//     no delay. The receiver reads each event's "n" and send time from its
//     body; latency p50/p99/max runs from the send to arrival (beside the
//     baseline's) and from the 202 to arrival (an event may arrive before
//     its client has read the 202; that counts as 0 and is counted). Also
//     the in_queue depth over the run (from GET /v1/webhooks) and how long
//     the queue took to drain once the load stopped. Baseline: post-bare
//     sending the same bodies straight to the receiver at the same rate.
//   - depth: what a deep queue costs. The same sequence runs on an empty
//     store (the baseline column) and after queueing --depth deliveries
//     due in 24h (arrays of 500 events per POST): memory (RssAnon, VmHWM,
//     Go heap) once the daemon is quiet and again after an idle period
//     and a forced GC, the data directory's bytes on disk; SIGTERM, then a
//     restart on the same data directory timed from process start to
//     /readyz 200, with its memory; the ingest mode's load for --duration
//     (target: at least 0.8 of the empty store's events/s); and the
//     delivery mode's drain of --events events queued behind a gate for a
//     second, undelayed webhook.
//   - precision: how punctually delayed deliveries go out from a deep
//     queue. --depth minus --precision-events deliveries are queued 72h
//     ahead, then --precision-events are posted one by one at an even
//     rate so that their due times spread over --precision-window, all in
//     the queue before the first falls due. Lateness is each arrival at
//     the receiver minus the due_at the daemon answered with; p50, p99
//     (target under 50 ms), p99.9, max and early arrivals, beside the same
//     run without the far-ahead queue.
//   - batching: --batch-events activity events posted inside one window
//     to a webhook with batch {window: --batch-window, max: --batch-max}:
//     the batches and their sizes (max, but the last), the time from the
//     last batch's window close to its arrival (target under 1 s), and
//     that every event arrived exactly once, in the batch its 202 named.
//     The run lasts about one window.
//   - outage: --outage-events events queued for a receiver that refuses
//     connections, circuit breaker open, for --outage-duration; then the
//     receiver comes back and the queue drains. Memory, CPU, disk and the
//     queue every --outage-sample, to a CSV (see outage.go).
//
// For every sidehook run it also reports the daemon's CPU time per event
// (utime+stime from /proc/PID/stat) and its peak RSS (VmHWM from
// /proc/PID/status), and the same for the baseline process where there is
// one. VmHWM counts the store's memory-mapped files, which the kernel can
// drop at will, so the peak anonymous RSS (RssAnon, sampled every 100ms)
// is shown too. The machine (CPU model, cores, Go version, kernel, the
// file system of the data directory and what a 1 KiB append plus fsync
// costs there, the floor under every 202) heads the output; --json FILE
// writes everything as JSON. With --keep, CPU profiles of the daemon over
// the ingest load and the first seconds of the delivery drain
// (--profile-drain, 2 s) stay in those runs' directories
// (ingest-cpu.pprof, delivery-cpu.pprof). The figures are only as quiet
// as the machine: run it with nothing else busy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	bin         string
	modes       []string
	clients     int
	duration    time.Duration
	events      int
	concurrency int
	rate        int
	size        int
	jsonPath    string
	dir         string
	keep        bool
	// drainProfile is how much of the delivery drain, from its start,
	// the --keep profile covers.
	drainProfile time.Duration

	depth           int           // depth, precision: deliveries queued
	precisionEvents int           // precision: measured deliveries
	precisionWindow time.Duration // precision: their due times' spread
	batchEvents     int           // batching: events posted
	batchMax        int           // batching: the webhook's batch max
	batchWindow     time.Duration // batching: the webhook's batch window
	outage          outageOptions // outage: see outage.go
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run dispatches to a hidden helper mode or runs the benchmarks.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve-noop":
			return serveNoop(ctx, args[1:])
		case "post-bare":
			return postBare(ctx, args[1:], stdout)
		}
	}
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return benchmark(ctx, opts, stdout, stderr)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: go run ./bench [flags]

Measures the sidehook binary (ingest, delivery, end-to-end latency) against
bare baselines run in the same process tree, and prints a table.

flags:
`)
		fs.PrintDefaults()
	}
	modes := fs.String("modes", "ingest,delivery,e2e", "comma-separated benchmarks to run: ingest, delivery, e2e, depth, precision, batching, outage")
	fs.StringVar(&o.bin, "bin", "", "sidehook binary to measure (default: go build the module in the current directory)")
	fs.IntVar(&o.clients, "clients", 64, "concurrent clients posting events (ingest, and filling the delivery queue)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long the ingest and e2e loads run")
	fs.IntVar(&o.events, "events", 200_000, "events queued before the delivery run")
	fs.IntVar(&o.concurrency, "concurrency", 64, "the webhook's concurrency, and the bare client's")
	fs.IntVar(&o.rate, "rate", 1000, "offered events/s in the e2e run")
	fs.IntVar(&o.size, "size", 1024, "bytes of each event's data")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results to this file as JSON")
	fs.StringVar(&o.dir, "dir", os.TempDir(), "where the temporary data directories go (its file system matters)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directories (configs, logs, stores)")
	fs.DurationVar(&o.drainProfile, "profile-drain", 2*time.Second, "with --keep: how much of the delivery drain, from its start, the CPU profile covers (the first seconds hold the compactions the fill left)")
	fs.IntVar(&o.depth, "depth", 1_000_000, "deliveries queued in the depth and precision runs")
	fs.IntVar(&o.precisionEvents, "precision-events", 100_000, "precision: deliveries measured, part of --depth")
	fs.DurationVar(&o.precisionWindow, "precision-window", time.Minute, "precision: the window their due times spread over")
	fs.IntVar(&o.batchEvents, "batch-events", 100_000, "batching: activity events posted inside one window")
	fs.IntVar(&o.batchMax, "batch-max", 1024, "batching: the webhook's batch max")
	fs.DurationVar(&o.batchWindow, "batch-window", time.Minute, "batching: the webhook's batch window")
	addOutageFlags(fs, &o.outage)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	for m := range strings.SplitSeq(*modes, ",") {
		m = strings.TrimSpace(m)
		switch m {
		case "ingest", "delivery", "e2e", "depth", "precision", "batching", "outage":
			o.modes = append(o.modes, m)
		case "":
		default:
			return o, fmt.Errorf("unknown mode %q (want ingest, delivery, e2e, depth, precision, batching or outage)", m)
		}
	}
	switch {
	case len(o.modes) == 0:
		return o, errors.New("--modes names no benchmark")
	case o.clients < 1, o.concurrency < 1, o.events < 1, o.rate < 1:
		return o, errors.New("--clients, --concurrency, --events and --rate must be positive")
	case o.duration <= 0:
		return o, errors.New("--duration must be positive")
	case o.size < 64:
		return o, errors.New("--size must be at least 64 bytes")
	case o.depth < 1, o.precisionEvents < 1, o.batchEvents < 1, o.batchMax < 1:
		return o, errors.New("--depth, --precision-events, --batch-events and --batch-max must be positive")
	case o.precisionWindow <= 0, o.batchWindow <= 0:
		return o, errors.New("--precision-window and --batch-window must be positive")
	}
	return o, nil
}

// benchmark runs the selected modes and reports.
func benchmark(ctx context.Context, o options, stdout, stderr io.Writer) error {
	work, err := os.MkdirTemp(o.dir, "sidehook-bench-")
	if err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	if o.keep {
		fmt.Fprintf(stderr, "bench: keeping %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	if o.bin == "" {
		o.bin, err = buildSidehook(ctx, work)
		if err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	m := describeMachine(work)
	fmt.Fprintln(stdout, m)

	b := &bench{opts: o, work: work, bin: o.bin, self: self, log: stderr, clkTck: clockTicks(ctx)}
	res := results{Machine: m, Rows: []row{}}
	for _, mode := range o.modes {
		fmt.Fprintf(stderr, "bench: %s…\n", mode)
		var rows []row
		switch mode {
		case "ingest":
			rows, err = b.ingest(ctx)
		case "delivery":
			rows, err = b.delivery(ctx)
		case "e2e":
			rows, err = b.e2e(ctx)
		case "depth":
			rows, err = b.depth(ctx)
		case "precision":
			rows, err = b.precision(ctx)
		case "batching":
			rows, err = b.batching(ctx)
		case "outage":
			rows, err = b.outage(ctx)
		}
		res.Rows = append(res.Rows, rows...)
		if err != nil {
			printTable(stdout, res.Rows)
			return fmt.Errorf("%s: %w", mode, err)
		}
		// Leave the next mode a quiet disk: no store of this one's left to
		// write back.
		if !o.keep {
			os.RemoveAll(filepath.Join(work, mode))
		}
		syscall.Sync()
	}
	printTable(stdout, res.Rows)
	if o.jsonPath != "" {
		if err := res.write(o.jsonPath); err != nil {
			return err
		}
	}
	return nil
}

// bench holds what every benchmark mode needs.
type bench struct {
	opts   options
	work   string // temporary directory for this run
	bin    string // the sidehook binary
	self   string // this program, re-executed for the baselines
	log    io.Writer
	clkTck int64 // clock ticks per second of /proc/PID/stat
}

// dir creates a fresh directory for one run under the work dir.
func (b *bench) dir(name string) (string, error) {
	d := filepath.Join(b.work, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", d, err)
	}
	return d, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench:   "+format+"\n", args...)
}
