package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mountSmallDisk mounts a small tmpfs for the test, or skips when that is
// not possible (it needs root; CI runs as root).
func mountSmallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func TestStore_FullDiskAnswers503AndRecovers(t *testing.T) {
	disk := mountSmallDisk(t, "160m")
	// A filler file stands for whatever else fills the disk; removing it
	// is the operator freeing space. The history of each attempt holds
	// the body it sent, so deliveries still queued at the refusal may
	// write as much again as their events took: the filler frees more
	// than that, whatever the pace of the deliveries.
	filler := filepath.Join(disk, "filler")
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=1M", "count=60").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v: %s", err, out)
	}
	rc := newReceiver(t, nil)
	sink := hook("sink", rc.URL, "Lead_Post_Create")
	sink.Delay = 300 * time.Millisecond
	cfg := testConfig(sink)
	e, err := Open(cfg, Options{Dir: filepath.Join(disk, "data"), MinFree: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}

	pad := strings.Repeat("x", 8000)
	data := json.RawMessage(`{"pad":"` + pad + `"}`)
	var accepted []Accepted
	var refused error
	for i := 0; i < 100000 && refused == nil; i++ {
		acc, err := e.Ingest(context.Background(), []Incoming{{Type: lookup(t, "Lead Creation"), Data: data}})
		if err != nil {
			refused = err
			break
		}
		accepted = append(accepted, acc[0])
	}
	if refused == nil || !errors.Is(refused, ErrStorage) || !strings.Contains(refused.Error(), "disk nearly full") {
		t.Fatalf("after %d events: err = %v, want ErrStorage saying the disk is nearly full", len(accepted), refused)
	}
	if err := e.Healthy(); err == nil {
		t.Errorf("Healthy() = nil while the disk is full, want the reason")
	}
	// Everything acknowledged before the refusal still goes out.
	rc.wait(t, len(accepted))
	for _, a := range []Accepted{accepted[0], accepted[len(accepted)-1]} {
		waitStatus(t, e, a.Deliveries[0].ID, StatusSuccess)
	}

	// Space returns: ingest resumes on its own.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.Ingest(context.Background(), []Incoming{{Type: lookup(t, "Lead Creation"), Data: json.RawMessage(`{"after":true}`)}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest after freeing space: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.Healthy(); err != nil {
		t.Errorf("Healthy() after recovery = %v, want nil", err)
	}
	t.Logf("accepted %d events of 8 KB before the reserve was reached", len(accepted))
}
