package delivery

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// An attempt whose outcome could not be recorded (the store refused the
// write) must be made again once the store takes writes: the delivery
// may not stay in_queue forever, unattempted, until the next restart.
func TestStore_UnrecordedAttemptIsRetriedWhenSpaceReturns(t *testing.T) {
	disk := mountSmallDisk(t, "120m")
	rc := newReceiver(t, nil)
	wh := hook("sink", rc.URL, "Lead_Post_Create")
	wh.Delay = 300 * time.Millisecond
	e, err := Open(testConfig(wh), Options{Dir: filepath.Join(disk, "data"), MinFree: 32 << 20, UserAgent: "sidehook/test"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)

	// Fill the disk below even the attempts' share of the reserve.
	filler := filepath.Join(disk, "filler")
	fill := freeBytes(t, disk) - 2<<20
	if out, err := exec.Command("fallocate", "-l", strconv.FormatInt(fill, 10), filler).CombinedOutput(); err != nil {
		t.Skipf("fallocate: %v: %s", err, out)
	}
	rc.wait(t, 1) // the attempt is made; its outcome cannot be stored
	time.Sleep(100 * time.Millisecond)
	if d := mustGet(t, e, acc.Deliveries[0].ID); d.Status != StatusInQueue {
		t.Fatalf("with the disk full the delivery is %s, want in_queue (nothing could be recorded)", d.Status)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The store takes writes again: a new event goes out.
	later := ingest(t, e, "Lead Creation", "", `{"n":2}`)
	waitStatus(t, e, later.Deliveries[0].ID, StatusSuccess)

	deadline := time.Now().Add(2 * time.Second)
	for {
		d := mustGet(t, e, acc.Deliveries[0].ID)
		if d.Status == StatusSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after space returned (and a later event went out) the first delivery is %s with %d attempts, its due time long past; want it attempted again",
				d.Status, d.AttemptCount)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
