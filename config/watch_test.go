package config

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// watchCounter starts a watcher on path and counts its calls.
type watchCounter struct {
	n     atomic.Int64
	calls chan struct{}
}

func startWatch(t *testing.T, path string) *watchCounter {
	t.Helper()
	c := &watchCounter{calls: make(chan struct{}, 100)}
	w, err := Watch(path, 50*time.Millisecond, func() {
		c.n.Add(1)
		c.calls <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return c
}

// wantCall waits for one call to onChange.
func (c *watchCounter) wantCall(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c.calls:
	case <-time.After(2 * time.Second):
		t.Fatalf("%s: no change reported within 2s", what)
	}
}

// wantQuiet checks that no call comes for a while.
func (c *watchCounter) wantQuiet(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c.calls:
		t.Fatalf("%s: a change was reported, want none", what)
	case <-time.After(300 * time.Millisecond):
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatch(t *testing.T) {
	t.Run("in-place write", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "webhooks.yaml")
		write(t, path, "webhooks: []\n")
		c := startWatch(t, path)
		write(t, path, "webhooks: [] # changed\n")
		c.wantCall(t, "write in place")
	})
	t.Run("rename over", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "webhooks.yaml")
		write(t, path, "webhooks: []\n")
		c := startWatch(t, path)
		tmp := filepath.Join(dir, ".webhooks.yaml.swp")
		write(t, tmp, "webhooks: [] # saved by an editor\n")
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		c.wantCall(t, "rename over")
		// And again: the watch survives the replaced file.
		write(t, tmp, "webhooks: [] # again\n")
		os.Rename(tmp, path)
		c.wantCall(t, "second rename over")
	})
	t.Run("remove and create (git checkout)", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "webhooks.yaml")
		write(t, path, "webhooks: []\n")
		c := startWatch(t, path)
		os.Remove(path)
		write(t, path, "webhooks: [] # checked out\n")
		c.wantCall(t, "remove and create")
	})
	t.Run("configmap symlink swap", func(t *testing.T) {
		dir := t.TempDir()
		// Kubernetes' layout: webhooks.yaml -> ..data/webhooks.yaml,
		// ..data -> ..2024_01_01_00_00_00.1, swapped by renaming a new
		// ..data_tmp symlink over ..data.
		v1 := filepath.Join(dir, "..2024_01_01_00_00_00.1")
		os.Mkdir(v1, 0o755)
		write(t, filepath.Join(v1, "webhooks.yaml"), "webhooks: []\n")
		if err := os.Symlink(filepath.Base(v1), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "webhooks.yaml")
		os.Symlink("..data/webhooks.yaml", path)
		c := startWatch(t, path)

		v2 := filepath.Join(dir, "..2024_01_01_00_00_01.2")
		os.Mkdir(v2, 0o755)
		write(t, filepath.Join(v2, "webhooks.yaml"), "webhooks: [] # v2\n")
		os.Symlink(filepath.Base(v2), filepath.Join(dir, "..data_tmp"))
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(v1)
		c.wantCall(t, "symlink swap")
		if b, _ := os.ReadFile(path); string(b) != "webhooks: [] # v2\n" {
			t.Fatalf("file reads %q after the swap", b)
		}
	})
	t.Run("symlink to a file elsewhere", func(t *testing.T) {
		dir, other := t.TempDir(), t.TempDir()
		target := filepath.Join(other, "real.yaml")
		write(t, target, "webhooks: []\n")
		path := filepath.Join(dir, "webhooks.yaml")
		os.Symlink(target, path)
		c := startWatch(t, path)
		write(t, target, "webhooks: [] # edited where it lives\n")
		c.wantCall(t, "write to the target")
	})
	t.Run("drop-in added, changed and removed", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "webhooks.yaml")
		write(t, path, "webhooks: []\n")
		c := startWatch(t, path)
		dropIns := filepath.Join(dir, DropInDir)
		if err := os.Mkdir(dropIns, 0o755); err != nil { // created after the start
			t.Fatal(err)
		}
		c.wantCall(t, "webhooks.d created")
		extra := filepath.Join(dropIns, "extra.yaml")
		write(t, extra, "webhooks: []\n")
		c.wantCall(t, "drop-in added")
		write(t, extra, "webhooks: [] # changed\n")
		c.wantCall(t, "drop-in changed")
		os.Remove(extra)
		c.wantCall(t, "drop-in removed")
	})
	t.Run("other files ignored", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "webhooks.yaml")
		write(t, path, "webhooks: []\n")
		c := startWatch(t, path)
		write(t, filepath.Join(dir, "notes.txt"), "hello")
		os.Mkdir(filepath.Join(dir, "data"), 0o755)
		write(t, filepath.Join(dir, "data", "000001.vlog"), "x")
		c.wantQuiet(t, "unrelated files")
	})
	t.Run("debounce", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "webhooks.yaml")
		write(t, path, "webhooks: []\n")
		c := startWatch(t, path)
		for i := range 50 {
			write(t, path, "webhooks: [] # "+string(rune('a'+i%26))+"\n")
			time.Sleep(2 * time.Millisecond)
		}
		c.wantCall(t, "burst")
		time.Sleep(300 * time.Millisecond)
		if n := c.n.Load(); n > 2 {
			t.Errorf("a burst of 50 writes gave %d calls, want 1 or 2", n)
		}
	})
	t.Run("steady writes still report within a second", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "webhooks.yaml")
		write(t, path, "webhooks: []\n")
		c := startWatch(t, path)
		start := time.Now()
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
					os.WriteFile(path, []byte("webhooks: []\n"), 0o644)
				}
			}
		}()
		defer close(stop)
		c.wantCall(t, "steady writes")
		if d := time.Since(start); d > time.Second {
			t.Errorf("first report after %v of steady writes, want under a second", d)
		}
	})
	t.Run("close stops calls", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "webhooks.yaml")
		write(t, path, "webhooks: []\n")
		var n atomic.Int64
		w, err := Watch(path, 20*time.Millisecond, func() { n.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		write(t, path, "webhooks: [] # after close\n")
		time.Sleep(100 * time.Millisecond)
		if n.Load() != 0 {
			t.Errorf("calls after Close = %d, want 0", n.Load())
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		if _, err := Watch(filepath.Join(t.TempDir(), "nope", "webhooks.yaml"), 0, func() {}); err == nil {
			t.Error("watching a file in a missing directory: err = nil, want an error")
		}
	})
}
