package delivery

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The journal is sidehook's write-ahead log in front of Badger. The
// writer appends every transaction to it, as one record of the keys it
// sets (with their values and expiry) and deletes, before committing the
// transaction to Badger. A 202 then waits for one fdatasync of a plain
// file, where Badger's own Sync is two msyncs of memory-mapped logs,
// several times slower and dearer in CPU.
//
// Badger's files are made durable only at checkpoints: when a segment of
// the journal fills, the checkpointer syncs Badger and retires the
// segments it now holds on disk. At open, the records still in the
// journal are applied to Badger again, oldest first. Writing a key again
// with the value a later record gives it, or deleting it again, leaves
// the same state, so replaying records Badger already has is harmless and
// the journal never needs to know which those are; it only needs every
// record since the last checkpoint, in order, which the contiguous
// sequence numbers check.
//
// Segments are written over rather than appended to where they can be:
// a checkpoint keeps up to maxSpares of the segments it retires as
// spares, and a new segment is a spare renamed. An fdatasync after
// writing over blocks the file already has writes only those blocks;
// after an append it must also commit the file's new size through the
// filesystem's own journal, which doubles its time and its CPU on ext4.
// A spare still holds its old records past the point the new ones reach,
// so replay reads a segment only while its records carry the sequence
// numbers that follow from its name; and sequence numbers never go back:
// a spare's name is a bound on the ones it holds, and the journal starts
// above every spare's.
//
// A record is laid out as:
//
//	uint32 payload length | uint32 CRC-32C of seq and payload | uint64 seq | payload
//
// and its payload as entries, each a kind byte ('s' set, 'd' delete),
// then the key and, for a set, the value (each as a uvarint length and
// the bytes) and the expiry time (uvarint Unix seconds, 0 for none).
type journal struct {
	dir     string
	segSize int64

	// Owned by the writer goroutine.
	f    *os.File
	size int64
	seq  uint64
	rec  []byte
	// writebackSize is how often, in bytes of a segment, the checkpointer
	// is asked for a writeback.
	writebackSize int64

	// mu keeps sync and rotate apart (rotate switches f) and guards the
	// lists of sealed and spare segments.
	mu     sync.Mutex
	sealed []spent
	spares []string
	// due tells the checkpointer a segment was sealed, or that Badger
	// wrote what the journal does not hold (see store.reclaim).
	due chan struct{}
	// writeback tells the checkpointer that writebackSize more were
	// appended: time to write Badger's logs out ahead of the checkpoint.
	writeback chan struct{}
}

const (
	journalHeader = 16
	journalExt    = ".journal"
	spareExt      = ".spare"
	// maxSpares is how many freed segments the journal keeps to write
	// over; a checkpoint removes the others.
	maxSpares = 2
)

// spent is a sealed segment and the last sequence number it holds.
type spent struct {
	path string
	last uint64
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// openJournal prepares the journal directory and finds its spares. Call
// replay, then start.
func openJournal(dir string, segSize int64) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create journal directory %s: %w", dir, err)
	}
	j := &journal{dir: dir, segSize: segSize, writebackSize: journalWriteback,
		due: make(chan struct{}, 1), writeback: make(chan struct{}, 1)}
	names, err := filesEnding(dir, spareExt)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		bound, err := strconv.ParseUint(strings.TrimSuffix(name, spareExt), 16, 64)
		if err != nil {
			continue
		}
		j.spares = append(j.spares, filepath.Join(dir, name))
		j.seq = max(j.seq, bound)
	}
	return j, nil
}

// segments returns the journal's segment files, oldest first, with the
// sequence number each starts at.
func (j *journal) segments() ([]segment, error) {
	names, err := filesEnding(j.dir, journalExt)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, name := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(name, journalExt), 16, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{path: filepath.Join(j.dir, name), first: first})
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.first, b.first) })
	return segs, nil
}

type segment struct {
	path  string
	first uint64
}

// replayed is what a replay found.
type replayed struct {
	segments, records, skipped int
	torn                       []string // segments read only up to a record cut short, damaged or out of sequence
	last                       uint64   // the newest sequence number seen, replayed or not
}

// replay calls apply with the payload of every record since the last
// checkpoint, oldest first. It reads each segment up to its first record
// that is cut short or fails its checksum (the tail being written when
// the process or the power stopped), or that does not carry the next
// sequence number (a spare's old records, past the new ones). Records
// before a break in the sequence numbers are skipped: they come from
// segments already checkpointed whose retirement was not yet on disk,
// and replaying them alone would set keys back to older values.
func (j *journal) replay(apply func(payload []byte) error) (replayed, error) {
	var out replayed
	segs, err := j.segments()
	if err != nil {
		return out, err
	}
	type rec struct {
		seq     uint64
		payload []byte
	}
	var run []rec
	out.segments = len(segs)
	for _, sg := range segs {
		if sg.first > 0 {
			out.last = max(out.last, sg.first-1)
		}
		b, err := os.ReadFile(sg.path)
		if err != nil {
			return out, fmt.Errorf("read journal %s: %w", sg.path, err)
		}
		for next := sg.first; len(b) > 0; next++ {
			seq, payload, n := decodeRecord(b)
			if n == 0 || seq != next {
				out.torn = append(out.torn, sg.path)
				break
			}
			b = b[n:]
			if len(run) > 0 && seq != run[len(run)-1].seq+1 {
				out.skipped += len(run)
				run = run[:0]
			}
			run = append(run, rec{seq, payload})
			out.last = max(out.last, seq)
		}
	}
	j.seq = max(j.seq, out.last)
	for _, r := range run {
		if err := apply(r.payload); err != nil {
			return out, fmt.Errorf("replay journal record %d: %w", r.seq, err)
		}
		out.records++
	}
	return out, nil
}

// decodeRecord returns the record at the start of b and its length, or
// n == 0 when b holds no whole record with a good checksum.
func decodeRecord(b []byte) (seq uint64, payload []byte, n int) {
	if len(b) < journalHeader {
		return 0, nil, 0
	}
	size := int(binary.LittleEndian.Uint32(b))
	if size > len(b)-journalHeader {
		return 0, nil, 0
	}
	body := b[8 : journalHeader+size]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, nil, 0
	}
	return binary.LittleEndian.Uint64(b[8:]), b[journalHeader : journalHeader+size], journalHeader + size
}

// start opens a new segment after the newest sequence number replay saw
// or a spare may hold.
func (j *journal) start() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.newSegment()
}

// newSegment opens the segment that starts after j.seq: a spare renamed
// if there is one, else a new file. Call it with mu held.
func (j *journal) newSegment() error {
	path := filepath.Join(j.dir, fmt.Sprintf("%016x%s", j.seq+1, journalExt))
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if n := len(j.spares); n > 0 {
		spare := j.spares[n-1]
		j.spares = j.spares[:n-1]
		if err := os.Rename(spare, path); err == nil {
			flags = os.O_WRONLY
		}
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("create journal segment: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.f, j.size = f, 0
	return nil
}

// begin starts the record of a transaction.
func (j *journal) begin() {
	j.rec = append(j.rec[:0], make([]byte, journalHeader)...)
}

// set records a key set to a value, expiring at the Unix time expiresAt
// (0: never).
func (j *journal) set(key, val []byte, expiresAt uint64) {
	j.rec = append(j.rec, 's')
	j.rec = binary.AppendUvarint(j.rec, uint64(len(key)))
	j.rec = append(j.rec, key...)
	j.rec = binary.AppendUvarint(j.rec, uint64(len(val)))
	j.rec = append(j.rec, val...)
	j.rec = binary.AppendUvarint(j.rec, expiresAt)
}

// delete records a key deleted.
func (j *journal) delete(key []byte) {
	j.rec = append(j.rec, 'd')
	j.rec = binary.AppendUvarint(j.rec, uint64(len(key)))
	j.rec = append(j.rec, key...)
}

// commit writes the record begun last after the segment's last one,
// unsynced, and returns where it starts so a failed Badger commit can
// take it back with undo.
func (j *journal) commit() (int64, error) {
	if j.size > 0 && j.size+int64(len(j.rec)) > j.segSize {
		if err := j.rotate(); err != nil {
			return 0, err
		}
	}
	seq := j.seq + 1
	binary.LittleEndian.PutUint32(j.rec, uint32(len(j.rec)-journalHeader))
	binary.LittleEndian.PutUint64(j.rec[8:], seq)
	binary.LittleEndian.PutUint32(j.rec[4:], crc32.Checksum(j.rec[8:], crcTable))
	off := j.size
	if _, err := j.f.WriteAt(j.rec, off); err != nil {
		// A partial record fails its checksum at replay, but a later one
		// written after it would be lost with it: cut it off.
		if terr := j.f.Truncate(off); terr != nil {
			return 0, fmt.Errorf("write journal: %w (and cutting it back: %v)", err, terr)
		}
		return 0, fmt.Errorf("write journal: %w", err)
	}
	j.seq, j.size = seq, off+int64(len(j.rec))
	if off/j.writebackSize != j.size/j.writebackSize {
		select {
		case j.writeback <- struct{}{}:
		default:
		}
	}
	return off, nil
}

// undo takes back the record committed last, which starts at off.
func (j *journal) undo(off int64) error {
	if err := j.f.Truncate(off); err != nil {
		return fmt.Errorf("cut journal record: %w", err)
	}
	j.seq--
	j.size = off
	return nil
}

// rotate syncs and seals the current segment and opens the next one.
func (j *journal) rotate() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	old := j.f
	if err := j.newSegment(); err != nil {
		return err
	}
	j.sealed = append(j.sealed, spent{old.Name(), j.seq})
	old.Close()
	j.checkpointSoon()
	return nil
}

// checkpointSoon wakes the checkpointer, unless it is already due.
func (j *journal) checkpointSoon() {
	select {
	case j.due <- struct{}{}:
	default:
	}
}

// sync makes every record appended so far durable.
func (j *journal) sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return nil
}

// takeSealed returns the sealed segments, which a checkpoint may retire
// once Badger holds their records on disk.
func (j *journal) takeSealed() []spent {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.sealed
	j.sealed = nil
	return s
}

// putBack returns segments a checkpoint could not retire.
func (j *journal) putBack(segs []spent) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.sealed = append(segs, j.sealed...)
}

// retire takes segments whose records Badger holds on disk out of the
// journal, oldest first, each on disk before the next: a power loss then
// leaves the newest of them, which replay treats as what they are
// (records Badger has), never an older one alone. Up to maxSpares become
// spares; the others are removed.
func (j *journal) retire(segs []spent) error {
	for i, sg := range segs {
		if err := j.recycle(sg); err != nil {
			return fmt.Errorf("retire journal segment: %w", err)
		}
		if err := syncDir(j.dir); err != nil {
			return fmt.Errorf("retire journal segment %d of %d: %w", i+1, len(segs), err)
		}
	}
	return nil
}

// recycle renames a retired segment to a spare, named for the last
// sequence number it holds, or removes it when there are spares enough.
func (j *journal) recycle(sg spent) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	spare := filepath.Join(j.dir, fmt.Sprintf("%016x%s", sg.last, spareExt))
	var err error
	// An empty segment has the bound of the one before it.
	if len(j.spares) < maxSpares && !slices.Contains(j.spares, spare) {
		if err = os.Rename(sg.path, spare); err == nil {
			j.spares = append(j.spares, spare)
		}
	} else {
		err = os.Remove(sg.path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil // retired before
	}
	return err
}

// close closes the current segment and, with empty set, retires every
// segment: the caller made Badger durable and closed it.
func (j *journal) close(empty bool) error {
	if j.f != nil {
		j.f.Close()
	}
	if !empty {
		return nil
	}
	segs, err := j.segments()
	if err != nil {
		return err
	}
	// A segment holds sequence numbers up to the next one's first; the
	// newest up to j.seq, the newest the writer wrote or replay saw.
	retired := make([]spent, len(segs))
	for i, sg := range segs {
		retired[i] = spent{sg.path, j.seq}
		if i+1 < len(segs) {
			retired[i].last = segs[i+1].first - 1
		}
	}
	return j.retire(retired)
}

// journalEntries calls fn for each entry of a record's payload.
func journalEntries(payload []byte, fn func(del bool, key, val []byte, expiresAt uint64) error) error {
	d := decoder{b: payload}
	for len(d.b) > 0 {
		kind := d.byte()
		key := d.bytes()
		var val []byte
		var exp uint64
		switch kind {
		case 'd':
		case 's':
			val, exp = d.bytes(), d.uvarint()
		default:
			return fmt.Errorf("journal entry of unknown kind %q", kind)
		}
		if d.bad {
			return errors.New("journal entry cut short")
		}
		if err := fn(kind == 'd', key, val, exp); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
