package daemon

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sidehook/sidehook/delivery"
)

// TestEncodeAnswer checks that the 202 answer is byte for byte what
// writeJSON wrote with json.Marshal.
func TestEncodeAnswer(t *testing.T) {
	due := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	berlin := time.FixedZone("CET", 3600)
	lmt := time.FixedZone("LMT", 17*60+30) // an offset with seconds
	planned := func(id, webhook string, at time.Time) delivery.Planned {
		return delivery.Planned{ID: id, Webhook: webhook, DueAt: at}
	}
	// Every byte alone in an id, so that each one json.Marshal escapes
	// (or takes as part of UTF-8) is seen to be escaped.
	var eachByte []delivery.Planned
	for c := range 256 {
		id := "a" + string([]byte{byte(c)}) + "b"
		eachByte = append(eachByte, planned(id, id, due))
	}
	one := delivery.Accepted{ID: "evt_01", Deliveries: []delivery.Planned{planned("dlv_01", "crm-new-lead", due)}}
	tests := []struct {
		name     string
		accepted []delivery.Accepted
		isArray  bool
	}{
		{"no deliveries", []delivery.Accepted{{ID: "evt_01", Deliveries: []delivery.Planned{}}}, false},
		{"nil deliveries", []delivery.Accepted{{ID: "evt_01"}}, false},
		{"one delivery", []delivery.Accepted{one}, false},
		{"several deliveries", []delivery.Accepted{{ID: "evt_02", Deliveries: []delivery.Planned{
			planned("dlv_02", "crm-new-lead", due),
			planned("dlv_03", "tasks", due.Add(time.Hour)),
			planned("dlv_04", "audit", due.Add(1500*time.Millisecond)),
		}}}, false},
		{"webhook id needing escapes", []delivery.Accepted{{ID: "evt_03", Deliveries: []delivery.Planned{
			planned("dlv_05", `a"b\c<d>&e`+"\n\t\x01\b\f", due),
			planned("dlv_06", "café \u2028\u2029 \xff\xfe", due),
		}}}, false},
		{"each byte alone", []delivery.Accepted{{ID: "evt_&", Deliveries: eachByte}}, false},
		{"event id needing escapes", []delivery.Accepted{{ID: "evt_\"<script>\u00e9\x7f", Deliveries: []delivery.Planned{}}}, false},
		{"empty ids", []delivery.Accepted{{ID: "", Deliveries: []delivery.Planned{planned("", "", due)}}}, false},
		{"zero time", []delivery.Accepted{{ID: "evt_04", Deliveries: []delivery.Planned{planned("dlv_07", "crm-new-lead", time.Time{})}}}, false},
		{"zone and nanoseconds", []delivery.Accepted{{ID: "evt_05", Deliveries: []delivery.Planned{
			planned("dlv_08", "crm-new-lead", time.Date(2025, 3, 14, 9, 26, 53, 589793238, berlin)),
			planned("dlv_09", "crm-new-lead", time.Date(2025, 3, 14, 9, 26, 53, 500000000, time.FixedZone("", -9*3600-30*60))),
			planned("dlv_10", "crm-new-lead", time.Date(1901, 1, 1, 0, 0, 0, 1, lmt)),
			planned("dlv_11", "crm-new-lead", time.Date(2025, 3, 14, 9, 26, 53, 1000, time.Local)),
			planned("dlv_12", "crm-new-lead", time.Now()), // with a monotonic reading
		}}}, false},
		{"array", []delivery.Accepted{
			one,
			{ID: "evt_06", Deliveries: []delivery.Planned{}},
			{ID: "evt_07", Deliveries: []delivery.Planned{planned("dlv_13", "tasks", due), planned("dlv_14", "audit", due)}},
		}, true},
		{"array of one", []delivery.Accepted{one}, true},
		{"empty array", []delivery.Accepted{}, true},
		{"nil array", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any = tt.accepted
			if !tt.isArray {
				v = tt.accepted[0]
			}
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			got, err := encodeAnswer(tt.accepted, tt.isArray)
			if err != nil {
				t.Fatalf("encodeAnswer: %v", err)
			}
			if string(got) != string(want) {
				t.Errorf("encodeAnswer =\n%s\njson.Marshal =\n%s", got, want)
			}
		})
	}
}

// TestEncodeAnswer_Unencodable checks that encodeAnswer fails where
// json.Marshal fails, so the client gets the same 500.
func TestEncodeAnswer_Unencodable(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	} {
		a := delivery.Accepted{ID: "evt_01", Deliveries: []delivery.Planned{{ID: "dlv_01", Webhook: "w", DueAt: at}}}
		if _, err := json.Marshal(a); err == nil {
			t.Fatalf("json.Marshal encodes due_at %v; the test expects it to fail", at)
		}
		if b, err := encodeAnswer([]delivery.Accepted{a}, false); err == nil {
			t.Errorf("due_at %v: encodeAnswer = %s, want an error as from json.Marshal", at, b)
		}
		if b, err := encodeAnswer([]delivery.Accepted{{ID: "evt_00"}, a}, true); err == nil {
			t.Errorf("due_at %v in an array: encodeAnswer = %s, want an error as from json.Marshal", at, b)
		}
	}
}
