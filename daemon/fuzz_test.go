package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/config"
)

// FuzzDecodeEvents posts any bytes to the event decoder, with small
// limits so that the fuzzer reaches them. Either it refuses the body, or
// every event it returns names a catalog type, keeps a key and data within
// the limits, and carries data that is valid JSON and exactly a part of
// the body (receivers get it byte for byte). It never panics, and what it
// allocates is bounded by the body's size.
func FuzzDecodeEvents(f *testing.F) {
	cat := config.NewCatalog(config.EventType{Name: "Invoice Paid", Code: "Invoice_Post_Paid", Batched: true})
	lim := config.Limits{MaxBody: 64 << 10, MaxEvents: 4, MaxDepth: 8, MaxKey: 16}
	for _, seed := range []string{
		`{"event":"Lead Creation","id":"lead-4711","data":{"ProspectID":"4711","FirstName":"Ada"}}`,
		`{"event":"Lead_Post_Create","data":null}`,
		`  {"data": [1, 2.50, "x"], "event": "lead creation"}  `,
		`[{"event":"Task Complete","data":1},{"event":"invoice paid","data":"\u00e9\ud83d\ude00"}]`,
		`[{"event":"Lead Creation","data":1},{"event":"Nope","data":2}]`,
		`[{"event":"Lead Creation","data":1},{"event":"Lead Creation","data":2},{"event":"Lead Creation","data":3},{"event":"Lead Creation","data":4},{"event":"Lead Creation","data":5}]`,
		`[0,0,0,0,0,0,0,0,0,0]`,
		`{"event":"Lead Creation","data":` + nested(9) + `}`,
		`{"event":"Lead Creation","data":{"a\"[":"]]]]]]]]]]","b":[[[{"c":"\\"}]]]}}`,
		`{"event":"Lead Creation","id":"0123456789abcdefX","data":1}`,
		`{"event":"Lead Creation","data":1} {"event":"Lead Creation","data":2}`,
		`{"event":"Lead Creation","data":1}]`,
		`[{"event":"Lead Creation","data":1}]]`,
		`{"event":"Lead Creation","data":1,"data":{"x":2}}`,
		`{"event":"Lead Creation","data":1,"extra":true}`,
		`{"event":"","data":1}`,
		`{"event":"` + strings.Repeat("Lead Creaton", 200) + `","data":1}`,
		`[]`,
		``,
		"\xff\xfe{",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if int64(len(body)) > lim.MaxBody {
			return // postEvents refuses it before decoding (413)
		}
		before := allocatedBytes()
		events, isArray, err := decodeEvents(body, cat, lim)
		used, bound := allocatedBytes()-before, 64*uint64(len(body))+256<<10
		// That count is cheap but coarse (it moves a span at a time) and
		// the process's (the fuzzing machinery allocates too). Over the
		// bound, take the least of three exact counts.
		for i := 0; i < 3 && used > bound; i++ {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			decodeEvents(body, cat, lim)
			runtime.ReadMemStats(&ms)
			if i == 0 {
				used = ms.TotalAlloc - before
			}
			used = min(used, ms.TotalAlloc-before)
		}
		if used > bound {
			t.Errorf("decoding %d bytes allocated %d bytes, more than %d", len(body), used, bound)
		}
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && isArray != (trimmed[0] == '[') {
			t.Errorf("isArray = %v for a body starting with %q", isArray, trimmed[0])
		}
		if err != nil {
			if errors.Is(err, errTooMany) && !isArray {
				t.Errorf("too many events in a single object: %v", err)
			}
			if err.Error() == "" {
				t.Error("an empty error message")
			}
			return
		}
		if !json.Valid(body) {
			t.Errorf("accepted a body that is not valid JSON: %q", body)
		}
		if len(events) == 0 || len(events) > lim.MaxEvents || !isArray && len(events) != 1 {
			t.Errorf("accepted %d events (array %v); want 1 for an object, 1 to %d for an array", len(events), isArray, lim.MaxEvents)
		}
		for i, ev := range events {
			if ev.Type.Code == "" || ev.Type.Name == "" {
				t.Errorf("event %d: empty type %+v", i, ev.Type)
			}
			if et, ok := cat.Lookup(ev.Type.Code); !ok || et != ev.Type {
				t.Errorf("event %d: type %+v is not in the catalog", i, ev.Type)
			}
			if !json.Valid(ev.Data) {
				t.Errorf("event %d: data %q is not valid JSON", i, ev.Data)
			}
			if len(ev.Data) == 0 || !bytes.Contains(body, ev.Data) {
				t.Errorf("event %d: data %q is not a part of the body %q", i, ev.Data, body)
			}
			if len(ev.Key) > lim.MaxKey {
				t.Errorf("event %d: key of %d bytes, over the limit of %d", i, len(ev.Key), lim.MaxKey)
			}
			if d, want := jsonDepth(ev.Data), tokenDepth(ev.Data); d != want || d > lim.MaxDepth {
				t.Errorf("event %d: data %s is %d deep by the scanner, %d by the tokens; the limit is %d", i, ev.Data, d, want, lim.MaxDepth)
			}
		}
	})
}

// allocatedBytes returns the bytes allocated on the heap so far.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// tokenDepth measures the nesting of a JSON value with encoding/json's
// tokenizer, to check the scanner that limits.max_depth relies on.
func tokenDepth(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}
