package delivery

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
