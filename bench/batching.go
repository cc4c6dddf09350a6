package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// batchRequest is one request the batch receiver answered.
type batchRequest struct {
	at time.Time
	ns []int64 // the "n" of each event in the body, in order
}

// batchReceiver answers 200 at once to every request and records, for
// each, when it arrived and the events in its body (a JSON array of
// eventData objects).
type batchReceiver struct {
	srv *http.Server
	url string

	mu       sync.Mutex
	requests []batchRequest
	events   int64 // events in all requests, duplicates included
	bad      int64 // bodies that were not an array of eventData
}

// startBatchReceiver listens on a loopback port.
func startBatchReceiver() (*batchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for batch receiver: %w", err)
	}
	r := &batchReceiver{url: "http://" + ln.Addr().String() + "/batch"}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
	return r, nil
}

// close stops the receiver's server.
func (r *batchReceiver) close() { r.srv.Close() }

// ServeHTTP records a request and answers 200.
func (r *batchReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	at := time.Now()
	var items []struct {
		N *int64 `json:"n"`
	}
	err = json.Unmarshal(body, &items)
	ns := make([]int64, 0, len(items))
	for _, it := range items {
		if it.N == nil {
			err = fmt.Errorf("an element has no n")
			break
		}
		ns = append(ns, *it.N)
	}
	r.mu.Lock()
	if err != nil || len(ns) == 0 {
		r.bad++
	} else {
		r.requests = append(r.requests, batchRequest{at: at, ns: ns})
		r.events += int64(len(ns))
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// seen returns how many events have arrived, duplicates included.
func (r *batchReceiver) seen() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events
}

// snapshot returns a copy of the requests and the bad bodies' count.
func (r *batchReceiver) snapshot() ([]batchRequest, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests), r.bad
}

// batching measures activity-event batching: --batch-events Lead Activity
// Creation events are posted (arrays of perRequest, fillClients workers)
// as fast as the daemon takes them, well inside one --batch-window, to a
// webhook with batch: {window: --batch-window, max: --batch-max} and no
// delay, whose receiver answers 200 at once.
//
// In sidehook a batch's window opens with its first event: it goes out
// when it holds max events (at once) or when its window closes. So the
// events should arrive as full batches while they are posted and one last
// partial batch (events mod max; with the defaults 100,000 mod 1,024 =
// 672) when its window closes. Each event's 202 names its batch and that
// batch's due time (for a batch that filled, the moment it filled); the
// daemon's own clock, so the figures need no guess at a send time.
// Reported: the batches and their sizes (every one max except the last),
// the time from the last batch's due time, its window's close, to its
// arrival (target under 1 s), the same for the batches that filled, and
// whether every event arrived exactly once, in the batch its 202 named.
func (b *bench) batching(ctx context.Context) ([]row, error) {
	const mode = "batching"
	dir, err := b.dir(mode)
	if err != nil {
		return nil, err
	}
	rcv, err := startBatchReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	batchMax, window := b.opts.batchMax, b.opts.batchWindow
	d, err := b.startDaemon(ctx, dir, hookSettings{
		id: "activity", events: "[Lead Activity Creation]", url: rcv.url,
		timeout: 10 * time.Second, concurrency: b.opts.concurrency,
		batch: fmt.Sprintf("{window: %s, max: %d}", window, batchMax),
	})
	if err != nil {
		return nil, err
	}
	defer d.stop()

	total := int64(b.opts.batchEvents)
	batchOf := make([]string, total+1)  // n -> the delivery its 202 named
	dueOf := make(map[string]time.Time) // delivery -> the earliest due time a 202 gave it
	var mu sync.Mutex
	before, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	st, err := b.fill(ctx, d, "posted", "Lead Activity Creation", 1, total, func(first int64, answers []answer) {
		mu.Lock()
		defer mu.Unlock()
		for i, a := range answers {
			if len(a.Deliveries) != 1 {
				continue // counted below as an event without a batch
			}
			p := a.Deliveries[0]
			batchOf[first+int64(i)] = p.ID
			if due, ok := dueOf[p.ID]; !ok || p.DueAt.Before(due) {
				dueOf[p.ID] = p.DueAt
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if st.elapsed >= window {
		b.logf("posting took %v, longer than the %v window", st.elapsed.Round(time.Millisecond), window)
	}

	// Wait for every event, at most a minute past the last due time.
	var lastDue time.Time
	for _, due := range dueOf {
		if due.After(lastDue) {
			lastDue = due
		}
	}
	progressCtx, stopProgress := context.WithCancel(ctx)
	go b.progress(progressCtx, "arrived", rcv.seen)
	deadline := lastDue.Add(time.Minute)
	for rcv.seen() < st.ok && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stopProgress()
	// A little longer, so that a duplicate would be seen.
	time.Sleep(time.Second)
	after, err := readProc(d.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.stop(); err != nil {
		return nil, err
	}

	// Match requests to batches.
	reqs, bad := rcv.snapshot()
	slices.SortFunc(reqs, func(x, y batchRequest) int { return x.at.Compare(y.at) })
	var (
		times     = make([]int, total+1) // n -> times it arrived
		strays    int64                  // events that were never posted
		mixed     int                    // requests holding events of other batches
		repeats   int                    // requests for a batch that had arrived already
		arrivedAt = map[string]time.Time{}
		sizeOf    = map[string]int{}
		order     []string // batches in order of first arrival
	)
	for _, r := range reqs {
		id := ""
		if r.ns[0] >= 1 && r.ns[0] <= total {
			id = batchOf[r.ns[0]]
		}
		for _, n := range r.ns {
			if n < 1 || n > total {
				strays++
				continue
			}
			times[n]++
			if batchOf[n] != id {
				mixed++
			}
		}
		if _, ok := arrivedAt[id]; ok {
			repeats++
			continue
		}
		arrivedAt[id] = r.at
		sizeOf[id] = len(r.ns)
		order = append(order, id)
	}
	var once, dup, missing int64
	for n := int64(1); n <= total; n++ {
		switch {
		case batchOf[n] == "":
			// not accepted: fill already failed the run
		case times[n] == 0:
			missing++
		case times[n] == 1:
			once++
		default:
			dup += int64(times[n] - 1)
		}
	}
	full, other := 0, 0
	var filledLate []time.Duration
	var lastSize int
	var lastLate time.Duration
	for i, id := range order {
		late := arrivedAt[id].Sub(dueOf[id])
		if i == len(order)-1 {
			lastSize, lastLate = sizeOf[id], late
			if sizeOf[id] == batchMax {
				full++
			}
			continue
		}
		filledLate = append(filledLate, late)
		if sizeOf[id] == batchMax {
			full++
		} else {
			other++
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("no batch arrived (log: %s)", d.log)
	}
	if mixed > 0 || repeats > 0 || bad > 0 || strays > 0 {
		b.logf("%d events in another batch than their 202 named, %d repeated batches, %d unreadable bodies, %d unknown events", mixed, repeats, bad, strays)
	}
	// A last batch that filled went out at once, not at its window's close.
	dueLabel := "its window closed"
	if lastSize == batchMax {
		dueLabel = "it filled"
	}
	b.logf("%d batches: %d of %d, %d of another size, the last of %d arrived %v after %s",
		len(order), full, batchMax, other, lastSize, lastLate.Round(time.Millisecond), dueLabel)
	fP50, fP99, fMax := latencies(filledLate)
	want := (st.ok + int64(batchMax) - 1) / int64(batchMax)
	wantLast := st.ok % int64(batchMax)
	if wantLast == 0 {
		wantLast = int64(batchMax)
	}
	return []row{
		soloRow(mode, fmt.Sprintf("events accepted (window %v, max %d)", window, batchMax), "events", float64(st.ok)),
		soloRow(mode, "posting took (should be inside one window)", "ms", ms(st.elapsed)),
		soloRow(mode, "posting: accepted", "events/s", rate(st.ok, st.elapsed)),
		newRow(mode, "batches received (baseline: ceil(events / max))", "count", float64(len(order)), float64(want)),
		soloRow(mode, fmt.Sprintf("batches of %d events", batchMax), "count", float64(full)),
		soloRow(mode, "batches of another size, not the last", "count", float64(other)),
		newRow(mode, "last batch: size (baseline: what is left for it)", "events", float64(lastSize), float64(wantLast)),
		soloRow(mode, "last batch: "+strings.TrimPrefix(dueLabel, "its ")+" -> arrival", "ms", ms(lastLate)),
		soloRow(mode, "full batches: filled -> arrival p50", "ms", fP50),
		soloRow(mode, "full batches: filled -> arrival p99", "ms", fP99),
		soloRow(mode, "full batches: filled -> arrival max", "ms", fMax),
		newRow(mode, "events delivered exactly once (baseline: accepted)", "events", float64(once), float64(st.ok)),
		soloRow(mode, "events delivered more than once (extra copies)", "count", float64(dup)),
		soloRow(mode, "events never delivered", "count", float64(missing)),
		soloRow(mode, "events in another batch than their 202 named", "count", float64(mixed)),
		soloRow(mode, "repeated batches", "count", float64(repeats)),
		soloRow(mode, "daemon CPU, posting to last arrival", "µs/event", perEventMicros(after.cpu-before.cpu, st.ok)),
	}, nil
}
