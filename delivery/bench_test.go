package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sidehook/sidehook/config"
)

// benchEngine opens a started engine in a fresh directory for a benchmark.
func benchEngine(b *testing.B, cfg *config.Config) *Engine {
	b.Helper()
	e, err := Open(cfg, Options{Dir: b.TempDir(), UserAgent: "sidehook/bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// leadCreation is the event type of kibEvent.
var leadCreation, _ = config.NewCatalog().Lookup("Lead Creation")

// kibEvent is a Lead Creation event with about 1 KiB of data.
func kibEvent(b *testing.B, i int) Incoming {
	pad := strings.Repeat("x", 1000)
	return Incoming{Type: leadCreation, Data: json.RawMessage(fmt.Sprintf(`{"ProspectID":"%08d","Notes":"%s"}`, i, pad))}
}

func countingServer(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

// BenchmarkIngest measures durable, fsync'd ingest of 1 KiB events from
// many goroutines at once (group commit); nothing is sent.
func BenchmarkIngest(b *testing.B) {
	wh := hook("later", "http://127.0.0.1:1/never", "Lead_Post_Create")
	wh.Delay = 24 * time.Hour
	e := benchEngine(b, testConfig(wh))
	var seq atomic.Int64
	b.SetBytes(1 << 10)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev := kibEvent(b, int(seq.Add(1)))
			if _, err := e.Ingest(context.Background(), []Incoming{ev}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkDeliver measures draining a queue of b.N deliveries to a
// receiver that answers 200 at once. Its allocations per delivery count
// the receiver's too, which runs in this process.
func BenchmarkDeliver(b *testing.B) {
	srv, got := countingServer(b)
	wh := hook("drain", srv.URL, "Lead_Post_Create")
	wh.Concurrency = 16
	wh.Enabled = false // fill first, then enable
	e := benchEngine(b, testConfig(wh))
	for i := 0; i < b.N; i += 500 {
		var evs []Incoming
		for j := i; j < min(i+500, b.N); j++ {
			evs = append(evs, kibEvent(b, j))
		}
		if _, err := e.Ingest(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	on := *wh
	on.Enabled = true
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	e.SetConfig(testConfig(&on))
	for e.Counts("drain").Success < int64(b.N) {
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("drained %d of %d in 5 minutes", e.Counts("drain").Success, b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
	if n := got.Load(); n < int64(b.N) {
		b.Fatalf("receiver got %d requests, want %d", n, b.N)
	}
}

// BenchmarkList measures one history page (limit 50) over 20,000 finished
// deliveries.
func BenchmarkList(b *testing.B) {
	const total = 20000
	wh := hook("old", "http://127.0.0.1:1/never", "Lead_Post_Create")
	wh.Delay = time.Hour
	e := benchEngine(b, testConfig(wh))
	for i := 0; i < total; i += 1000 {
		var evs []Incoming
		for j := i; j < i+1000; j++ {
			evs = append(evs, kibEvent(b, j))
		}
		if _, err := e.Ingest(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	// Removing the webhook finishes every delivery (as failure) without
	// any network: a quick way to a large finished history.
	e.SetConfig(testConfig())
	for e.Counts("old").Failure < total {
		time.Sleep(10 * time.Millisecond)
	}
	for _, q := range []Query{{Limit: 50}, {Limit: 50, Status: StatusFailure}, {Limit: 50, Webhook: "old"}} {
		b.Run(fmt.Sprintf("webhook=%q,status=%q", q.Webhook, q.Status), func(b *testing.B) {
			b.ReportAllocs()
			pages := 0
			cursor := ""
			for b.Loop() {
				q.Cursor = cursor
				p, err := e.List(q)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Deliveries) != 50 {
					b.Fatalf("page has %d deliveries, want 50", len(p.Deliveries))
				}
				pages++
				if p.NextCursor == nil || pages == 100 { // walk 100 pages, then start over
					cursor, pages = "", 0
				} else {
					cursor = *p.NextCursor
				}
			}
		})
	}
}

// BenchmarkEncodeForm measures turning a JSON object into form fields.
func BenchmarkEncodeForm(b *testing.B) {
	data := json.RawMessage(`{"ProspectID":"4711","FirstName":"Ada","LastName":"Lovelace","EmailAddress":"ada@example.com",` +
		`"Amount":12.50,"Score":97,"Active":true,"Owner":null,"Address":{"City":"London","Zip":"N1 9GU"},` +
		`"Tags":["vip","2026"],"Notes":"Met at the conference & asked for a demo = yes"}`)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	start := time.Now()
	for b.Loop() {
		if _, err := encodeForm(data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkReadDue measures reading the deliveries behind due entries, as
// attempts need them (record and event, the body built), over a queue of
// 50,000 in two webhooks: one by one with point reads, and 256 at a time
// read ahead as a dispatcher's scan does.
func BenchmarkReadDue(b *testing.B) {
	a, c := hook("a", "http://127.0.0.1:1/a", "Lead_Post_Create"), hook("c", "http://127.0.0.1:1/c", "Lead_Post_Create")
	a.Enabled, c.Enabled = false, false
	e := benchEngine(b, testConfig(a, c))
	const queued = 50000
	for i := 0; i < queued; i += 500 {
		var evs []Incoming
		for j := i; j < i+500; j++ {
			evs = append(evs, kibEvent(b, j))
		}
		if _, err := e.Ingest(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	entries, _, _, err := e.store.scanDue(kQueuePrefix("a"), kQueuePrefix("a"), time.Now().Add(time.Hour), queued, nil)
	if err != nil || len(entries) != queued {
		b.Fatalf("scan: %d entries, %v", len(entries), err)
	}
	b.Run("point", func(b *testing.B) {
		i := 0
		for b.Loop() {
			en := entries[i%queued]
			d, err := e.readDue(en.id, en.due)
			if err != nil || !d.ready {
				b.Fatalf("readDue: %+v, %v", d, err)
			}
			i++
		}
	})
	b.Run("ahead", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if i%readyBatch == 0 {
				from := i % queued
				batch := append([]dueEntry(nil), entries[from:min(from+readyBatch, queued)]...)
				e.readAhead(batch)
				for _, en := range batch {
					if en.pre == nil || !en.pre.ready {
						b.Fatalf("read ahead: %+v", en.pre)
					}
					e.store.watches.unwatch(en.seen)
				}
			}
			i++
		}
	})
}

// BenchmarkJournalSync measures committing one 2.5 KiB journal record and
// syncing it, as a lone 202 waits for: in a new segment, where each
// fdatasync also commits the file's growth, and in a spare written over.
// cpu-µs/op is the process's CPU (user and system) per record.
func BenchmarkJournalSync(b *testing.B) {
	val := make([]byte, 2500)
	for _, name := range []string{"append", "overwrite"} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			j, err := openJournal(dir, 1<<30)
			if err != nil {
				b.Fatal(err)
			}
			put := func() {
				j.begin()
				j.set([]byte("k"), val, 0)
				if _, err := j.commit(); err != nil {
					b.Fatal(err)
				}
			}
			if name == "overwrite" {
				// Fill a segment well past what the run writes and
				// retire it, as a clean stop does.
				if err := j.start(); err != nil {
					b.Fatal(err)
				}
				for j.size < 128<<20 {
					put()
				}
				if err := j.sync(); err != nil {
					b.Fatal(err)
				}
				if err := j.close(true); err != nil {
					b.Fatal(err)
				}
				if j, err = openJournal(dir, 1<<30); err != nil {
					b.Fatal(err)
				}
			}
			if err := j.start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { j.close(false) })
			cpu0 := processCPU(b)
			for b.Loop() {
				put()
				if err := j.sync(); err != nil {
					b.Fatal(err)
				}
			}
			if name == "overwrite" && j.size > 128<<20 {
				b.Fatalf("the run outgrew the spare (%d bytes)", j.size)
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU returns the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
