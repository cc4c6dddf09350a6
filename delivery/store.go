package delivery

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/sidehook/sidehook/config"
	"golang.org/x/sys/unix"
)

// ErrNotFound is returned for an unknown delivery.
var ErrNotFound = errors.New("not found")

// ErrStorage marks a write the store could not make durable. The daemon
// answers it with 503: nothing was promised.
var ErrStorage = errors.New("storage not writable")

// ErrTooLarge is returned for a change too large to commit atomically.
var ErrTooLarge = errors.New("too large to store in one atomic write: split it into smaller requests")

// store is the Badger database and its single writer. Every change goes
// through the writer as an op; the writer puts every op that is waiting
// into one transaction and syncs the log once for the whole group, so
// concurrent ingests share one fsync (group commit) while each op stays
// atomic on its own.
type store struct {
	db  *badger.DB
	log *slog.Logger
	ids *idGen
	// now reads the wall clock (time.Now but in tests).
	now func() time.Time

	ops chan *op
	// journal takes every commit first; its fsync is what a 202 waits
	// for, and Badger's files are synced only at checkpoints (journal.go).
	journal *journal
	// syncs carries committed groups from the writer to the syncer, which
	// answers them after their fsync (see sync.go).
	syncs   chan *group
	logs    logFiles
	stopped chan struct{}
	// sendMu lets close wait for ops being submitted, and refuse later ones.
	sendMu sync.RWMutex
	closed bool

	// Written by the writer goroutine only, after a commit; read by
	// anyone under mu.
	mu     sync.RWMutex
	counts map[string]*Counts
	// open is the writer's view of open batches, keyed like kOpen.
	open map[string]openBatch

	// watches are the records attempts read, which commits mark changed.
	watches watches

	// onQueue is told of every due-index entry a commit added.
	onQueue func(q queued)

	// commits, fsyncs and writes count transactions, syncs and keys
	// written, for the write-amplification metrics.
	commits, fsyncs, writes atomic.Int64
	// writebacks counts the writebacks of Badger's logs between checkpoints.
	writebacks atomic.Int64

	writeErr atomic.Pointer[error]
	maxBytes int64
	maxCount int64

	// dir and minFree guard the disk: see checkSpace. dirFile is dir,
	// held open so that each commit asks fstatfs of it, which skips the
	// path lookup statfs does.
	dir     string
	dirFile *os.File
	minFree int64
}

// op is one atomic change: fn stages writes on a wtx, which are applied
// only when fn returns nil.
type op struct {
	fn   func(w *wtx) error
	sync bool
	done chan error
}

// storeOptions returns Badger options sized for a sidecar: modest memory,
// our own fsync (group commit, through the journal), and Badger's logs at
// debug level. Value log files are 64 MiB: the one being written is never
// collected, so its size bounds what stays on disk after a queue drains
// and expires. Every value over 32 bytes (records, bodies, attempts) goes
// to the value log, so the tables hold keys and pointers: at 5,000
// events/s memtables fill and L0 compactions come about half as often and
// each moves less. At 512 bytes, those compactions stalled deliveries for
// 100-300 ms every five seconds. There is no index cache: Badger keeps an
// unencrypted table's index with the table and uses the cache only for
// encrypted ones.
func storeOptions(dir string, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithDetectConflicts(false).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(16 << 20).
		WithValueThreshold(32).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithCompression(options.None).
		WithMetricsEnabled(false)
}

func openStore(dir string, minFree int64, log *slog.Logger) (*store, error) {
	if err := removeEmptyLogs(dir, log); err != nil {
		return nil, err
	}
	db, err := badger.Open(storeOptions(dir, log))
	if err != nil {
		hint := "is the directory writable?"
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			hint = "another sidehook is running on this data directory; stop it or use another --data"
		}
		return nil, fmt.Errorf("open store %s: %w (%s)", dir, err, hint)
	}
	// fail closes what is open so far, in the reverse order of opening,
	// and says which store failed.
	var (
		j       *journal
		dirFile *os.File
	)
	fail := func(err error) (*store, error) {
		if dirFile != nil {
			dirFile.Close()
		}
		if j != nil {
			j.close(false)
		}
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if j, err = openJournal(filepath.Join(dir, "journal"), journalSegmentSize); err != nil {
		return fail(err)
	}
	if dirFile, err = os.Open(dir); err != nil {
		return fail(err)
	}
	s := &store{
		db:       db,
		journal:  j,
		log:      log,
		ids:      newIDGen(),
		now:      time.Now,
		ops:      make(chan *op, 4096),
		syncs:    make(chan *group, 64),
		logs:     logFiles{dir: dir},
		stopped:  make(chan struct{}),
		counts:   map[string]*Counts{},
		open:     map[string]openBatch{},
		onQueue:  func(queued) {},
		maxBytes: db.MaxBatchSize() / 2,
		maxCount: db.MaxBatchCount() / 2,
		dir:      dir,
		dirFile:  dirFile,
		minFree:  minFree,
	}
	if err := s.recover(); err != nil {
		return fail(err)
	}
	if err := s.load(); err != nil {
		return fail(err)
	}
	synced := make(chan struct{})
	checkpointed := make(chan struct{})
	go s.syncer(synced)
	go s.checkpointer(checkpointed)
	go s.writer(synced, checkpointed)
	return s, nil
}

// removeEmptyLogs deletes zero-length write-ahead and value log files. A
// kill between Badger creating such a file and sizing it leaves one behind
// (dgraph-io/badger#2207), and Badger then refuses to open the store. An
// empty file holds no data, so removing it loses nothing.
func removeEmptyLogs(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read data directory %s: %w", dir, err)
	}
	for _, en := range entries {
		name := en.Name()
		if !strings.HasSuffix(name, ".mem") && !strings.HasSuffix(name, ".vlog") {
			continue
		}
		info, err := en.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove empty log file %s: %w", path, err)
		}
		log.Warn("removed an empty log file left by a crash", "file", path)
	}
	return nil
}

// load reads the small in-memory state: counts and open batches.
func (s *store) load() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pCount}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			webhook, st := string(k[1:len(k)-2]), k[len(k)-1]
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("read counts: %w", err)
			}
			if len(v) != 8 {
				return fmt.Errorf("read counts: the count of %q is %d bytes, not 8: the data directory is damaged", k, len(v))
			}
			c := s.countsOf(webhook)
			n := int64(binary.BigEndian.Uint64(v))
			switch st {
			case 'q':
				c.InQueue = n
			case 's':
				c.Success = n
			case 'f':
				c.Failure = n
			}
		}
		it2 := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pOpen}, PrefetchValues: true})
		defer it2.Close()
		for it2.Rewind(); it2.Valid(); it2.Next() {
			var ob openBatch
			if err := it2.Item().Value(func(v []byte) error { return json.Unmarshal(v, &ob) }); err != nil {
				return fmt.Errorf("read open batches: %w", err)
			}
			s.open[string(it2.Item().KeyCopy(nil))] = ob
		}
		return nil
	})
}

func (s *store) countsOf(webhook string) *Counts {
	c := s.counts[webhook]
	if c == nil {
		c = &Counts{}
		s.counts[webhook] = c
	}
	return c
}

// close stops the writer after the ops already submitted and closes the
// database. The journal is emptied only once Badger's files are synced
// and closed; until then it can replay everything since the last
// checkpoint.
func (s *store) close() error {
	s.sendMu.Lock()
	s.closed = true
	close(s.ops)
	s.sendMu.Unlock()
	<-s.stopped
	s.dirFile.Close()
	if err := s.syncLogs(); err != nil {
		s.db.Close()
		s.journal.close(false)
		return fmt.Errorf("sync store: %w", err)
	}
	if err := s.db.Close(); err != nil {
		s.journal.close(false)
		return fmt.Errorf("close store: %w", err)
	}
	return s.journal.close(true)
}

// do runs fn as one atomic op through the writer and waits for its
// commit (and, with sync, its fsync).
func (s *store) do(ctx context.Context, sync bool, fn func(w *wtx) error) error {
	o := &op{fn: fn, sync: sync, done: make(chan error, 1)}
	s.sendMu.RLock()
	if s.closed {
		s.sendMu.RUnlock()
		return fmt.Errorf("%w: the store is closed", ErrStorage)
	}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		s.sendMu.RUnlock()
		return ctx.Err()
	}
	s.sendMu.RUnlock()
	// Once submitted the op will be committed or fail; wait for that so
	// the caller never answers before knowing.
	return <-o.done
}

// healthy returns the last write error, or nil when the last write worked.
func (s *store) healthy() error {
	if p := s.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// writer applies the ops in arrival order. It takes every op that is
// waiting, commits them as one transaction, and moves on to the next
// group while the syncer makes the last one durable: commits and fsyncs
// overlap, and one fsync covers every group committed while the previous
// one ran.
func (s *store) writer(synced, checkpointed <-chan struct{}) {
	defer close(s.stopped)
	for first := range s.ops {
		ops := waiting(s.ops, first, 4096)
		for len(ops) > 0 {
			g := s.commitSome(ops)
			ops = ops[len(g.ops):]
			if g.needSync {
				s.syncs <- g
			} else {
				s.answer(g, nil)
			}
		}
	}
	close(s.syncs)
	<-synced
	close(s.journal.due)
	<-checkpointed
}

// waiting returns first and whatever else ch holds right now, up to limit
// in all, without waiting for more.
func waiting[T any](ch <-chan T, first T, limit int) []T {
	all := []T{first}
	for len(all) < limit {
		select {
		case v, ok := <-ch:
			if !ok {
				return all
			}
			all = append(all, v)
		default:
			return all
		}
	}
	return all
}

// groupState is what the ops of one transaction changed in memory; it is
// merged into the store only after the commit.
type groupState struct {
	counts map[string]*Counts
	open   map[string]*openBatch // nil value: deleted
	queued []queued
	// records holds the ids of the delivery records the group wrote.
	records map[string]struct{}
}

type queued struct {
	webhook string
	due     time.Time
	id      string
	// pre is the delivery as its ingest staged it, ready to send, for an
	// entry due at once; seen watches it from its commit on (see
	// handOver).
	pre  *dueDelivery
	seen *seen
}

// group is what one transaction's callers are answered with once it is
// committed (and, with needSync, synced).
type group struct {
	ops      []*op
	errs     map[*op]error // ops refused on their own
	err      error         // the commit's error, for every other op
	queued   []queued      // due-index entries committed
	needSync bool
	spaceErr error
}

// answer tells a group's callers how their ops ended (syncErr, when the
// fsync failed) and the scheduler of the entries they queued.
func (s *store) answer(g *group, syncErr error) {
	err := cmp.Or(g.err, syncErr)
	for _, o := range g.ops {
		if e, bad := g.errs[o]; bad {
			o.done <- e
		} else {
			o.done <- err
		}
	}
	if g.err == nil {
		for _, q := range g.queued {
			s.onQueue(q)
		}
	}
}

// commitSome applies as many ops as fit in one transaction and commits
// them, unsynced. It returns the group of ops it took; the caller answers
// them, after an fsync when needSync says one of them asked for it.
func (s *store) commitSome(ops []*op) *group {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	s.journal.begin()
	g := &groupState{counts: map[string]*Counts{}, open: map[string]*openBatch{}}
	var (
		taken, bytes, count int64
		applied             int
		opErrs              = map[*op]error{}
		wantSync            bool
	)
	now, wall := s.now(), time.Now()
	free := s.freeSpace()
	var spaceErr error
	for _, o := range ops {
		if err := s.checkSpace(free, o.sync); err != nil {
			taken++
			opErrs[o] = err
			spaceErr = err
			continue
		}
		w := &wtx{s: s, txn: txn, g: g, now: now, expiry: wall, writes: make([]write, 0, 8)}
		err := o.fn(w)
		if err == nil {
			if taken > 0 && (bytes+w.bytes > s.maxBytes || count+int64(len(w.writes)) > s.maxCount) {
				break // commit what we have; this op starts the next group
			}
			// Alone, an op may fill the transaction, but Badger keeps one
			// entry for its commit marker and refuses the entry that
			// reaches MaxBatchCount, and writeCounts adds a key per
			// webhook and status the op changed.
			room := s.db.MaxBatchCount() - 2 - int64(3*len(w.counts))
			if w.bytes > 2*s.maxBytes || int64(len(w.writes)) > room {
				err = fmt.Errorf("%w (%d bytes, %d writes)", ErrTooLarge, w.bytes, len(w.writes))
			} else {
				err = w.apply()
			}
		}
		taken++
		if err != nil {
			opErrs[o] = err
			continue
		}
		bytes += w.bytes
		count += int64(len(w.writes))
		w.merge()
		applied++
		wantSync = wantSync || o.sync
	}
	out := &group{ops: ops[:taken], errs: opErrs, spaceErr: spaceErr}
	if spaceErr != nil {
		s.writeErr.Store(&spaceErr)
		s.log.Error("store refused writes", "err", spaceErr)
	}
	if applied == 0 {
		return out
	}
	count += s.writeCounts(txn, g)
	off, err := s.journal.commit()
	if err == nil {
		if err = txn.Commit(); err != nil {
			if uerr := s.journal.undo(off); uerr != nil {
				// The record stays and is applied at the next start:
				// the callers hear 503 for a change that may then appear.
				s.log.Error("store could not take back its journal record", "err", uerr)
			}
		}
	}
	if err != nil {
		out.err = fmt.Errorf("%w: commit: %v", ErrStorage, err)
		s.writeErr.Store(&out.err)
		s.log.Error("store write failed", "err", out.err, "ops", applied)
		return out
	}
	// Memory follows the database, which has the change even if the
	// fsync to come fails (the callers then hear 503).
	s.watches.committed(g.records)
	for i := range g.queued {
		if q := &g.queued[i]; q.pre != nil {
			q.seen = s.watches.watch(q.id)
			q.seen.rec = q.pre.rec
		}
	}
	s.commits.Add(1)
	s.writes.Add(count)
	s.mergeGroup(g)
	out.queued = g.queued
	out.needSync = wantSync
	if !wantSync && spaceErr == nil {
		s.writeErr.Store(nil)
	}
	return out
}

// freeSpace returns the bytes available to sidehook on the store's
// filesystem, or -1 when it cannot tell.
func (s *store) freeSpace() int64 {
	if s.minFree <= 0 {
		return -1
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(s.dirFile.Fd()), &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// checkSpace refuses a write when the disk is nearly full. Badger writes
// through memory-mapped files, where a full disk is a crash (SIGBUS), not
// an error; so sidehook keeps minFree in reserve: new events are refused
// (503) below it, while the records of attempts and expiry, which keep
// deliveries going out and free space, may use three quarters of it.
func (s *store) checkSpace(free int64, sync bool) error {
	if free < 0 {
		return nil
	}
	need := s.minFree
	if !sync {
		need /= 4
	}
	if free >= need {
		return nil
	}
	return fmt.Errorf("%w: disk nearly full: %s free in %s, below the reserve of %s (min_free_space); free some space and sidehook resumes on its own",
		ErrStorage, humanBytes(free), s.dir, humanBytes(need))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// writeCounts stages the new counts of the webhooks the group changed and
// returns how many keys it wrote.
func (s *store) writeCounts(txn *badger.Txn, g *groupState) (n int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for webhook, d := range g.counts {
		base := Counts{}
		if c := s.counts[webhook]; c != nil {
			base = *c
		}
		for _, st := range []Status{StatusInQueue, StatusSuccess, StatusFailure} {
			var delta, cur int64
			switch st {
			case StatusInQueue:
				delta, cur = d.InQueue, base.InQueue
			case StatusSuccess:
				delta, cur = d.Success, base.Success
			case StatusFailure:
				delta, cur = d.Failure, base.Failure
			}
			if delta != 0 {
				_ = s.stage(txn, write{key: kCount(webhook, st), val: be64(cur + delta)}, 0)
				n++
			}
		}
	}
	return n
}

func (s *store) mergeGroup(g *groupState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for webhook, d := range g.counts {
		c := s.countsOf(webhook)
		c.InQueue += d.InQueue
		c.Success += d.Success
		c.Failure += d.Failure
	}
	for k, ob := range g.open {
		if ob == nil {
			delete(s.open, k)
		} else {
			s.open[k] = *ob
		}
	}
}

// countsFor returns a copy of a webhook's counts.
func (s *store) countsFor(webhook string) Counts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.counts[webhook]; c != nil {
		return *c
	}
	return Counts{}
}

// queueDepth returns the number of queued deliveries across webhooks.
func (s *store) queueDepth() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, c := range s.counts {
		n += c.InQueue
	}
	return n
}

// wtx stages the writes of one op. Reads see the op's own staged writes,
// then everything earlier ops of the group applied to the transaction.
type wtx struct {
	s   *store
	txn *badger.Txn
	g   *groupState
	now time.Time
	// expiry is the wall clock time-to-live counts from.
	expiry time.Time
	writes []write
	// staged indexes writes by key once there are too many to scan.
	staged map[string]int
	bytes  int64
	counts map[string]*Counts
	open   map[string]*openBatch
	queued []queued
}

type write struct {
	key, val []byte
	ttl      time.Duration
	del      bool
}

func (w *wtx) set(k, v []byte) { w.stage(write{key: k, val: v}) }

func (w *wtx) setTTL(k, v []byte, ttl time.Duration) { w.stage(write{key: k, val: v, ttl: ttl}) }

func (w *wtx) del(k []byte) { w.stage(write{key: k, del: true}) }

func (w *wtx) setJSON(k []byte, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err)) // our own types always encode
	}
	w.set(k, b)
}

func (w *wtx) stage(wr write) {
	if i, ok := w.find(wr.key); ok {
		w.writes[i] = wr
	} else {
		if w.staged != nil {
			w.staged[string(wr.key)] = len(w.writes)
		}
		w.writes = append(w.writes, wr)
	}
	w.bytes += int64(len(wr.key) + len(wr.val) + 16)
}

// find returns the index of the op's write to k. Most ops write a
// handful of keys, which a scan finds faster than a map costs to fill.
func (w *wtx) find(k []byte) (int, bool) {
	if w.staged == nil {
		if len(w.writes) <= 16 {
			for i := range w.writes {
				if bytes.Equal(w.writes[i].key, k) {
					return i, true
				}
			}
			return 0, false
		}
		w.staged = make(map[string]int, 2*len(w.writes))
		for i, wr := range w.writes {
			w.staged[string(wr.key)] = i
		}
	}
	i, ok := w.staged[string(k)]
	return i, ok
}

// get returns a value, or nil and false when the key does not exist.
func (w *wtx) get(k []byte) ([]byte, bool, error) {
	if i, ok := w.find(k); ok {
		if w.writes[i].del {
			return nil, false, nil
		}
		return w.writes[i].val, true, nil
	}
	item, err := w.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

// getRecord reads a delivery record inside an op.
func (w *wtx) getRecord(id string, rec *record) (bool, error) {
	b, ok, err := w.get(kDelivery(id))
	if !ok || err != nil {
		return ok, err
	}
	return true, rec.decode(b)
}

func (w *wtx) getJSON(k []byte, v any) (bool, error) {
	b, ok, err := w.get(k)
	if !ok || err != nil {
		return ok, err
	}
	return true, json.Unmarshal(b, v)
}

// count records a change of a webhook's count in a status.
func (w *wtx) count(webhook string, st Status, n int64) {
	if w.counts == nil {
		w.counts = map[string]*Counts{}
	}
	c := w.counts[webhook]
	if c == nil {
		c = &Counts{}
		w.counts[webhook] = c
	}
	c.add(st, n)
}

// openBatch returns the open batch under key k as this op sees it.
func (w *wtx) openBatch(k []byte) (openBatch, bool) {
	if ob, ok := w.open[string(k)]; ok {
		if ob == nil {
			return openBatch{}, false
		}
		return *ob, true
	}
	if ob, ok := w.g.open[string(k)]; ok {
		if ob == nil {
			return openBatch{}, false
		}
		return *ob, true
	}
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	ob, ok := w.s.open[string(k)]
	return ob, ok
}

func (w *wtx) setOpenBatch(k []byte, ob *openBatch) {
	if w.open == nil {
		w.open = map[string]*openBatch{}
	}
	w.open[string(k)] = ob
	if ob == nil {
		w.del(k)
	} else {
		w.setJSON(k, ob)
	}
}

// enqueue adds a due-index entry and tells the scheduler after commit.
func (w *wtx) enqueue(webhook string, due time.Time, id string) {
	w.set(kQueue(webhook, due, id), nil)
	w.queued = append(w.queued, queued{webhook: webhook, due: due, id: id})
}

// handOver gives the scheduler, with the due-index entry just enqueued
// for rec, the delivery as it will go out: rec is due now, and data is
// its one event. A dispatcher that keeps up then sends it without reading
// it back from the store.
func (w *wtx) handOver(rec *record, wh *config.Webhook, data json.RawMessage) {
	q := &w.queued[len(w.queued)-1]
	body, err := encodeBody(wh.ContentType, false, []json.RawMessage{data})
	r := *rec
	q.pre = &dueDelivery{rec: &r, wh: wh, ready: true, body: body, bodyErr: err}
}

func (w *wtx) apply() error {
	for _, wr := range w.writes {
		var exp uint64
		if wr.ttl > 0 {
			exp = uint64(w.expiry.Add(wr.ttl).Unix())
		}
		if err := w.s.stage(w.txn, wr, exp); err != nil {
			return fmt.Errorf("%w: stage write: %v", ErrStorage, err)
		}
		if wr.key[0] == pDelivery {
			if w.g.records == nil {
				w.g.records = map[string]struct{}{}
			}
			w.g.records[string(wr.key[1:])] = struct{}{}
		}
	}
	return nil
}

// seenRecord returns the record sn holds, as an attempt read it, when
// neither a commit since nor an earlier op of this group wrote it; else
// it reads the record.
func (w *wtx) seenRecord(id string, sn *seen) (*record, bool, error) {
	if sn != nil && sn.rec != nil {
		if _, staged := w.g.records[id]; !staged && !w.s.watches.changed(sn) {
			rec := *sn.rec
			return &rec, true, nil
		}
	}
	return readRecord(w, id)
}

// stage puts a write in the transaction and in its journal record;
// expiresAt is in Unix seconds, 0 for never.
func (s *store) stage(txn *badger.Txn, wr write, expiresAt uint64) error {
	if err := setEntry(txn, wr, expiresAt); err != nil {
		return err
	}
	if wr.del {
		s.journal.delete(wr.key)
	} else {
		s.journal.set(wr.key, wr.val, expiresAt)
	}
	return nil
}

// setEntry puts a write in a Badger transaction.
func setEntry(txn *badger.Txn, wr write, expiresAt uint64) error {
	if wr.del {
		return txn.Delete(wr.key)
	}
	e := badger.NewEntry(wr.key, wr.val)
	e.ExpiresAt = expiresAt
	return txn.SetEntry(e)
}

// merge moves the op's in-memory effects into its group.
func (w *wtx) merge() {
	for webhook, d := range w.counts {
		c := w.g.counts[webhook]
		if c == nil {
			c = &Counts{}
			w.g.counts[webhook] = c
		}
		c.InQueue += d.InQueue
		c.Success += d.Success
		c.Failure += d.Failure
	}
	for k, ob := range w.open {
		w.g.open[k] = ob
	}
	w.g.queued = append(w.g.queued, w.queued...)
}

// badgerLogger sends Badger's own logging to slog at debug level, except
// errors and warnings, which keep their level.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error("badger: " + trimNL(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn("badger: " + trimNL(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Infof(f string, a ...any) { l.debug(f, a) }

func (l badgerLogger) Debugf(f string, a ...any) { l.debug(f, a) }

// debug formats a message only when it is logged: Badger logs one per
// write batch.
func (l badgerLogger) debug(f string, a []any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("badger: " + trimNL(fmt.Sprintf(f, a...)))
	}
}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
