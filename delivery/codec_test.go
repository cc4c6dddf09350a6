package delivery

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestEvent_EncodeDecode checks that an event record reads back as it
// was written, data byte for byte, in both layouts, and that a damaged
// record is an error rather than a wrong event.
func TestEvent_EncodeDecode(t *testing.T) {
	at := time.Unix(1764325123, 456789)
	want := event{
		Type: "Lead_Post_Create", ReceivedAt: at, Refs: 2,
		Deliveries: []string{"dlv_0000000000000000000000000a", "dlv_0000000000000000000000000b"},
		Data:       json.RawMessage("{ \"ProspectID\" : \"4711\",\n\"Price\": 12.50 }"),
	}
	var got event
	b := want.encode()
	if err := got.decode(b); err != nil {
		t.Fatal(err)
	}
	if !got.ReceivedAt.Equal(at) || got.Type != want.Type || got.Refs != want.Refs ||
		!reflect.DeepEqual(got.Deliveries, want.Deliveries) || string(got.Data) != string(want.Data) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	b[len(b)-1] = 'X' // the data is copied out of Badger's buffer
	if string(got.Data) != string(want.Data) {
		t.Errorf("data changed with the buffer it was read from")
	}

	// The first layout: four bytes of length, JSON metadata, the data.
	meta := []byte(`{"t":"Lead_Post_Create","r":"2025-11-28T10:18:43.000456789Z","ds":["dlv_0000000000000000000000000a"],"rf":1}`)
	old := binary.BigEndian.AppendUint32(nil, uint32(len(meta)))
	old = append(append(old, meta...), `{"a":1}`...)
	var legacy event
	if err := legacy.decode(old); err != nil {
		t.Fatal(err)
	}
	if legacy.Type != "Lead_Post_Create" || legacy.Refs != 1 || len(legacy.Deliveries) != 1 || string(legacy.Data) != `{"a":1}` {
		t.Errorf("first layout decoded as %+v", legacy)
	}

	for _, bad := range [][]byte{nil, {eventVersion}, want.encode()[:5], {9, 1, 'x'}} {
		var ev event
		if err := ev.decode(bad); err == nil {
			t.Errorf("decode(%q) = %+v, want an error", bad, ev)
		}
	}
}

// TestAttempt_EncodeDecode checks that an attempt reads back as it was
// written, whichever parts it has, that attempts stored as JSON by
// earlier versions still read, and that a damaged one is an error.
func TestAttempt_EncodeDecode(t *testing.T) {
	at := time.Unix(1764325123, 456789)
	retry := at.Add(30 * time.Second)
	full := storedAttempt{
		Attempt: Attempt{
			N: 3, At: at, DurationMS: 12.625, Manual: true, Error: "receiver answered 503",
			Request: &Request{
				URL:     "https://crm.example/hooks?x=1",
				Headers: map[string]string{"Content-Type": "application/json", "Webhook-Signature": "[redacted]"},
				Body:    "",
			},
			Response: &Response{Status: 503, Headers: map[string]string{}, Body: "busy", Truncated: true},
			RetryAt:  &retry,
		},
		BodyType: "application/json",
	}
	command := storedAttempt{Attempt: Attempt{N: 1, At: at, Request: &Request{Command: []string{"/usr/bin/notify", "--lead", ""}},
		Response: &Response{Status: 0, Body: "ok\n"}}}
	bare := storedAttempt{Attempt: Attempt{N: 1, At: at, Error: "dial tcp: connection refused"}}
	for _, want := range []storedAttempt{full, command, bare} {
		var got storedAttempt
		if err := got.decode(want.encode()); err != nil {
			t.Fatalf("decode %+v: %v", want, err)
		}
		if !got.At.Equal(want.At) || (got.RetryAt == nil) != (want.RetryAt == nil) ||
			want.RetryAt != nil && !got.RetryAt.Equal(*want.RetryAt) {
			t.Errorf("times: got at %v retry %v, want %v %v", got.At, got.RetryAt, want.At, want.RetryAt)
		}
		got.At, got.RetryAt, want.At, want.RetryAt = time.Time{}, nil, time.Time{}, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
		}
	}

	old, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var legacy storedAttempt
	if err := legacy.decode(old); err != nil {
		t.Fatal(err)
	}
	if legacy.N != 3 || legacy.BodyType != "application/json" || legacy.Response == nil || legacy.Response.Body != "busy" || !legacy.At.Equal(at) {
		t.Errorf("JSON attempt decoded as %+v", legacy)
	}

	b := full.encode()
	for _, bad := range [][]byte{nil, {attemptVersion}, b[:len(b)-1], append(b[:len(b):len(b)], 0), {9, 0}} {
		var a storedAttempt
		if err := a.decode(bad); err == nil {
			t.Errorf("decode(%q) = %+v, want an error", bad, a)
		}
	}
}
