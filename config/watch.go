package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a Watcher waits for a burst of file events
// to settle before it reports a change.
const DefaultDebounce = 150 * time.Millisecond

// maxSettle bounds how long a steady stream of events can put a report
// off, so that a change is applied within a second even then.
const maxSettle = 600 * time.Millisecond

// Watcher reports changes to a configuration file and its webhooks.d
// drop-ins. It watches directories, not files: editors save through a
// temporary file and a rename, git replaces files, and Kubernetes swaps a
// ConfigMap's ..data symlink, and a watch on the file itself goes silent
// after any of those.
//
// Watched are the file's directory, webhooks.d beside it (also when it is
// created later), and, when the file is a symlink, the directory of its
// target. An event reports a change when it touches the file's name, its
// symlink's first hop, a name starting with ".." (a ConfigMap's ..data and
// its timestamped folders), webhooks.d, or anything inside webhooks.d.
type Watcher struct {
	path     string
	debounce time.Duration
	onChange func()
	fw       *fsnotify.Watcher

	mu      sync.Mutex
	watched map[string]bool // directories under watch
	names   map[string]bool // dir + "\x00" + name of entries that matter

	done   chan struct{}
	closed sync.Once
}

// Watch starts watching the configuration at path and calls onChange,
// from a single goroutine, once a burst of changes has settled for
// debounce (DefaultDebounce when zero). onChange is also called when the
// kernel's event queue overflowed, since changes may have been missed.
// Close stops it.
func Watch(path string, debounce time.Duration, onChange func()) (*Watcher, error) {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		path:     abs,
		debounce: debounce,
		onChange: onChange,
		fw:       fw,
		watched:  map[string]bool{},
		names:    map[string]bool{},
		done:     make(chan struct{}),
	}
	if err := w.sync(); err != nil {
		fw.Close()
		return nil, err
	}
	go w.loop()
	return w, nil
}

// Close stops the watcher and waits until onChange is no longer running.
func (w *Watcher) Close() error {
	var err error
	w.closed.Do(func() {
		err = w.fw.Close()
		<-w.done
	})
	return err
}

// sync brings the set of watched directories and interesting names in
// line with the files as they are now. The main directory must be
// watchable; the others come and go.
func (w *Watcher) sync() error {
	dir, base := filepath.Split(w.path)
	dir = filepath.Clean(dir)
	want := map[string]bool{dir: true}
	names := map[string]bool{dir + "\x00" + base: true, dir + "\x00" + DropInDir: true}

	dropIns := filepath.Join(dir, DropInDir)
	if fi, err := os.Stat(dropIns); err == nil && fi.IsDir() {
		want[dropIns] = true
	}
	// A symlinked file: its first hop inside the directory (Kubernetes'
	// "..data/webhooks.yaml" starts with ..data) and, when the final target
	// lives elsewhere, that directory and name.
	if link, err := os.Readlink(w.path); err == nil {
		if !filepath.IsAbs(link) {
			first := strings.SplitN(filepath.ToSlash(link), "/", 2)[0]
			names[dir+"\x00"+first] = true
		}
		if target, err := filepath.EvalSymlinks(w.path); err == nil {
			tdir, tbase := filepath.Split(target)
			tdir = filepath.Clean(tdir)
			if !strings.HasPrefix(tdir+string(filepath.Separator), dir+string(filepath.Separator)) {
				want[tdir] = true
				names[tdir+"\x00"+tbase] = true
			}
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	var firstErr error
	for d := range want {
		if w.watched[d] {
			continue
		}
		if err := w.fw.Add(d); err != nil {
			if d == dir {
				firstErr = err
			}
			continue
		}
		w.watched[d] = true
	}
	for d := range w.watched {
		if !want[d] {
			w.fw.Remove(d) // may be gone already
			delete(w.watched, d)
		}
	}
	w.names = names
	return firstErr
}

// matters reports whether an event on name should lead to a reload.
func (w *Watcher) matters(name string) bool {
	dir, base := filepath.Split(name)
	dir = filepath.Clean(dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.names[dir+"\x00"+base]:
		return true
	case strings.HasPrefix(base, ".."):
		return w.watched[dir]
	case filepath.Base(dir) == DropInDir && w.watched[dir]:
		return true
	case w.watched[name]: // a watched directory itself went away
		return true
	}
	return false
}

func (w *Watcher) loop() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var pending bool
	var first time.Time
	arm := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
		}
		wait := w.debounce
		if left := first.Add(maxSettle).Sub(now); left < wait {
			wait = max(left, 0)
		}
		timer.Reset(wait)
	}
	for {
		select {
		case ev, ok := <-w.fw.Events:
			if !ok {
				timer.Stop()
				return
			}
			if w.matters(ev.Name) {
				arm()
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				timer.Stop()
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				arm()
			}
		case <-timer.C:
			pending = false
			w.sync()
			w.onChange()
		}
	}
}
