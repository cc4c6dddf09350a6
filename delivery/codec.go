package delivery

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// eventVersion marks the binary layout of an event record. Records of the
// first layout start with the big-endian length of their JSON metadata,
// so with a zero byte; they are still read.
const eventVersion = 1

var errBadEvent = errors.New("decode event: malformed record")

func (ev *event) encode() []byte {
	n := 32 + len(ev.Type) + len(ev.Data)
	for _, d := range ev.Deliveries {
		n += 1 + len(d)
	}
	b := make([]byte, 0, n)
	b = append(b, eventVersion)
	b = binary.AppendUvarint(b, uint64(len(ev.Type)))
	b = append(b, ev.Type...)
	b = binary.AppendVarint(b, ev.ReceivedAt.UnixNano())
	b = binary.AppendVarint(b, int64(ev.Refs))
	b = binary.AppendUvarint(b, uint64(len(ev.Deliveries)))
	for _, d := range ev.Deliveries {
		b = binary.AppendUvarint(b, uint64(len(d)))
		b = append(b, d...)
	}
	return append(b, ev.Data...)
}

// decode reads an event record. Data is copied: b belongs to Badger.
func (ev *event) decode(b []byte) error {
	if len(b) > 0 && b[0] == 0 {
		return ev.decodeJSONMeta(b)
	}
	d := decoder{b: b}
	if d.byte() != eventVersion {
		return errBadEvent
	}
	ev.Type = d.string()
	ev.ReceivedAt = d.time()
	ev.Refs = int(d.varint())
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return errBadEvent
	}
	ev.Deliveries = make([]string, 0, n)
	for range n {
		ev.Deliveries = append(ev.Deliveries, d.string())
	}
	if d.bad {
		return errBadEvent
	}
	ev.Data = append(json.RawMessage(nil), d.b...)
	return nil
}

// decodeJSONMeta reads the first layout: the length of the metadata as
// four big-endian bytes, the metadata as JSON, then the data.
func (ev *event) decodeJSONMeta(b []byte) error {
	if len(b) < 4 || int(binary.BigEndian.Uint32(b)) > len(b)-4 {
		return errors.New("decode event: truncated record")
	}
	n := binary.BigEndian.Uint32(b)
	if err := json.Unmarshal(b[4:4+n], ev); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	ev.Data = append(json.RawMessage(nil), b[4+n:]...)
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

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

// bytes reads a length and that many bytes, which it returns without
// copying them.
func (d *decoder) bytes() []byte {
	l, n := binary.Uvarint(d.b)
	if n <= 0 || uint64(len(d.b)-n) < l {
		d.bad = true
		return nil
	}
	b := d.b[n : n+int(l)]
	d.b = d.b[n+int(l):]
	return b
}

func (d *decoder) time() time.Time { return time.Unix(0, d.varint()) }

// attemptVersion marks the binary layout of an attempt. Every attempt is
// written once on the delivery path, where encoding/json cost more than
// the rest of recording it. Attempts stored as JSON, which start with
// '{', are still read.
const attemptVersion = 1

const (
	flagManual = 1 << iota
	flagRequest
	flagResponse
	flagRetryAt
	flagTruncated
)

var errBadAttempt = errors.New("decode attempt: malformed")

func (a *storedAttempt) encode() []byte {
	n := 64 + len(a.Error) + len(a.BodyType)
	var flags byte
	if a.Manual {
		flags |= flagManual
	}
	if a.RetryAt != nil {
		flags |= flagRetryAt
	}
	if r := a.Request; r != nil {
		flags |= flagRequest
		n += len(r.URL) + len(r.Body) + headersLen(r.Headers)
		for _, c := range r.Command {
			n += 2 + len(c)
		}
	}
	if r := a.Response; r != nil {
		flags |= flagResponse
		if r.Truncated {
			flags |= flagTruncated
		}
		n += len(r.Body) + headersLen(r.Headers)
	}
	b := make([]byte, 0, n)
	b = append(b, attemptVersion, flags)
	b = binary.AppendVarint(b, int64(a.N))
	b = binary.AppendVarint(b, a.At.UnixNano())
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.DurationMS))
	b = appendString(b, a.Error)
	b = appendString(b, a.BodyType)
	if a.RetryAt != nil {
		b = binary.AppendVarint(b, a.RetryAt.UnixNano())
	}
	if r := a.Request; r != nil {
		b = appendString(b, r.URL)
		b = appendHeaders(b, r.Headers)
		b = appendString(b, r.Body)
		b = binary.AppendUvarint(b, uint64(len(r.Command)))
		for _, c := range r.Command {
			b = appendString(b, c)
		}
	}
	if r := a.Response; r != nil {
		b = binary.AppendVarint(b, int64(r.Status))
		b = appendHeaders(b, r.Headers)
		b = appendString(b, r.Body)
	}
	return b
}

func (a *storedAttempt) decode(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, a); err != nil {
			return fmt.Errorf("decode attempt: %w", err)
		}
		return nil
	}
	d := decoder{b: b}
	if d.byte() != attemptVersion {
		return errBadAttempt
	}
	flags := d.byte()
	*a = storedAttempt{}
	a.Manual = flags&flagManual != 0
	a.N = int(d.varint())
	a.At = d.time()
	if len(d.b) < 8 {
		return errBadAttempt
	}
	a.DurationMS = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	a.Error, a.BodyType = d.string(), d.string()
	if flags&flagRetryAt != 0 {
		t := d.time()
		a.RetryAt = &t
	}
	if flags&flagRequest != 0 {
		r := &Request{URL: d.string(), Headers: d.headers(), Body: d.string()}
		if n := d.uvarint(); n > 0 && n <= uint64(len(d.b)) {
			r.Command = make([]string, 0, n)
			for range n {
				r.Command = append(r.Command, d.string())
			}
		} else if n > 0 {
			return errBadAttempt
		}
		a.Request = r
	}
	if flags&flagResponse != 0 {
		a.Response = &Response{Status: int(d.varint()), Headers: d.headers(), Body: d.string(), Truncated: flags&flagTruncated != 0}
	}
	if d.bad || len(d.b) != 0 {
		return errBadAttempt
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func headersLen(h map[string]string) int {
	n := 1
	for k, v := range h {
		n += 2 + len(k) + len(v)
	}
	return n
}

// appendHeaders writes a header map as its size plus one (zero for nil)
// and its pairs.
func appendHeaders(b []byte, h map[string]string) []byte {
	if h == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(h))+1)
	for k, v := range h {
		b = appendString(appendString(b, k), v)
	}
	return b
}

// headers reads what appendHeaders wrote.
func (d *decoder) headers() map[string]string {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	if n--; n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	h := make(map[string]string, n)
	for range n {
		k := d.string()
		h[k] = d.string()
	}
	return h
}
