package daemon

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/sidehook/sidehook/delivery"
)

// encodeAnswer returns the body of the 202 answer to POST /v1/events: the
// Accepted of an event posted alone, or the array of them for an array,
// then a newline. It writes the bytes json.Marshal would, without
// reflection: this answer goes out once per request on the ingest path.
// It fails where json.Marshal fails, on a due time that RFC 3339 cannot
// express.
func encodeAnswer(accepted []delivery.Accepted, isArray bool) ([]byte, error) {
	b := make([]byte, 0, answerSize(accepted))
	var err error
	switch {
	case !isArray:
		if b, err = appendAccepted(b, accepted[0]); err != nil {
			return nil, err
		}
	case accepted == nil:
		b = append(b, "null"...)
	default:
		b = append(b, '[')
		for i, a := range accepted {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendAccepted(b, a); err != nil {
				return nil, fmt.Errorf("event [%d]: %w", i, err)
			}
		}
		b = append(b, ']')
	}
	return append(b, '\n'), nil
}

// answerSize returns about how long encodeAnswer's output for accepted
// is, to allocate it once.
func answerSize(accepted []delivery.Accepted) int {
	n := 8
	for _, a := range accepted {
		n += len(`{"id":"","deliveries":[]},`) + len(a.ID)
		for _, p := range a.Deliveries {
			n += len(`{"id":"","webhook":"","due_at":""},`) + len(p.ID) + len(p.Webhook) + len(`2006-01-02T15:04:05.999999999-07:00`)
		}
	}
	return n
}

// appendAccepted appends a encoded as json.Marshal encodes it.
func appendAccepted(b []byte, a delivery.Accepted) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID)
	b = append(b, `,"deliveries":`...)
	if a.Deliveries == nil {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i, p := range a.Deliveries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, p.ID)
		b = append(b, `,"webhook":`...)
		b = appendString(b, p.Webhook)
		b = append(b, `,"due_at":"`...)
		// AppendText is MarshalJSON without the quotes: RFC 3339 with
		// nanoseconds, refusing years outside 0-9999 and zone offsets of
		// 24 hours or more.
		var err error
		if b, err = p.DueAt.AppendText(b); err != nil {
			return nil, fmt.Errorf("delivery %s: due_at: %w", p.ID, err)
		}
		b = append(b, `"}`...)
	}
	return append(b, "]}"...), nil
}

// appendString appends s as a JSON string. A string of printable ASCII
// that json.Marshal leaves as it is (as ids and webhook ids are) is
// copied; any other takes json.Marshal itself, so that its escaping
// (HTML characters, control characters, U+2028, invalid UTF-8) is kept
// exactly.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < ' ', c >= utf8.RuneSelf, c == '"', c == '\\', c == '<', c == '>', c == '&':
			q, _ := json.Marshal(s) // cannot fail for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
