package delivery

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sidehook/sidehook/config"
)

// storeWithOneDelivery leaves a closed store in a temp dir, holding one
// queued delivery to the webhook "sink" of the config it returns.
func storeWithOneDelivery(t *testing.T) (string, *config.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(hook("sink", "http://127.0.0.1:1/", "Lead_Post_Create"))
	e, err := Open(cfg, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, e, "Lead Creation", "k", `{}`)
	e.Close(context.Background())
	return dir, cfg
}

func TestOpen_EmptyLogFileLeftByACrash(t *testing.T) {
	dir, cfg := storeWithOneDelivery(t)
	// A kill between creating and sizing a log file leaves it empty.
	for _, name := range []string{"00099.mem", "00042.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, err := Open(cfg, Options{Dir: dir})
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

func TestRecord_EncodeDecode(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	later := now.Add(time.Minute)
	for _, r := range []record{
		{ID: "dlv_0123456789abcdefghijklmnop", Webhook: "crm", EventType: "Lead_Post_Create", Status: StatusInQueue, CreatedAt: now, DueAt: later, Event: "evt_x", Sealed: true},
		{ID: "dlv_1", Webhook: "b", EventType: "t", Status: StatusFailure, CreatedAt: now, DueAt: now, Batch: true, Group: "\x00crm",
			FinishedAt: &later, LastAt: &now, LastCode: 503, LastError: "HTTP 503 Service Unavailable", Tries: 4, AutoTries: 3},
		{Status: StatusSuccess, CreatedAt: time.Unix(0, 0), DueAt: time.Unix(0, 0), LastCode: -1},
	} {
		var got record
		if err := got.decode(r.encode()); err != nil {
			t.Fatalf("decode(encode(%+v)): %v", r, err)
		}
		if !reflect.DeepEqual(normal(got), normal(r)) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
	var r record
	if err := r.decode([]byte{recordVersion, 'q', 0, 200}); err == nil {
		t.Errorf("decode of a truncated record: no error")
	}
}

// normal drops monotonic clock readings and locations so records compare.
func normal(r record) record {
	r.CreatedAt, r.DueAt = time.Unix(0, r.CreatedAt.UnixNano()), time.Unix(0, r.DueAt.UnixNano())
	if r.FinishedAt != nil {
		t := time.Unix(0, r.FinishedAt.UnixNano())
		r.FinishedAt = &t
	}
	if r.LastAt != nil {
		t := time.Unix(0, r.LastAt.UnixNano())
		r.LastAt = &t
	}
	return r
}

func TestOpen_DamagedCountNamesTheStoreAndTheKey(t *testing.T) {
	dir, cfg := storeWithOneDelivery(t)
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		return txn.Set(kCount("sink", StatusInQueue), []byte{1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(cfg, Options{Dir: dir})
	if err == nil {
		t.Fatal("open with a 3-byte count: no error")
	}
	for _, want := range []string{"open store " + dir, "read counts", "sink", "3 bytes", "damaged"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
