package delivery

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLogFiles_SyncRotated checks that the log files Badger leaves
// behind when it moves on to a new one are synced, once, and that files
// already gone (flushed, collected) or of other kinds are left alone.
func TestLogFiles_SyncRotated(t *testing.T) {
	dir := t.TempDir()
	touch := func(names ...string) {
		t.Helper()
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(name string) {
		t.Helper()
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	l := logFiles{dir: dir}
	steps := []struct {
		name   string
		change func()
		want   []string
	}{
		{"first listing", func() { touch("00001.mem", "000001.vlog", "MANIFEST") }, nil},
		{"nothing new", func() {}, nil},
		{"a table is no log", func() { touch("000001.sst") }, nil},
		{"new value log", func() { touch("000002.vlog") }, []string{"000001.vlog", "00001.mem"}},
		{"memtable flushed, new one", func() { remove("00001.mem"); touch("00002.mem") }, []string{"000001.vlog", "000002.vlog"}},
		{"synced once", func() {}, nil},
	}
	for _, st := range steps {
		st.change()
		got, err := l.syncRotated()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		slices.Sort(got)
		if !slices.Equal(got, st.want) {
			t.Errorf("%s: synced %q, want %q", st.name, got, st.want)
		}
	}
}

// TestStore_CountersCountCommitsSyncsAndWrites checks the write
// amplification metrics: an ingest is one commit and one fsync of its
// keys, a delivery's outcome a commit without one.
func TestStore_CountersCountCommitsSyncsAndWrites(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	reg := prometheus.NewRegistry()
	// The delay keeps the delivery's commit out of the first reading.
	wh := hook("count", rc.URL, "Lead_Post_Create")
	wh.Delay = 300 * time.Millisecond
	e, err := Open(testConfig(wh), Options{Dir: t.TempDir(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	read := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "sidehook_store_") {
				got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return got
	}
	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	after := read()
	// The event, the delivery record, two indexes, the due entry, a count.
	if after["sidehook_store_commits_total"] != 1 || after["sidehook_store_syncs_total"] != 1 || after["sidehook_store_writes_total"] != 6 {
		t.Errorf("after one ingest: %v, want 1 commit, 1 sync, 6 writes", after)
	}
	waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	done := read()
	if done["sidehook_store_commits_total"] < 2 || done["sidehook_store_syncs_total"] != 1 || done["sidehook_store_writes_total"] <= 6 {
		t.Errorf("after the delivery: %v, want one more commit with writes and no more syncs", done)
	}
}
