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
