package delivery

import (
	"encoding/binary"
	"errors"
	"time"
)

// recordVersion marks the binary layout of a delivery record. Records are
// read and rewritten at every state change, on the hot path, so they are
// encoded by hand rather than as JSON (a quarter of the delivery path's
// CPU went to encoding/json).
const recordVersion = 1

const (
	flagBatch = 1 << iota
	flagSealed
	flagFinished
	flagLastAt
)

var errBadRecord = errors.New("decode delivery record: malformed")

func (r *record) encode() []byte {
	b := make([]byte, 0, 96+len(r.Webhook)+len(r.EventType)+len(r.Event)+len(r.Group)+len(r.LastError))
	b = append(b, recordVersion, r.Status.byte())
	var flags byte
	if r.Batch {
		flags |= flagBatch
	}
	if r.Sealed {
		flags |= flagSealed
	}
	if r.FinishedAt != nil {
		flags |= flagFinished
	}
	if r.LastAt != nil {
		flags |= flagLastAt
	}
	b = append(b, flags)
	for _, s := range []string{r.ID, r.Webhook, r.EventType, r.Event, r.Group, r.LastError} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, r.CreatedAt.UnixNano())
	b = binary.AppendVarint(b, r.DueAt.UnixNano())
	if r.FinishedAt != nil {
		b = binary.AppendVarint(b, r.FinishedAt.UnixNano())
	}
	if r.LastAt != nil {
		b = binary.AppendVarint(b, r.LastAt.UnixNano())
	}
	for _, n := range []int{r.LastCode, r.Tries, r.AutoTries} {
		b = binary.AppendVarint(b, int64(n))
	}
	return b
}

func (r *record) decode(b []byte) error {
	d := decoder{b: b}
	if d.byte() != recordVersion {
		return errBadRecord
	}
	switch d.byte() {
	case 's':
		r.Status = StatusSuccess
	case 'f':
		r.Status = StatusFailure
	default:
		r.Status = StatusInQueue
	}
	flags := d.byte()
	r.Batch, r.Sealed = flags&flagBatch != 0, flags&flagSealed != 0
	for _, s := range []*string{&r.ID, &r.Webhook, &r.EventType, &r.Event, &r.Group, &r.LastError} {
		*s = d.string()
	}
	r.CreatedAt, r.DueAt = d.time(), d.time()
	r.FinishedAt, r.LastAt = nil, nil
	if flags&flagFinished != 0 {
		t := d.time()
		r.FinishedAt = &t
	}
	if flags&flagLastAt != 0 {
		t := d.time()
		r.LastAt = &t
	}
	for _, n := range []*int{&r.LastCode, &r.Tries, &r.AutoTries} {
		*n = int(d.varint())
	}
	if d.bad {
		return errBadRecord
	}
	return nil
}

// decoder reads what encode appended, remembering the first error.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	l, n := binary.Uvarint(d.b)
	if n <= 0 || uint64(len(d.b)-n) < l {
		d.bad = true
		return ""
	}
	s := string(d.b[n : n+int(l)])
	d.b = d.b[n+int(l):]
	return s
}

func (d *decoder) time() time.Time { return time.Unix(0, d.varint()) }
