package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// A walk answers every Get as the transaction itself does, whatever the
// order of the keys: forward a step or many, backward, missing, deleted,
// and across prefixes.
func TestWalk_ReadsWhatTheTransactionReads(t *testing.T) {
	db, err := badger.Open(storeOptions(t.TempDir(), nil).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys [][]byte
	err = db.Update(func(txn *badger.Txn) error {
		for i := range 400 {
			for _, p := range []byte{pDelivery, pEvent} {
				k := fmt.Appendf(nil, "%c%06d", p, 2*i) // odd numbers are never written
				keys = append(keys, k)
				if err := txn.Set(k, fmt.Appendf(nil, "value of %s", k)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		for i := 0; i < len(keys); i += 7 {
			if err := txn.Delete(keys[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	var asks [][]byte
	for n := 0; n < 800; n++ {
		p := []byte{pDelivery, pEvent}[rng.IntN(2)]
		i := n + rng.IntN(40) - 8 // mostly ahead, sometimes behind
		if rng.IntN(20) == 0 {
			i = rng.IntN(800) // far away
		}
		asks = append(asks, fmt.Appendf(nil, "%c%06d", p, max(i, 0)))
	}
	err = db.View(func(txn *badger.Txn) error {
		w := newWalk(txn)
		defer w.close()
		for _, k := range asks {
			want, wantErr := value(txn.Get(k))
			got, gotErr := value(w.Get(k))
			if !errors.Is(gotErr, wantErr) && (gotErr == nil || wantErr == nil || gotErr.Error() != wantErr.Error()) || !slices.Equal(got, want) {
				t.Errorf("Get(%s) = %q, %v; the transaction gives %q, %v", k, got, gotErr, want, wantErr)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func value(item *badger.Item, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// Deliveries read ahead by a scan are read again when something changed
// them before their turn: one a manual retry sent while it waited goes
// out once, not twice.
func TestReadAhead_AChangeWhileWaitingIsSeen(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter) int {
		if n == 1 {
			<-release
		}
		return 200
	})
	off := hook("one-by-one", rc.URL, "Lead_Post_Create")
	off.Enabled, off.Concurrency = false, 1
	e := openEngine(t, t.TempDir(), testConfig(off))
	var ids []string
	for n := range 3 {
		ids = append(ids, ingest(t, e, "Lead Creation", "", fmt.Sprintf(`{"n":%d}`, n)).Deliveries[0].ID)
	}
	on := *off
	on.Enabled = true
	e.SetConfig(testConfig(&on)) // one scan reads all three ahead
	for rc.count() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	if d, err := e.Retry(context.Background(), ids[2]); err != nil || d.Status != StatusSuccess {
		t.Fatalf("manual retry of the third: %s, %v; want success", d.Status, err)
	}
	close(release)
	for _, id := range ids {
		waitStatus(t, e, id, StatusSuccess)
	}
	time.Sleep(100 * time.Millisecond) // room for a wrong extra send
	if n := rc.count(); n != 3 {
		t.Errorf("receiver got %d requests, want 3: the first two once each, the third by hand only", n)
	}
	if d := mustGet(t, e, ids[2]); d.AttemptCount != 1 || !d.Attempts[0].Manual {
		t.Errorf("third delivery: %d attempts, want only the manual one", d.AttemptCount)
	}
}
