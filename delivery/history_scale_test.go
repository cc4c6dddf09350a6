package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

// The history scale test checks the issue target: with millions of
// finished deliveries stored, a webhook's newest page and one delivery
// open in well under 10 ms, and the disk a finished delivery takes is
// given back after the retention. It is slow and writes gigabytes, so it
// runs only when asked:
//
//	SIDEHOOK_HISTORY_RECORDS=10000000 go test -run HistoryScale -v -timeout 60m ./delivery/
//
// SIDEHOOK_HISTORY_DIR puts the store somewhere else than the test's
// temporary directory (it must not exist or be empty; it is kept).
// SIDEHOOK_HISTORY_SAMPLES sets the samples per measure (default 2000).
// SIDEHOOK_HISTORY_EXPIRE_MINUTES bounds the retention sweep (default 30).
// SIDEHOOK_HISTORY_DROP_CACHES=1 drops the kernel's page cache before the
// reads (root only; it slows everything else on the machine for a while).
//
// Timings are logged, never checked: the machine may be shared.

// historyTypes are the event types of the history webhooks, one each, so
// that every event makes exactly one delivery with its own body.
var historyTypes = []string{"Lead_Post_Create", "Lead_Post_Update", "Lead_Post_Delete", "Opportunity_Post_Create"}

// historyHooks returns one webhook per history type, all posting to url.
func historyHooks(url string) []*config.Webhook {
	var hooks []*config.Webhook
	for i, et := range historyTypes {
		hooks = append(hooks, hook(fmt.Sprintf("hist-%d", i), url, et))
	}
	return hooks
}

// kibData is event data of exactly 1 KiB.
func kibData(i int) json.RawMessage {
	head := fmt.Sprintf(`{"ProspectID":"%010d","Notes":"`, i)
	return json.RawMessage(head + strings.Repeat("x", 1024-len(head)-2) + `"}`)
}

// historySample is a delivery the builder kept aside for the reads.
type historySample struct {
	id, webhook string
}

// historyBuilder fills a store with finished deliveries the way the
// engine makes them, without the network: an ingest op staged by
// stageEvent (as Ingest does), then a finish op staged by stageOutcome
// (as Engine.finish does) with the attempt a real HTTP send recorded, its
// request body replaced by the delivery's own body (encodeBody, as
// Engine.body makes it). Both ops go through the store's writer, so
// records, indexes, counts, events and attempts are the engine's own, and
// every delivery passes through the queued state in one transaction and
// leaves it in a later one, as in the daemon. The only difference is that
// many deliveries share each op, and ingest ops are not fsync'd.
type historyBuilder struct {
	e     *Engine
	hooks map[string]*config.Webhook
	types []config.EventType
	// tpl is a real successful attempt per webhook.
	tpl map[string]outcome
}

func newHistoryBuilder(tb testing.TB, e *Engine) *historyBuilder {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	cfg := e.Config()
	b := &historyBuilder{e: e, hooks: map[string]*config.Webhook{}, tpl: map[string]outcome{}}
	for _, wh := range cfg.Webhooks {
		et, ok := cfg.Catalog.Lookup(wh.Events[0])
		if !ok {
			tb.Fatalf("no event type %q", wh.Events[0])
		}
		b.hooks[wh.ID] = wh
		b.types = append(b.types, et)
		// The template is sent to the local receiver; the URL recorded is
		// the webhook's own.
		local := *wh
		local.URL = srv.URL
		oc := e.http.send(context.Background(), &Message{Delivery: "dlv_template", Webhook: &local,
			EventType: et.Code, Body: kibData(0), N: 1})
		if !oc.ok {
			tb.Fatalf("template attempt for %s failed: %s", wh.ID, oc.attempt.Error)
		}
		oc.attempt.Request.URL = targetURL(wh.URL, wh.ID, et.Code)
		b.tpl[wh.ID] = oc
	}
	return b
}

// outcomeFor is the webhook's template attempt carrying body, made at.
func (b *historyBuilder) outcomeFor(webhook string, body []byte, at time.Time) outcome {
	oc := b.tpl[webhook]
	req := *oc.attempt.Request
	req.Body = string(body)
	oc.attempt.Request = &req
	oc.attempt.At = at
	oc.sentEvents(body, b.hooks[webhook].ContentType) // as Engine.send does
	return oc
}

// build adds n finished deliveries, event i going to webhook i mod 4; it
// keeps every stride-th delivery in the returned sample.
func (b *historyBuilder) build(tb testing.TB, n, stride int, progress func(done int)) ([]historySample, error) {
	e := b.e
	// An op stays under half the writer's transaction budget, so that
	// two fit in one commit.
	const perDelivery = 1300 // staged bytes of the ingest op, the larger one
	chunk := max(1, int(e.store.maxBytes/2/perDelivery))
	var (
		next    atomic.Int64
		done    atomic.Int64
		mu      sync.Mutex
		samples []historySample
		firstMu sync.Mutex
		first   error
		wg      sync.WaitGroup
	)
	fail := func(err error) {
		firstMu.Lock()
		if first == nil {
			first = err
		}
		firstMu.Unlock()
	}
	failed := func() bool {
		firstMu.Lock()
		defer firstMu.Unlock()
		return first != nil
	}
	ctx := context.Background()
	lastReport := time.Now()
	var reportMu sync.Mutex
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			evs := make([]Incoming, 0, chunk)
			bodies := make([][]byte, 0, chunk)
			var acc []Accepted
			for !failed() {
				start := int(next.Add(int64(chunk))) - chunk
				if start >= n {
					return
				}
				end := min(start+chunk, n)
				evs, bodies = evs[:0], bodies[:0]
				for i := start; i < end; i++ {
					wh := b.hooks[fmt.Sprintf("hist-%d", i%len(b.types))]
					data := kibData(i)
					body, err := encodeBody(wh.ContentType, false, []json.RawMessage{data})
					if err != nil {
						fail(err)
						return
					}
					evs = append(evs, Incoming{Type: b.types[i%len(b.types)], Data: data})
					bodies = append(bodies, body)
				}
				// The writer may run an op again when it did not fit the
				// transaction: the closures start from scratch.
				err := e.store.do(ctx, false, func(w *wtx) error {
					cfg := e.cfg.Load()
					acc = acc[:0]
					for _, ev := range evs {
						acc = append(acc, e.stageEvent(w, cfg, ev))
					}
					return nil
				})
				if err != nil {
					fail(fmt.Errorf("ingest op: %w", err))
					return
				}
				at := time.Now()
				err = e.store.do(ctx, false, func(w *wtx) error {
					for j, a := range acc {
						if len(a.Deliveries) != 1 {
							return fmt.Errorf("event %s has %d deliveries, want 1", a.ID, len(a.Deliveries))
						}
						p := a.Deliveries[0]
						rec, ok, err := readRecord(w, p.ID)
						if err != nil {
							return err
						}
						if !ok {
							return fmt.Errorf("delivery %s not found in its finish op", p.ID)
						}
						if st := stageOutcome(w, rec, b.hooks[p.Webhook], b.outcomeFor(p.Webhook, bodies[j], at)); st != StatusSuccess {
							return fmt.Errorf("delivery %s ended %s, want success", p.ID, st)
						}
					}
					return nil
				})
				if err != nil {
					fail(fmt.Errorf("finish op: %w", err))
					return
				}
				var kept []historySample
				for j, a := range acc {
					if (start+j)%stride == 0 {
						kept = append(kept, historySample{a.Deliveries[0].ID, a.Deliveries[0].Webhook})
					}
				}
				mu.Lock()
				samples = append(samples, kept...)
				mu.Unlock()
				d := int(done.Add(int64(end - start)))
				if progress != nil {
					reportMu.Lock()
					report := time.Since(lastReport) > 30*time.Second || d == n
					if report {
						lastReport = time.Now()
					}
					reportMu.Unlock()
					if report {
						progress(d)
					}
				}
			}
		})
	}
	wg.Wait()
	return samples, first
}

// latencies collects the durations of one measure.
type latencies struct {
	name string
	d    []time.Duration
}

func (l *latencies) time(fn func() error) error {
	start := time.Now()
	err := fn()
	l.d = append(l.d, time.Since(start))
	return err
}

func (l *latencies) report(t *testing.T) {
	t.Helper()
	if len(l.d) == 0 {
		return
	}
	d := slices.Clone(l.d)
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	t.Logf("%-46s n=%-5d first=%-9s p50=%-9s p99=%-9s max=%-9s mean=%s", l.name, len(d),
		l.d[0].Round(time.Microsecond), at(0.50).Round(time.Microsecond), at(0.99).Round(time.Microsecond),
		d[len(d)-1].Round(time.Microsecond), (sum / time.Duration(len(d))).Round(time.Microsecond))
}

// diskUsage is what a store directory takes, by kind of file.
type diskUsage struct {
	sst, vlog, mem, other int64 // allocated bytes
	apparent              int64 // sum of file sizes
	files                 int
}

func (u diskUsage) total() int64 { return u.sst + u.vlog + u.mem + u.other }

func (u diskUsage) String() string {
	return fmt.Sprintf("%s on disk (sst %s, vlog %s, mem %s, other %s; %d files, apparent %s)",
		humanBytes(u.total()), humanBytes(u.sst), humanBytes(u.vlog), humanBytes(u.mem), humanBytes(u.other),
		u.files, humanBytes(u.apparent))
}

func measureDisk(t *testing.T, dir string) diskUsage {
	t.Helper()
	var u diskUsage
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // compacted or collected away during the walk
		}
		if err != nil || de.IsDir() {
			return err
		}
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		alloc := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			alloc = st.Blocks * 512
		}
		u.files++
		u.apparent += info.Size()
		switch filepath.Ext(path) {
		case ".sst":
			u.sst += alloc
		case ".vlog":
			u.vlog += alloc
		case ".mem":
			u.mem += alloc
		default:
			u.other += alloc
		}
		return nil
	})
	if err != nil {
		t.Errorf("measure %s: %v", dir, err)
	}
	return u
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

func dropCaches(t *testing.T) {
	t.Helper()
	if os.Getenv("SIDEHOOK_HISTORY_DROP_CACHES") != "1" {
		return
	}
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		t.Logf("drop page cache: %v (reads are only cold-ish)", err)
		return
	}
	t.Logf("dropped the page cache")
}

// openHistory opens an engine on dir without starting it: nothing is
// scheduled, and the reads and the expiry run only when the test asks.
func openHistory(t *testing.T, dir string, cfg *config.Config) *Engine {
	t.Helper()
	e, err := Open(cfg, Options{Dir: dir, UserAgent: "sidehook/test", MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func closeHistory(t *testing.T, e *Engine) {
	t.Helper()
	if err := e.Close(context.Background()); err != nil {
		t.Fatalf("close engine: %v", err)
	}
}

func TestHistoryScale(t *testing.T) {
	n := envInt(t, "SIDEHOOK_HISTORY_RECORDS", 0)
	if n == 0 {
		t.Skip("set SIDEHOOK_HISTORY_RECORDS (e.g. 10000000) to run the history scale test")
	}
	samples := envInt(t, "SIDEHOOK_HISTORY_SAMPLES", 2000)
	dir := os.Getenv("SIDEHOOK_HISTORY_DIR")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "data")
	} else if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("SIDEHOOK_HISTORY_DIR %s is not empty", dir)
	}
	hooks := historyHooks("https://crm.example.com/hooks/sidehook")
	cfg := testConfig(hooks...)
	cfg.HistoryRetention = config.DefaultHistoryRetention

	// Build.
	e := openHistory(t, dir, cfg)
	b := newHistoryBuilder(t, e)
	stride := max(1, n/(2*samples))
	start := time.Now()
	kept, err := b.build(t, n, stride, func(done int) {
		el := time.Since(start)
		t.Logf("built %d of %d deliveries in %s (%.0f/s); %s", done, n, el.Round(time.Second),
			float64(done)/el.Seconds(), measureDisk(t, dir))
	})
	if err != nil {
		closeHistory(t, e)
		t.Fatalf("build: %v", err)
	}
	buildTime := time.Since(start)
	for _, wh := range hooks {
		want := int64(n / len(hooks))
		if n%len(hooks) > int(wh.ID[len(wh.ID)-1]-'0') {
			want++
		}
		if c := e.Counts(wh.ID); c != (Counts{Success: want}) {
			t.Errorf("counts of %s = %+v, want %d successes", wh.ID, c, want)
		}
	}
	closeStart := time.Now()
	closeHistory(t, e)
	t.Logf("BUILD: %d finished deliveries (1 KiB body, 1 attempt, %d webhooks) in %s (%.0f deliveries/s); close (memtable flush) %s",
		n, len(hooks), buildTime.Round(time.Second), float64(n)/buildTime.Seconds(), time.Since(closeStart).Round(time.Millisecond))
	built := measureDisk(t, dir)
	t.Logf("DISK after build: %s", built)
	t.Logf("DISK per finished delivery: %.0f B (sst %.0f B, vlog %.0f B)", float64(built.total())/float64(n),
		float64(built.sst)/float64(n), float64(built.vlog)/float64(n))

	// Reads, on a store closed and opened again.
	dropCaches(t)
	openStart := time.Now()
	e = openHistory(t, dir, cfg)
	t.Logf("reopen: %s", time.Since(openStart).Round(time.Millisecond))
	readHistory(t, e, hooks, kept, samples)
	closeHistory(t, e)

	// Expiry: a retention that everything is past, then the engine's
	// retention sweep and value-log GC as maintain runs them.
	short := *cfg
	short.HistoryRetention = time.Nanosecond
	e = openHistory(t, dir, &short)
	left := func() int64 {
		var sum int64
		for _, wh := range hooks {
			c := e.Counts(wh.ID)
			sum += c.InQueue + c.Success + c.Failure
		}
		return sum
	}
	expLimit := time.Duration(envInt(t, "SIDEHOOK_HISTORY_EXPIRE_MINUTES", 30)) * time.Minute
	expCtx, cancel := context.WithTimeout(context.Background(), expLimit)
	expStart := time.Now()
	expired := make(chan struct{})
	go func() {
		defer close(expired)
		e.ExpireNow(expCtx)
	}()
	tick := time.NewTicker(30 * time.Second)
	prev, prevAt := int64(n), expStart
expiring:
	for {
		select {
		case <-expired:
			break expiring
		case now := <-tick.C:
			l := left()
			t.Logf("expiry: %d of %d expired after %s (%.0f/s over the last %s)", int64(n)-l, n,
				now.Sub(expStart).Round(time.Second), float64(prev-l)/now.Sub(prevAt).Seconds(), now.Sub(prevAt).Round(time.Second))
			prev, prevAt = l, now
		}
	}
	tick.Stop()
	cancel()
	expTime := time.Since(expStart)
	if l := left(); l > 0 {
		t.Logf("EXPIRE: stopped by the %s limit (SIDEHOOK_HISTORY_EXPIRE_MINUTES) with %d of %d deliveries still stored (%.0f expired/s)",
			expLimit, l, n, float64(int64(n)-l)/expTime.Seconds())
	} else {
		t.Logf("EXPIRE: ExpireNow took %s (%.0f deliveries/s)", expTime.Round(time.Millisecond), float64(n)/expTime.Seconds())
		if p, err := e.List(Query{Limit: 10}); err != nil || len(p.Deliveries) != 0 {
			t.Errorf("history after expiry: %d deliveries, err %v; want none", len(p.Deliveries), err)
		}
	}
	t.Logf("DISK after expiry, store open: %s", measureDisk(t, dir))
	gc := func(label string) {
		gcStart := time.Now()
		passes, err := daemonValueLogGC(e)
		t.Logf("GC %s: %d rewrites in %s, ended with %v; %s", label, passes, time.Since(gcStart).Round(time.Millisecond), err, measureDisk(t, dir))
	}
	gc("as maintain runs it, right after expiry")
	closeHistory(t, e)
	after := measureDisk(t, dir)
	t.Logf("DISK after expiry + GC, closed: %s (%.0f B per delivery built left)", after, float64(after.total())/float64(n))

	// What else it takes: the daemon's next GC tick after a restart
	// (compactions of the tombstones have had time to run), then a full
	// compaction.
	e = openHistory(t, dir, &short)
	time.Sleep(5 * time.Second)
	gc("after a reopen")
	lsm := e.store.db.Levels()
	var levels []string
	for _, l := range lsm {
		if l.NumTables > 0 {
			levels = append(levels, fmt.Sprintf("L%d:%d tables/%s", l.Level, l.NumTables, humanBytes(l.Size)))
		}
	}
	t.Logf("LSM levels: %s", strings.Join(levels, " "))
	flatStart := time.Now()
	if err := e.store.db.Flatten(2); err != nil {
		t.Logf("Flatten: %v", err)
	}
	t.Logf("Flatten(2) took %s; %s", time.Since(flatStart).Round(time.Millisecond), measureDisk(t, dir))
	gc("after Flatten")
	closeHistory(t, e)
	t.Logf("DISK final, closed: %s", measureDisk(t, dir))
}

// daemonValueLogGC is the value-log GC of Engine.maintain: rewrite while
// Badger finds a file worth it.
func daemonValueLogGC(e *Engine) (int, error) {
	passes := 0
	for {
		err := e.store.db.RunValueLogGC(0.5)
		if err != nil {
			return passes, err
		}
		passes++
	}
}

// readHistory times the API's history reads and checks what they return.
func readHistory(t *testing.T, e *Engine, hooks []*config.Webhook, kept []historySample, samples int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	byHook := map[string][]historySample{}
	for _, s := range kept {
		byHook[s.webhook] = append(byHook[s.webhook], s)
	}
	checkPage := func(q Query, p Page) error {
		if len(p.Deliveries) != q.Limit {
			return fmt.Errorf("%+v: page of %d deliveries, want %d", q, len(p.Deliveries), q.Limit)
		}
		for i, d := range p.Deliveries {
			if q.Webhook != "" && d.Webhook != q.Webhook || d.Status != StatusSuccess {
				return fmt.Errorf("%+v: got %s of %s, %s", q, d.ID, d.Webhook, d.Status)
			}
			if i > 0 && d.ID >= p.Deliveries[i-1].ID {
				return fmt.Errorf("%+v: page not newest first at %d", q, i)
			}
			if q.Cursor != "" && d.ID >= q.Cursor {
				return fmt.Errorf("%+v: %s is not older than the cursor", q, d.ID)
			}
		}
		if p.NextCursor == nil {
			return fmt.Errorf("%+v: no next cursor in a long history", q)
		}
		return nil
	}
	list := func(l *latencies, q Query) (Page, error) {
		var p Page
		err := l.time(func() (err error) {
			p, err = e.List(q)
			return err
		})
		if err == nil {
			err = checkPage(q, p)
		}
		return p, err
	}
	var all []*latencies
	measure := func(name string) *latencies {
		l := &latencies{name: name}
		all = append(all, l)
		return l
	}
	newest := measure("list webhook newest 50")
	newestOK := measure("list webhook newest 50, status=success")
	newestAll := measure("list all webhooks newest 50")
	for i := range samples {
		wh := hooks[i%len(hooks)].ID
		if _, err := list(newest, Query{Webhook: wh, Limit: 50}); err != nil {
			t.Fatal(err)
		}
		if _, err := list(newestOK, Query{Webhook: wh, Status: StatusSuccess, Limit: 50}); err != nil {
			t.Fatal(err)
		}
		if _, err := list(newestAll, Query{Limit: 50}); err != nil {
			t.Fatal(err)
		}
	}
	// What GET /v1/webhooks/{id}/deliveries costs in all: the listing
	// and its JSON answer, which carries every attempt with its bodies.
	api := measure("list webhook newest 50 + JSON (as the API)")
	var answer int
	// The same listing without the attempts (readDelivery(..., false)),
	// to size what leaving them out of listings would save.
	summaries := measure("list webhook newest 50 without attempts*")
	for i := range samples {
		wh := hooks[i%len(hooks)].ID
		q := Query{Webhook: wh, Limit: 50}
		err := api.time(func() error {
			p, err := e.List(q)
			if err != nil {
				return err
			}
			b, err := json.Marshal(p)
			answer = len(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var p Page
		if err := summaries.time(func() (err error) { p, err = e.list(q, false); return err }); err != nil {
			t.Fatal(err)
		}
		if err := checkPage(q, p); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("the API's answer for a page of 50 is %s", humanBytes(int64(answer)))
	deep := measure("list webhook pages 2-5 by cursor")
	deepOK := measure("list webhook pages 2-5 by cursor, status=ok")
	for i := range samples / 4 {
		wh := hooks[i%len(hooks)].ID
		for _, st := range []Status{"", StatusSuccess} {
			l := map[Status]*latencies{"": deep, StatusSuccess: deepOK}[st]
			p, err := e.List(Query{Webhook: wh, Status: st, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				if p, err = list(l, Query{Webhook: wh, Status: st, Limit: 50, Cursor: *p.NextCursor}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	anywhere := measure("list webhook page at a random cursor")
	anywhereOK := measure("list webhook page at a random cursor, status")
	open := measure("open one delivery (Get) at random")
	for range samples {
		s := kept[rng.IntN(len(kept))]
		var d Delivery
		if err := open.time(func() (err error) { d, err = e.Get(s.id); return err }); err != nil {
			t.Fatalf("Get(%s): %v", s.id, err)
		}
		if d.ID != s.id || d.Status != StatusSuccess || len(d.EventIDs) != 1 || len(d.Attempts) != 1 ||
			d.Attempts[0].Request == nil || len(d.Attempts[0].Request.Body) != 1024 || d.Attempts[0].Response == nil {
			t.Fatalf("Get(%s) = %+v, want a success with one event and one attempt with a 1 KiB body", s.id, d)
		}
		c := byHook[s.webhook][rng.IntN(len(byHook[s.webhook]))]
		q := Query{Webhook: c.webhook, Limit: 50, Cursor: c.id}
		if _, err := list(anywhere, q); err != nil && !strings.Contains(err.Error(), "page of") {
			t.Fatal(err) // the oldest samples may have less than a page behind them
		}
		q.Status = StatusSuccess
		if _, err := list(anywhereOK, q); err != nil && !strings.Contains(err.Error(), "page of") {
			t.Fatal(err)
		}
	}
	for _, l := range all {
		l.report(t)
	}
	t.Logf("* not an engine call: List as it would be with readDelivery(txn, id, false)")
}

// BenchmarkHistoryRead measures the history reads of the API on 20,000
// finished deliveries that each carry a 1 KiB body and one real attempt
// (BenchmarkList has failures without a request): opening one delivery
// at random (GET /v1/deliveries/{id}) and a webhook's newest page with
// and without a status filter.
func BenchmarkHistoryRead(b *testing.B) {
	const total = 20000
	hooks := historyHooks("https://crm.example.com/hooks/sidehook")
	e, err := Open(testConfig(hooks...), Options{Dir: b.TempDir(), UserAgent: "sidehook/bench", MinFree: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close(context.Background()) })
	kept, err := newHistoryBuilder(b, e).build(b, total, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := kept[rng.IntN(len(kept))]
			d, err := e.Get(s.id)
			if err != nil || len(d.Attempts) != 1 {
				b.Fatalf("Get(%s): %d attempts, err %v", s.id, len(d.Attempts), err)
			}
		}
	})
	for _, st := range []Status{"", StatusSuccess} {
		b.Run(fmt.Sprintf("list-webhook-newest50,status=%q", st), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p, err := e.List(Query{Webhook: hooks[i%len(hooks)].ID, Status: st, Limit: 50})
				if err != nil || len(p.Deliveries) != 50 {
					b.Fatalf("List: %d deliveries, err %v", len(p.Deliveries), err)
				}
				i++
			}
		})
	}
}
