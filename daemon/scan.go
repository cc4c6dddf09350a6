package daemon

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// scanEvent reads an event posted in the plain form almost every client
// uses: one valid JSON object whose keys are exactly "event", "id" and
// "data", each at most once, with "event" and "id" strings free of
// escapes (or null). It checks raw with one json.Valid pass and then
// walks only the object's top level, where a json.Decoder scans the body
// three times.
//
// For any other body it reports false, and the caller decodes raw with
// decodeEventStrict: that gives the same eventIn for every body scanEvent
// accepts, and the exact error for the rest (malformed JSON, trailing
// data, unknown fields, wrong types). Keys that encoding/json matches by
// case folding or escapes, duplicate keys and escaped strings all take
// that path, so scanEvent never has to reproduce encoding/json's rules
// for them.
func scanEvent(raw []byte) (eventIn, bool) {
	var in eventIn
	if !json.Valid(raw) {
		return in, false
	}
	// raw is one valid JSON value with only white space around it, so the
	// walk below trusts its structure: a key is followed by ':', a value
	// by ',' or '}'.
	i := skipSpace(raw, 0)
	if raw[i] != '{' {
		return in, false
	}
	i = skipSpace(raw, i+1)
	if raw[i] == '}' {
		return in, true
	}
	var seenEvent, seenID, seenData bool
	for {
		key, end, ok := plainString(raw, i)
		if !ok {
			return in, false
		}
		i = skipSpace(raw, skipSpace(raw, end)+1) // past the ':'
		end = valueEnd(raw, i)
		val := raw[i:end]
		switch string(key) {
		case "event":
			s, ok := plainField(val, &seenEvent)
			if !ok {
				return in, false
			}
			in.Event = s // null leaves it nil
		case "id":
			s, ok := plainField(val, &seenID)
			if !ok {
				return in, false
			}
			if s != nil { // null leaves it empty
				in.ID = *s
			}
		case "data":
			if seenData {
				return in, false
			}
			seenData = true
			// A copy, as json.RawMessage's UnmarshalJSON makes.
			in.Data = append(json.RawMessage(nil), val...)
		default:
			return in, false
		}
		i = skipSpace(raw, end)
		if raw[i] == '}' {
			return in, true
		}
		i = skipSpace(raw, i+1) // past the ','
	}
}

// plainField reads the value val of the string key that seen tracks: nil
// for null, else its text; false if the key was seen before or the value
// is not a plain string.
func plainField(val []byte, seen *bool) (*string, bool) {
	if *seen {
		return nil, false
	}
	*seen = true
	if val[0] == 'n' {
		return nil, true
	}
	b, ok := plainValue(val)
	if !ok {
		return nil, false
	}
	s := string(b)
	return &s, true
}

// plainValue returns the contents of the JSON value val if it is a string
// that decodes to exactly its bytes: no escapes and valid UTF-8 (which
// encoding/json would replace with U+FFFD).
func plainValue(val []byte) ([]byte, bool) {
	if val[0] != '"' {
		return nil, false
	}
	s, end, ok := plainString(val, 0)
	return s, ok && end == len(val) && utf8.Valid(s)
}

// plainString returns the contents of the valid JSON string starting at
// b[i] and the index just past it, or false if it holds an escape.
func plainString(b []byte, i int) (s []byte, end int, ok bool) {
	n := bytes.IndexByte(b[i+1:], '"')
	s = b[i+1 : i+1+n]
	return s, i + n + 2, bytes.IndexByte(s, '\\') < 0
}

// valueEnd returns the index just past the valid JSON value starting at
// b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	// A number, true, false or null runs to the next delimiter.
	j := i
	for j < len(b) && !isDelimiter(b[j]) {
		j++
	}
	return j
}

// stringEnd returns the index just past the valid JSON string starting at
// b[i]: after the first quote not escaped by an odd run of backslashes.
func stringEnd(b []byte, i int) int {
	for j := i + 1; ; {
		n := bytes.IndexByte(b[j:], '"')
		if n < 0 {
			return len(b) // not reached for a valid string
		}
		q := j + n
		backslashes := 0
		for k := q - 1; k > i && b[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// isDelimiter reports whether c ends a JSON number or literal.
func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}
