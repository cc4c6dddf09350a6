package delivery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

// TestJournal_AcknowledgedEventsSurviveBadgerLosingItsWrites simulates a
// power loss at its worst for Badger: every write since the last
// checkpoint is gone from Badger's files, and only the journal, synced
// before each 202, survives. The events acknowledged since must all be
// back, queued, after the start.
func TestJournal_AcknowledgedEventsSurviveBadgerLosingItsWrites(t *testing.T) {
	t.Parallel()
	cfg, rc := laterConfig(t)
	dir := t.TempDir()

	e1, close1 := startEngine(t, dir, cfg)
	first := ingest(t, e1, "Lead Creation", "", `{"n":1}`)
	close1(context.Background())
	checkpoint := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(checkpoint, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	e2, close2 := startEngine(t, dir, cfg)
	var later []Accepted
	for i := range 20 {
		later = append(later, ingest(t, e2, "Lead Creation", "", fmt.Sprintf(`{"n":%d}`, i+2)))
	}
	// Badger as it was at the checkpoint, with the journal as it is now.
	lost := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(lost, os.DirFS(checkpoint)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(lost, "journal"), os.DirFS(filepath.Join(dir, "journal"))); err != nil {
		t.Fatal(err)
	}
	close2(context.Background())

	// Without the journal, the checkpoint holds only the first event:
	// the copy did lose what came after.
	if c := openEngine(t, checkpoint, cfg).Counts("later"); c != (Counts{InQueue: 1}) {
		t.Fatalf("checkpoint alone: counts %+v, want the first event only", c)
	}
	e3 := openEngine(t, lost, cfg)
	if c := e3.Counts("later"); c != (Counts{InQueue: 21}) {
		t.Errorf("after replay: counts %+v, want 21 queued", c)
	}
	for _, a := range append([]Accepted{first}, later...) {
		d := mustGet(t, e3, a.Deliveries[0].ID)
		if d.Status != StatusInQueue {
			t.Errorf("delivery %s: status %s, want %s", d.ID, d.Status, StatusInQueue)
		}
	}
	if segs := journalSegments(t, lost); len(segs) != 1 {
		t.Errorf("journal after replay: %d segments, want 1 fresh one", len(segs))
	}
	if n := rc.count(); n != 0 {
		t.Errorf("receiver got %d requests, want none before the delay", n)
	}
}

// startTuned opens an engine on dir, lets tune change its journal's
// sizes, and starts it.
func startTuned(t *testing.T, cfg *config.Config, dir string, tune func(*journal)) *Engine {
	t.Helper()
	e, err := Open(cfg, Options{Dir: dir, UserAgent: "sidehook/test"})
	if err != nil {
		t.Fatal(err)
	}
	tune(e.store.journal)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestJournal_CheckpointsKeepItShort checks that sealed segments are
// removed once Badger holds them, and that a clean stop leaves none.
func TestJournal_CheckpointsKeepItShort(t *testing.T) {
	t.Parallel()
	cfg, _ := laterConfig(t)
	dir := t.TempDir()
	e := startTuned(t, cfg, dir, func(j *journal) { j.segSize = 32 << 10 })
	data := fmt.Sprintf(`{"pad":%q}`, make([]byte, 1000))
	for range 300 {
		ingest(t, e, "Lead Creation", "", data)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(journalSegments(t, dir)) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("journal still has %d segments of 32 KiB after 300 KiB of events; checkpoints should leave at most 2", len(journalSegments(t, dir)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if segs := journalSegments(t, dir); len(segs) != 0 {
		t.Errorf("journal after a clean stop: %q, want empty", segs)
	}
	if c := openEngine(t, dir, cfg).Counts("later"); c != (Counts{InQueue: 300}) {
		t.Errorf("after restart: counts %+v, want 300 queued", c)
	}
}

// TestJournal_BadgerIsWrittenOutAheadOfTheCheckpoint checks that
// Badger's logs are written out as the journal grows, long before a
// segment fills: a checkpoint then has little left to write.
func TestJournal_BadgerIsWrittenOutAheadOfTheCheckpoint(t *testing.T) {
	t.Parallel()
	cfg, _ := laterConfig(t)
	dir := t.TempDir()
	e := startTuned(t, cfg, dir, func(j *journal) { j.writebackSize = 32 << 10 })
	t.Cleanup(func() { e.Close(context.Background()) })
	data := fmt.Sprintf(`{"pad":%q}`, make([]byte, 1000))
	for range 100 {
		ingest(t, e, "Lead Creation", "", data)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.store.writebacks.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no writeback of Badger's logs after 100 KiB of journal, with one due every 32 KiB")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if segs := journalSegments(t, dir); len(segs) != 1 {
		t.Errorf("journal segments: %q, want the one still being written: a writeback is no checkpoint", segs)
	}
}

// TestJournal_ReplayReadsWholeRecordsSinceTheLastBreak checks what a
// replay takes: records in order, none past a partial one at the end of
// a segment, and none before a break in the sequence numbers.
func TestJournal_ReplayReadsWholeRecordsSinceTheLastBreak(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir, 1) // a segment per record
	if err != nil {
		t.Fatal(err)
	}
	if err := j.start(); err != nil {
		t.Fatal(err)
	}
	writeRecords(t, j, "k", 5)
	j.close(false)
	replayKeys := func() ([]string, replayed) { return replayedKeys(t, j) }
	if keys, _ := replayKeys(); !slices.Equal(keys, []string{"k0=v@0", "k1=v@1", "k2=v@2", "k3=v@3", "k4=v@4"}) {
		t.Errorf("replayed %q, want the five records in order", keys)
	}

	segs, err := j.segments()
	if err != nil || len(segs) != 5 {
		t.Fatalf("segments = %v, %v; want 5", segs, err)
	}
	last, err := os.OpenFile(segs[4].path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	last.Write([]byte{200, 0, 0, 0, 1, 2, 3}) // a record cut short
	last.Close()
	if keys, got := replayKeys(); len(keys) != 5 || !slices.Equal(got.torn, []string{segs[4].path}) {
		t.Errorf("with a partial record: replayed %q, torn %q; want five records and the last segment torn", keys, got.torn)
	}

	if err := os.Remove(segs[2].path); err != nil {
		t.Fatal(err)
	}
	keys, got := replayKeys()
	if !slices.Equal(keys, []string{"k3=v@3", "k4=v@4"}) || got.skipped != 2 || got.last != 5 {
		t.Errorf("after a break: replayed %q, skipped %d, last %d; want k3 and k4, 2 skipped, last 5", keys, got.skipped, got.last)
	}
}

// TestJournal_ReplayIgnoresAReusedSegmentsOldRecords checks the case a
// reused segment makes hard: a crash after fewer new records than the
// spare held, all of one size, so that the old records that follow the
// new ones start right where a next record would. Replay must take the
// new records only.
func TestJournal_ReplayIgnoresAReusedSegmentsOldRecords(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "journal")
	j, err := openJournal(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.start(); err != nil {
		t.Fatal(err)
	}
	writeRecords(t, j, "o", 5)
	oldSize := j.size
	if err := j.close(true); err != nil { // a clean stop: the segment becomes a spare
		t.Fatal(err)
	}
	if segs := journalSegments(t, root); len(segs) != 0 {
		t.Fatalf("segments after a clean stop: %q, want none", segs)
	}

	j, err = openJournal(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := replayedKeys(t, j); len(keys) != 0 {
		t.Fatalf("replayed %q after a clean stop, want nothing", keys)
	}
	if err := j.start(); err != nil {
		t.Fatal(err)
	}
	writeRecords(t, j, "n", 2)
	j.close(false) // a crash
	fi, err := os.Stat(j.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != oldSize {
		t.Fatalf("new segment of %d bytes, want the spare of %d written over", fi.Size(), oldSize)
	}

	j, err = openJournal(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if keys, got := replayedKeys(t, j); !slices.Equal(keys, []string{"n0=v@0", "n1=v@1"}) || got.skipped != 0 {
		t.Errorf("replayed %q, skipped %d; want the two new records and nothing skipped", keys, got.skipped)
	}
}

// TestJournal_CheckpointsReuseSegments checks that the journal keeps no
// more than maxSpares of the segments checkpoints free, that a start
// writes over one, and that what was acknowledged since is all there
// after a crash.
func TestJournal_CheckpointsReuseSegments(t *testing.T) {
	t.Parallel()
	cfg, _ := laterConfig(t)
	dir := t.TempDir()
	small := func(j *journal) { j.segSize = 32 << 10 }
	spares := func() []string {
		t.Helper()
		names, err := filepath.Glob(filepath.Join(dir, "journal", "*"+spareExt))
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	data := fmt.Sprintf(`{"pad":%q}`, make([]byte, 1000))
	e := startTuned(t, cfg, dir, small)
	for range 300 { // about ten segments of 32 KiB
		ingest(t, e, "Lead Creation", "", data)
		if n := len(spares()); n > maxSpares {
			t.Fatalf("journal keeps %d spares, want at most %d", n, maxSpares)
		}
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(spares()); n != maxSpares {
		t.Errorf("spares after a clean stop: %d, want %d", n, maxSpares)
	}

	e = startTuned(t, cfg, dir, small)
	for range 20 {
		ingest(t, e, "Lead Creation", "", data)
	}
	j := e.store.journal
	j.mu.Lock()
	cur := j.f.Name()
	j.mu.Unlock()
	fi, err := os.Stat(cur)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= j.size {
		t.Errorf("segment being written is %d bytes, as many as were written; want a spare written over, larger", fi.Size())
	}
	crash := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(crash, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	if c := openEngine(t, crash, cfg).Counts("later"); c != (Counts{InQueue: 320}) {
		t.Errorf("after a crash: counts %+v, want 320 queued", c)
	}
}

// writeRecords commits and syncs n records to j, each setting the key
// prefix<i> to "v" with expiry i and deleting "gone".
func writeRecords(t *testing.T, j *journal, prefix string, n int) {
	t.Helper()
	for i := range n {
		j.begin()
		j.set(fmt.Appendf(nil, "%s%d", prefix, i), []byte("v"), uint64(i))
		j.delete([]byte("gone"))
		if _, err := j.commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.sync(); err != nil {
		t.Fatal(err)
	}
}

// replayedKeys replays j and returns the keys it sets, as key=value@expiry.
func replayedKeys(t *testing.T, j *journal) ([]string, replayed) {
	t.Helper()
	var keys []string
	got, err := j.replay(func(payload []byte) error {
		return journalEntries(payload, func(del bool, k, v []byte, exp uint64) error {
			if !del {
				keys = append(keys, fmt.Sprintf("%s=%s@%d", k, v, exp))
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, got
}

// laterConfig is one webhook, "later", whose deliveries wait an hour, so
// what a test ingests stays queued; its receiver should see nothing.
func laterConfig(t *testing.T) (*config.Config, *receiver) {
	rc := newReceiver(t, nil)
	wh := hook("later", rc.URL, "Lead_Post_Create")
	wh.Delay = time.Hour
	return testConfig(wh), rc
}

func journalSegments(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "journal", "*"+journalExt))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// FuzzJournalDamage writes three records, damages the segment (cuts it
// short and flips one byte) and checks that replay takes exactly the
// records wholly before the damage, each as it was written.
func FuzzJournalDamage(f *testing.F) {
	f.Add([]byte("key"), []byte("value"), uint16(70), uint16(20))
	f.Add([]byte{}, []byte{}, uint16(0), uint16(0))
	f.Add([]byte("k"), make([]byte, 300), uint16(1000), uint16(500))
	f.Fuzz(func(t *testing.T, key, val []byte, cut, flip uint16) {
		dir := t.TempDir()
		j, err := openJournal(dir, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.start(); err != nil {
			t.Fatal(err)
		}
		var ends []int
		for i := range 3 {
			j.begin()
			j.set(key, val, uint64(i))
			j.delete(key)
			if _, err := j.commit(); err != nil {
				t.Fatal(err)
			}
			ends = append(ends, int(j.size))
		}
		path := j.f.Name()
		j.close(false)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		damage := min(int(cut), len(b))
		b = b[:damage]
		if int(flip) < len(b) {
			b[flip] ^= 0x5a
			damage = int(flip)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, end := range ends {
			if end <= damage {
				want++
			}
		}
		var n int
		got, err := j.replay(func(payload []byte) error {
			var seen []string
			err := journalEntries(payload, func(del bool, k, v []byte, exp uint64) error {
				seen = append(seen, fmt.Sprintf("%t %x %x %d", del, k, v, exp))
				return nil
			})
			wantSeen := []string{fmt.Sprintf("false %x %x %d", key, val, n), fmt.Sprintf("true %x  0", key)}
			if err != nil || !slices.Equal(seen, wantSeen) {
				t.Errorf("record %d: entries %q (%v), want %q", n, seen, err, wantSeen)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.records != want {
			t.Errorf("replayed %d records of 3 with damage at byte %d of %d, want %d", got.records, damage, ends[2], want)
		}
	})
}
