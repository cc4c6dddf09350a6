package daemon

import (
	"bytes"
	"strconv"
	"testing"
)

// scanCases are event bodies for scanEvent: plain ones it reads itself,
// and ones it leaves to decodeEventStrict.
var scanCases = []struct {
	body  string
	plain bool
}{
	{`{"event":"Lead Creation","id":"lead-4711","data":{"ProspectID":"4711","FirstName":"Ada"}}`, true},
	{` { "data" : [1, 2.50, "x"] , "event" : "lead creation" } ` + "\r\n\t", true},
	{`{"event":"Lead_Post_Create","data":null}`, true},
	{`{"event":null,"id":null,"data":-1.5e+3}`, true},
	{`{"event":"","data":true}`, true},
	{`{"data":"a\"}b\\","event":"Café ☕"}`, true},
	{`{"event":"Lead Creation","data":{"a\"[":"]]]]]]]]]]","b":[[[{"c":"\\"}]]]}}`, true},
	{`{"event":"Lead Creation","data":[[[[[[[["]]]]\"[[[["]]]]]]]]}`, true},
	{`{"data":{}}`, true},
	{`{"event":"Lead Creation"}`, true},
	{`{}`, true},
	// Left to encoding/json.
	{``, false},
	{`   `, false},
	{`{"event":`, false},
	{`{"event":"Lead Creation","data":1}]`, false},
	{`{"event":"Lead Creation","data":1} {"event":"Lead Creation","data":2}`, false},
	{`{"event":"Lead Creation","data":1,"extra":true}`, false},
	{`{"event":"Lead Creation","data":1,"data":{"x":2}}`, false},
	{`{"event":"Lead Creation","event":null,"data":1}`, false},
	{`{"id":"a","id":null,"event":"Lead Creation","data":1}`, false},
	{`{"Event":"Lead Creation","DATA":1,"Id":"x"}`, false},
	{`{"ıd":"x","event":"Lead Creation","data":1}`, false},
	{`{"\u0065vent":"Lead Creation","data":1}`, false},
	{`{"event":"Lead\u0020Creation","data":1}`, false},
	{`{"event":"Lead Creation","id":"k\\1","data":1}`, false},
	{"{\"event\":\"Lead Creation\xff\",\"data\":1}", false},
	{`{"event":5,"data":1}`, false},
	{`{"event":"Lead Creation","id":7,"data":1}`, false},
	{`{"event":["Lead Creation"],"data":1}`, false},
	{`[{"event":"Lead Creation","data":1}]`, false},
	{`null`, false},
	{`"event"`, false},
	{`{"event":"Lead Creation","data":` + nested(10001) + `}`, false},
}

// TestScanEvent checks which bodies scanEvent reads itself, and that it
// reads them as decodeEventStrict does.
func TestScanEvent(t *testing.T) {
	for _, tt := range scanCases {
		_, ok := scanEvent([]byte(tt.body))
		if ok != tt.plain {
			t.Errorf("scanEvent(%.80s) reports %v, want %v", tt.body, ok, tt.plain)
		}
		checkScanEvent(t, []byte(tt.body))
	}
}

// FuzzScanEvent checks scanEvent against decodeEventStrict on any body:
// what scanEvent reads, encoding/json reads the same without an error.
func FuzzScanEvent(f *testing.F) {
	for _, tt := range scanCases {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(checkScanEvent)
}

// checkScanEvent fails t if scanEvent accepts body and decodeEventStrict
// refuses it or reads it differently.
func checkScanEvent(t *testing.T, body []byte) {
	got, ok := scanEvent(body)
	if !ok {
		return
	}
	want, err := decodeEventStrict(body)
	if err != nil {
		t.Fatalf("scanEvent read %q, which encoding/json refuses: %v", body, err)
	}
	if (got.Event == nil) != (want.Event == nil) || got.Event != nil && *got.Event != *want.Event {
		t.Errorf("scanEvent(%q): event %s, want %s", body, show(got.Event), show(want.Event))
	}
	if got.ID != want.ID {
		t.Errorf("scanEvent(%q): id %q, want %q", body, got.ID, want.ID)
	}
	if (got.Data == nil) != (want.Data == nil) || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("scanEvent(%q): data %q, want %q", body, got.Data, want.Data)
	}
}

// show formats an optional string for a test message.
func show(s *string) string {
	if s == nil {
		return "nil"
	}
	return strconv.Quote(*s)
}
