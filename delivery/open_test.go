package delivery

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen_EmptyLogFileLeftByACrash(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(hook("sink", "http://127.0.0.1:1/", "Lead_Post_Create"))
	e, err := Open(cfg, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, e, "Lead Creation", "k", `{}`)
	e.Close(context.Background())
	// A kill between creating and sizing a log file leaves it empty.
	for _, name := range []string{"00099.mem", "00042.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, err = Open(cfg, Options{Dir: dir})
	if err != nil {
		t.Fatalf("open after a crash left empty log files: %v", err)
	}
	defer e.Close(context.Background())
	if n := e.QueueDepth(); n != 1 {
		t.Errorf("queue depth = %d, want the 1 delivery from before", n)
	}
}

func TestOpen_HeldByAnotherProcessSaysSo(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	e, err := Open(cfg, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	_, err = Open(cfg, Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "another sidehook is running on this data directory") {
		t.Fatalf("second open: err = %v, want it to say another sidehook holds the directory", err)
	}
}
