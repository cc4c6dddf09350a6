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

// journalSegmentSize is the size at which the journal moves to a new
// segment and a checkpoint follows. It bounds what a start after a crash
// replays: at most two segments.
const journalSegmentSize = 16 << 20

// journalWriteback is how much the journal grows between two writebacks
// of Badger's logs ahead of a checkpoint (see checkpointer).
const journalWriteback = 2 << 20

// syncer makes committed groups durable and answers their callers. It
// takes every group the writer committed while the last fsync ran and
// covers them with one more, so a slow disk makes groups larger rather
// than answers later. The fsync is the journal's: every commit is in it.
func (s *store) syncer(done chan<- struct{}) {
	defer close(done)
	for g := range s.syncs {
		gs := waiting(s.syncs, g, cap(s.syncs)+1)
		err := s.journal.sync()
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

// checkpointer retires the journal segments the writer sealed once
// Badger holds their records on disk. A checkpoint that fails keeps its
// segments for the next one: nothing is lost, the journal only grows.
//
// Between checkpoints, every journalWriteback of journal, it has the
// kernel start writing out Badger's logs, so that a checkpoint finds
// little left to write. Without it a checkpoint wrote out a whole
// segment's worth (16 MiB) at once, and the journal's fsyncs, and the
// 202s waiting on them, queued behind it for 50-120 ms every few
// seconds. A writeback promises nothing: one that fails is logged, and
// the checkpoint syncs anyway.
func (s *store) checkpointer(done chan<- struct{}) {
	defer close(done)
	warned := false // of a writeback failing: a filesystem may never do them
	for {
		select {
		case <-s.journal.writeback:
			if err := s.logs.writeBack(); err != nil && !warned {
				warned = true
				s.log.Warn("store writeback failed; checkpoints sync anyway, and further failures are not logged", "err", err)
			}
			s.writebacks.Add(1)
			continue
		case _, open := <-s.journal.due:
			if !open {
				return
			}
		}
		sealed := s.journal.takeSealed()
		err := s.syncLogs()
		if err == nil {
			err = s.journal.retire(sealed)
		}
		if err != nil {
			s.journal.putBack(sealed)
			s.log.Error("store checkpoint failed; the journal keeps its segments until the next one", "err", err)
		}
	}
}

// reclaim runs Badger's value log collection until it finds nothing
// more to collect. Collection moves live values into the current value
// log, unsynced, and deletes the old file at once; those values are in
// no journal segment, so a checkpoint follows to put them on disk. Call
// it only while the store is open.
func (s *store) reclaim() {
	n := 0
	for s.db.RunValueLogGC(0.5) == nil {
		n++
	}
	if n > 0 {
		s.journal.checkpointSoon()
	}
}

// syncLogs makes everything committed to Badger so far durable: its
// current write-ahead and value log, and the ones it left since the last
// sync.
func (s *store) syncLogs() error {
	if err := s.db.Sync(); err != nil {
		return err
	}
	_, err := s.logs.syncRotated()
	return err
}

// recover applies to Badger what the journal holds since the last
// checkpoint, makes it durable, and starts the journal afresh. After a
// clean stop the journal is empty and this costs one directory listing.
func (s *store) recover() error {
	start := time.Now()
	var (
		txn          = s.db.NewTransaction(true)
		bytes, count int64
	)
	defer func() { txn.Discard() }()
	got, err := s.journal.replay(func(payload []byte) error {
		var b, n int64
		if err := journalEntries(payload, func(_ bool, k, v []byte, _ uint64) error {
			b += int64(len(k) + len(v) + 16)
			n++
			return nil
		}); err != nil {
			return err
		}
		// Each record was one transaction, so alone it fits in one.
		if count > 0 && (bytes+b > s.maxBytes || count+n > s.maxCount) {
			if err := txn.Commit(); err != nil {
				return err
			}
			txn, bytes, count = s.db.NewTransaction(true), 0, 0
		}
		bytes, count = bytes+b, count+n
		return journalEntries(payload, func(del bool, k, v []byte, exp uint64) error {
			return setEntry(txn, write{key: k, val: v, del: del}, exp)
		})
	})
	if err == nil {
		err = txn.Commit()
	}
	if err != nil {
		return fmt.Errorf("replay journal: %w", err)
	}
	for _, path := range got.torn {
		s.log.Info("journal segment read up to its last whole record; what follows (a write a stop cut short, or a reused segment's old records) was never acknowledged", "file", path)
	}
	if got.skipped > 0 {
		s.log.Warn("journal records before a gap skipped: their segments were checkpointed already", "records", got.skipped)
	}
	if got.segments > 0 {
		if err := s.syncAllLogs(); err != nil {
			return fmt.Errorf("sync replayed journal: %w", err)
		}
		if err := s.journal.close(true); err != nil {
			return err
		}
		if got.records > 0 {
			s.log.Info("journal replayed after an unclean stop", "records", got.records, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	if err := s.journal.start(); err != nil {
		return err
	}
	_, err = s.logs.syncRotated() // the listing later checkpoints compare with
	return err
}

// syncAllLogs syncs Badger and every log file it has.
func (s *store) syncAllLogs() error {
	if err := s.db.Sync(); err != nil {
		return err
	}
	names, err := s.logs.list()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := fdatasync(filepath.Join(s.dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// logFiles tracks Badger's write-ahead (.mem) and value log (.vlog)
// files. Badger's Sync covers only the two it writes now: when a commit
// fills a memtable or a value log file, Badger goes on in a new file
// without syncing the old one, whose tail may hold writes a checkpoint
// is about to drop from the journal. syncRotated syncs those.
type logFiles struct {
	dir string
	// last holds the log files present at the last listing, and mtime
	// the directory's modification time then.
	last     []string
	mtime    time.Time
	listedAt time.Time
}

// list reads the log files now in the directory.
func (l *logFiles) list() ([]string, error) { return filesEnding(l.dir, ".mem", ".vlog") }

// filesEnding returns the names of the files in dir that end in one of
// the suffixes.
func filesEnding(dir string, suffixes ...string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, en := range entries {
		n := en.Name()
		if slices.ContainsFunc(suffixes, func(suf string) bool { return strings.HasSuffix(n, suf) }) {
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

// writeBack starts the kernel writing out the dirty pages of Badger's
// write-ahead logs and its two newest value logs (the older ones are
// written no more), and returns without waiting for them. It takes none
// of Badger's locks, where Badger's own Sync holds one that a commit
// filling its memtable must wait for.
func (l *logFiles) writeBack() error {
	names, err := l.list()
	if err != nil {
		return err
	}
	slices.Sort(names) // value logs are numbered with a fixed width
	var vlogs int
	for i := len(names) - 1; i >= 0; i-- {
		name := names[i]
		if strings.HasSuffix(name, ".vlog") {
			if vlogs++; vlogs > 2 {
				continue
			}
		}
		if err := onFile(filepath.Join(l.dir, name), "write out", startWriteback); err != nil {
			return err
		}
	}
	return nil
}

// startWriteback has the kernel start writing the file's dirty pages.
func startWriteback(fd int) error {
	return unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

func fdatasync(path string) error { return onFile(path, "sync", unix.Fdatasync) }

// onFile runs fn, named verb in its error, on a descriptor of the file at
// path opened for reading. A file gone meanwhile is skipped: Badger
// removes the logs it has flushed or collected.
func onFile(path, verb string, fn func(fd int) error) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if err := fn(int(f.Fd())); err != nil {
		return fmt.Errorf("%s %s: %w", verb, path, err)
	}
	return nil
}
