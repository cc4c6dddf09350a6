package delivery

import (
	"encoding/base32"
	"encoding/binary"
	"sync"
	"time"
)

// Key layout. One prefix byte per table; webhook ids (which never contain
// a zero byte) end with one so that "a" never prefixes "ab"; integers are
// big-endian so keys sort by time; ids are fixed-length and time-ordered.
//
//	d<id>                        delivery record
//	a<id>\x00<n:4>               attempt n of a delivery
//	b<id>\x00<event id>          member event of a delivery, in arrival order
//	e<event id>                  event: type, data, deliveries
//	i<key>                       idempotency answer (24h TTL)
//	q<webhook>\x00<due:8><id>    due index of queued deliveries
//	w<webhook>\x00<id>           deliveries of a webhook
//	m<webhook>\x00<status><id>   deliveries of a webhook by status
//	r<finished:8><id>            finished deliveries, for retention
//	o<webhook>\x00<event type>   the open batch of a webhook and type
//	c<webhook>\x00<status>       delivery count of a webhook in a status
const (
	pDelivery = 'd'
	pAttempt  = 'a'
	pMember   = 'b'
	pEvent    = 'e'
	pIdem     = 'i'
	pQueue    = 'q'
	pWebhook  = 'w'
	pWebhookS = 'm'
	pRetain   = 'r'
	pOpen     = 'o'
	pCount    = 'c'
)

// idLen is the length of every id: a four-byte prefix and 26 characters of
// base32hex, which sorts like the 16 bytes it encodes.
const idLen = 30

var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// idGen makes ids that sort in creation order: 8 bytes of Unix nanoseconds
// (never going backwards, even when the wall clock does) and 8 bytes of a
// per-process counter seeded from the clock.
type idGen struct {
	mu   sync.Mutex
	last int64
	seq  uint64
}

func newIDGen() *idGen { return &idGen{seq: uint64(time.Now().UnixNano())} }

func (g *idGen) next(prefix string, now time.Time) string {
	g.mu.Lock()
	ns := now.UnixNano()
	if ns <= g.last {
		ns = g.last + 1
	}
	g.last = ns
	g.seq++
	seq := g.seq
	g.mu.Unlock()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(ns))
	binary.BigEndian.PutUint64(b[8:], seq)
	return prefix + idEncoding.EncodeToString(b[:])
}

// idTime returns the creation time encoded in an id, or false.
func idTime(id string) (time.Time, bool) {
	if len(id) != idLen {
		return time.Time{}, false
	}
	b, err := idEncoding.DecodeString(id[4:])
	if err != nil || len(b) != 16 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

func key(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func be64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

func kDelivery(id string) []byte { return key([]byte{pDelivery}, []byte(id)) }
func kEvent(id string) []byte    { return key([]byte{pEvent}, []byte(id)) }
func kIdem(k string) []byte      { return key([]byte{pIdem}, []byte(k)) }

func kAttempt(id string, n int) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n))
	return key([]byte{pAttempt}, []byte(id), []byte{0}, b[:])
}

func kAttemptPrefix(id string) []byte { return key([]byte{pAttempt}, []byte(id), []byte{0}) }

func kMember(id, eventID string) []byte {
	return key([]byte{pMember}, []byte(id), []byte{0}, []byte(eventID))
}

func kMemberPrefix(id string) []byte { return key([]byte{pMember}, []byte(id), []byte{0}) }

func kQueuePrefix(webhook string) []byte { return key([]byte{pQueue}, []byte(webhook), []byte{0}) }

func kQueue(webhook string, due time.Time, id string) []byte {
	return key(kQueuePrefix(webhook), be64(due.UnixNano()), []byte(id))
}

// queueEntry splits a due-index key.
func queueEntry(k []byte) (webhook string, due time.Time, id string, ok bool) {
	if len(k) < 1+1+8+idLen || k[0] != pQueue {
		return "", time.Time{}, "", false
	}
	rest := k[len(k)-8-idLen:]
	if k[len(k)-8-idLen-1] != 0 {
		return "", time.Time{}, "", false
	}
	webhook = string(k[1 : len(k)-8-idLen-1])
	due = time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8])))
	return webhook, due, string(rest[8:]), true
}

func kWebhookPrefix(webhook string) []byte {
	return key([]byte{pWebhook}, []byte(webhook), []byte{0})
}

func kWebhook(webhook, id string) []byte { return key(kWebhookPrefix(webhook), []byte(id)) }

func kWebhookStatusPrefix(webhook string, s Status) []byte {
	return key([]byte{pWebhookS}, []byte(webhook), []byte{0, s.byte()})
}

func kWebhookStatus(webhook string, s Status, id string) []byte {
	return key(kWebhookStatusPrefix(webhook, s), []byte(id))
}

func kRetain(finished time.Time, id string) []byte {
	return key([]byte{pRetain}, be64(finished.UnixNano()), []byte(id))
}

func kOpen(webhook, eventType string) []byte {
	return key([]byte{pOpen}, []byte(webhook), []byte{0}, []byte(eventType))
}

func kCount(webhook string, s Status) []byte {
	return key([]byte{pCount}, []byte(webhook), []byte{0, s.byte()})
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
