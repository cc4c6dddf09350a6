package delivery

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// syncer makes committed groups durable and answers their callers. It
// takes every group the writer committed while the last fsync ran and
// covers them with one more, so a slow disk makes groups larger rather
// than answers later.
func (s *store) syncer(done chan<- struct{}) {
	defer close(done)
	for g := range s.syncs {
		gs := waiting(s.syncs, g, cap(s.syncs)+1)
		err := s.syncLogs()
		s.fsyncs.Add(1)
		if err != nil {
			err = fmt.Errorf("%w: sync: %v", ErrStorage, err)
			s.writeErr.Store(&err)
			s.log.Error("store sync failed", "err", err, "groups", len(gs))
		} else if last := gs[len(gs)-1]; last.err == nil && last.spaceErr == nil {
			s.writeErr.Store(nil)
		}
		for _, g := range gs {
			s.answer(g, err)
		}
	}
}

// syncLogs makes everything committed so far durable: Badger's current
// write-ahead and value log, and the ones it left since the last sync.
func (s *store) syncLogs() error {
	if err := s.db.Sync(); err != nil {
		return err
	}
	_, err := s.logs.syncRotated()
	return err
}

// logFiles tracks Badger's write-ahead (.mem) and value log (.vlog)
// files. Badger's Sync covers only the two it writes now: when a commit
// fills a memtable or a value log file, Badger goes on in a new file
// without syncing the old one, whose tail may hold writes already
// committed and about to be acknowledged. syncRotated syncs those.
type logFiles struct {
	dir string
	// last holds the log files present at the last listing, and mtime
	// the directory's modification time then.
	last     []string
	mtime    time.Time
	listedAt time.Time
}

// list reads the log files now in the directory.
func (l *logFiles) list() ([]string, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.dir, err)
	}
	var names []string
	for _, en := range entries {
		if n := en.Name(); strings.HasSuffix(n, ".mem") || strings.HasSuffix(n, ".vlog") {
			names = append(names, n)
		}
	}
	return names, nil
}

// syncRotated syncs, when a log file appeared since the last call, the
// log files that were there before and still are (one of them is the
// file Badger just left), and returns their names. Most calls cost one
// stat of the directory: it is listed again only when its modification
// time moved, or lies so close to the last listing that a file created
// since could share it (file times come from a clock that ticks every
// few milliseconds).
func (l *logFiles) syncRotated() ([]string, error) {
	var st unix.Stat_t
	if err := unix.Stat(l.dir, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", l.dir, err)
	}
	mtime := time.Unix(st.Mtim.Unix())
	if l.last != nil && mtime.Equal(l.mtime) && l.listedAt.Sub(mtime) > 50*time.Millisecond {
		return nil, nil
	}
	listedAt := time.Now()
	now, err := l.list()
	if err != nil {
		return nil, err
	}
	var synced []string
	if l.last != nil && slices.ContainsFunc(now, func(n string) bool { return !slices.Contains(l.last, n) }) {
		for _, name := range l.last {
			if !slices.Contains(now, name) {
				continue // flushed or collected: its data is elsewhere, synced
			}
			if err := fdatasync(filepath.Join(l.dir, name)); err != nil {
				return synced, err
			}
			synced = append(synced, name)
		}
	}
	l.last, l.mtime, l.listedAt = now, mtime, listedAt
	return synced, nil
}

func fdatasync(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
