package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// eventData is the data of event n sent at t: exactly size bytes of JSON,
// `{"n":N,"t":UNIXNANO,"pad":"xxx…"}`.
func eventData(n int64, t time.Time, size int) []byte {
	b := make([]byte, 0, size)
	b = append(b, `{"n":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, t.UnixNano(), 10)
	b = append(b, `,"pad":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// eventRequest wraps data in a Lead Creation event for POST /v1/events.
func eventRequest(data []byte) []byte {
	b := make([]byte, 0, len(data)+40)
	b = append(b, `{"event":"Lead Creation","data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// parseData reads n and t back from eventData's output.
func parseData(b []byte) (n, t int64, ok bool) {
	num := func(key string) (int64, bool) {
		i := bytes.Index(b, []byte(key))
		if i < 0 {
			return 0, false
		}
		rest := b[i+len(key):]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
		return v, err == nil
	}
	n, ok1 := num(`"n":`)
	t, ok2 := num(`"t":`)
	return n, t, ok1 && ok2
}

// post sends body to url with client and reports whether it got want.
func post(ctx context.Context, client *http.Client, url string, body []byte, want int) error {
	_, err := postRead(ctx, client, url, body, want)
	return err
}

// postRead is post that also returns the answer's body.
func postRead(ctx context.Context, client *http.Client, url string, body []byte, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return b, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	if err != nil {
		return b, fmt.Errorf("read answer: %w", err)
	}
	return b, nil
}

// loadStats is what a load run saw.
type loadStats struct {
	ok      int64
	errs    int64
	elapsed time.Duration
	lat     []time.Duration // latency of each successful send
	at      []time.Duration // when each of lat's sends started, from the start (open loop only)
	lastErr error
}

// closedLoop runs clients workers; each takes the next n (from 1) and calls
// send until the deadline passes or n exceeds limit (0 = no limit).
func closedLoop(ctx context.Context, clients int, deadline time.Time, limit int64, send func(n int64) error) loadStats {
	var (
		next atomic.Int64
		mu   sync.Mutex
		st   loadStats
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			var lat []time.Duration
			var ok, errs int64
			var lastErr error
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := next.Add(1)
				if limit > 0 && n > limit {
					break
				}
				t0 := time.Now()
				if err := send(n); err != nil {
					errs++
					lastErr = err
					continue
				}
				lat = append(lat, time.Since(t0))
				ok++
			}
			mu.Lock()
			st.ok += ok
			st.errs += errs
			st.lat = append(st.lat, lat...)
			if lastErr != nil {
				st.lastErr = lastErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return st
}

// openLoop calls send(n) for n = 1, 2, … at rate per second for d, each in
// its own goroutine, whether or not earlier sends have returned (an offered
// load, not a closed loop), and records the latency of each successful
// send and when it started. At most maxInFlight sends run at once; a send
// due while all are busy is skipped and counted as shed.
func openLoop(ctx context.Context, rate int, d time.Duration, maxInFlight int, send func(n int64) error) (st loadStats, shed int64) {
	total := int64(float64(rate) * d.Seconds())
	sem := make(chan struct{}, maxInFlight)
	var (
		ok, errs atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	start := time.Now()
	for n := int64(1); n <= total && ctx.Err() == nil; {
		due := int64(time.Since(start).Seconds()*float64(rate)) + 1
		for ; n <= total && n <= due; n++ {
			select {
			case sem <- struct{}{}:
				i := n // n changes as the inner loop advances
				wg.Go(func() {
					defer func() { <-sem }()
					t0 := time.Now()
					err := send(i)
					lat := time.Since(t0)
					at := t0.Sub(start)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs.Add(1)
						st.lastErr = err
						return
					}
					st.lat = append(st.lat, lat)
					st.at = append(st.at, at)
					ok.Add(1)
				})
			default:
				shed++
			}
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	st.ok, st.errs = ok.Load(), errs.Load()
	return st, shed
}

// receiver is the webhook's URL (and the bare client's): it answers 200 to
// every request once its gate is open, and records the first arrival time
// of each event's n and the latency from the send time in its body.
type receiver struct {
	srv  *http.Server
	url  string
	gate chan struct{} // requests wait until it is closed
	open sync.Once

	mu      sync.Mutex
	arrived map[int64]int64 // n -> first arrival, Unix nanoseconds
	sendLat []time.Duration // arrival - send time in the body, first arrivals
	total   int64           // requests answered
	bad     int64           // bodies that were not eventData
	target  int             // distinct events that close done
	done    chan struct{}
}

// startReceiver listens on a loopback port; the gate starts closed when
// gated is set.
func startReceiver(gated bool) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for receiver: %w", err)
	}
	r := &receiver{
		url:  "http://" + ln.Addr().String() + "/hook",
		gate: make(chan struct{}),
	}
	r.reset(0)
	if !gated {
		r.openGate()
	}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
	return r, nil
}

// reset forgets every arrival; done closes once target distinct events
// have arrived (never when target is 0).
func (r *receiver) reset(target int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.arrived = make(map[int64]int64, target)
	r.sendLat = r.sendLat[:0]
	r.total, r.bad = 0, 0
	r.target = target
	r.done = make(chan struct{})
}

func (r *receiver) openGate() { r.open.Do(func() { close(r.gate) }) }

func (r *receiver) close() { r.srv.Close() }

// doneCh returns the channel that closes when the target is reached.
func (r *receiver) doneCh() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// arrivals returns a copy of the first arrival time of each event.
func (r *receiver) arrivals() map[int64]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int64]int64, len(r.arrived))
	for k, v := range r.arrived {
		m[k] = v
	}
	return m
}

// sendLatencies returns a copy of the send-to-arrival latencies.
func (r *receiver) sendLatencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.sendLat...)
}

// distinct returns how many distinct events have arrived.
func (r *receiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.arrived)
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	select {
	case <-r.gate:
	case <-req.Context().Done():
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	now := time.Now()
	n, t, ok := parseData(body)
	r.mu.Lock()
	r.total++
	if !ok {
		r.bad++
	} else if _, seen := r.arrived[n]; !seen {
		r.arrived[n] = now.UnixNano()
		r.sendLat = append(r.sendLat, now.Sub(time.Unix(0, t)))
		if len(r.arrived) == r.target {
			close(r.done)
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// bareResult is what post-bare prints on stdout.
type bareResult struct {
	Sent      int64  `json:"sent"`
	Errors    int64  `json:"errors"`
	Shed      int64  `json:"shed"`
	ElapsedNS int64  `json:"elapsed_ns"`
	LastError string `json:"last_error,omitempty"`
}

// postBare is the hidden post-bare mode: a bare net/http client posting
// eventData bodies to a URL, either --count of them from --concurrency
// workers, or at --rate per second for --duration.
func postBare(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("post-bare", flag.ContinueOnError)
	url := fs.String("url", "", "where to post")
	conc := fs.Int("concurrency", 64, "workers (closed loop) or most sends in flight (open loop)")
	count := fs.Int64("count", 0, "requests to send (closed loop)")
	rate := fs.Int("rate", 0, "requests per second (open loop, with --duration)")
	dur := fs.Duration("duration", 0, "how long to send at --rate")
	size := fs.Int("size", 1024, "bytes of each body")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConns: *conc, MaxIdleConnsPerHost: *conc},
	}
	send := func(n int64) error {
		return post(ctx, client, *url, eventData(n, time.Now(), *size), http.StatusOK)
	}
	var st loadStats
	var shed int64
	if *rate > 0 {
		st, shed = openLoop(ctx, *rate, *dur, *conc, send)
	} else {
		st = closedLoop(ctx, *conc, time.Now().Add(24*time.Hour), *count, send)
	}
	res := bareResult{Sent: st.ok, Errors: st.errs, Shed: shed, ElapsedNS: int64(st.elapsed)}
	if st.lastErr != nil {
		res.LastError = st.lastErr.Error()
	}
	return json.NewEncoder(stdout).Encode(res)
}
