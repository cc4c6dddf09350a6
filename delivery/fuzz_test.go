package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

// FuzzEncodeForm encodes any bytes as a form body. For a JSON object the
// body parses with url.ParseQuery into one field per member: strings as
// they are, numbers and other values as their exact JSON text (12.50
// stays 12.50), null as empty. Any other JSON value is refused with an
// error that says a form needs an object.
func FuzzEncodeForm(f *testing.F) {
	for _, seed := range []string{
		`{"ProspectID":"4711","FirstName":"Ada","Score":12.50,"Big":1e400,"Neg":-0.0}`,
		`{"a":null,"b":true,"c":[1,"x"],"d":{"e":"f"}}`,
		`{"sp ace":"a&b=c;d+e%f","":"","ünï":"\u00e9\ud83d\ude00","ctl":"\u0000\n\t"}`,
		`{"dup":"1","dup":"2"}`,
		` { "ws" : "x" } `,
		`{"bad":"\xff\xfe"}`,
		`{}`,
		`[{"a":1}]`,
		`"text"`,
		`12.50`,
		`null`,
		`true`,
		`{"a":1} trailing`,
		`{"a":`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := encodeForm(data)
		if !json.Valid(data) {
			return // ingest accepts only valid JSON; it must not panic
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(data, &members) != nil || members == nil {
			if err == nil || !strings.Contains(err.Error(), "must be a JSON object") {
				t.Errorf("encodeForm(%s) = %q, %v; want an error saying a form needs a JSON object", data, body, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("encodeForm(%s): %v", data, err)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("form body %q does not parse: %v", body, err)
		}
		pairs := 0
		if len(body) > 0 {
			pairs = bytes.Count(body, []byte("&")) + 1
		}
		if n := countMembers(t, data); pairs != n {
			t.Errorf("form body %q has %d fields, want %d (one per member)", body, pairs, n)
		}
		for name, raw := range members {
			vals := form[name]
			if len(vals) == 0 {
				t.Errorf("field %q missing from %q", name, body)
				continue
			}
			// A repeated member is sent each time; the last one is the
			// one json.Unmarshal kept.
			got := vals[len(vals)-1]
			var want string
			switch {
			case string(raw) == "null":
			case raw[0] == '"':
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatal(err)
				}
			default:
				want = string(raw) // numbers keep their exact text
			}
			if got != want {
				t.Errorf("field %q = %q, want %q (from %s)", name, got, want, raw)
			}
		}
	})
}

// countMembers counts the members of a JSON object, repeats included.
func countMembers(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// FuzzCursor pages history with any cursor, on a small real store opened
// once per fuzzing process. List answers ErrBadCursor exactly when the
// cursor is not a delivery id; otherwise a page, newest first, holding
// only deliveries older than the cursor, and a next cursor that is the
// last one's id.
func FuzzCursor(f *testing.F) {
	ctx := context.Background()
	cfg := &config.Config{File: "fuzz.yaml", HistoryRetention: time.Hour, Catalog: config.NewCatalog(), Webhooks: []*config.Webhook{
		fuzzHook("crm", "Lead_Post_Create"), fuzzHook("tasks", "Lead_Post_Create", "Task_Post_Complete"),
	}}
	e, err := Open(cfg, Options{Dir: f.TempDir(), UserAgent: "sidehook/test", MinFree: -1})
	if err != nil {
		f.Fatal(err)
	}
	if err := e.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close(ctx) })
	cat := config.NewCatalog()
	lead, _ := cat.Lookup("Lead Creation")
	task, _ := cat.Lookup("Task Complete")
	var ids []string
	for i := range 8 {
		et := lead
		if i%3 == 2 {
			et = task
		}
		acc, err := e.Ingest(ctx, []Incoming{{Type: et, Key: fmt.Sprintf("key-%d", i), Data: json.RawMessage(`{"n":` + fmt.Sprint(i) + `}`)}})
		if err != nil {
			f.Fatal(err)
		}
		for _, d := range acc[0].Deliveries {
			ids = append(ids, d.ID)
		}
		if i == 0 {
			f.Add("", uint8(0), uint8(0))
			f.Add(acc[0].ID, uint8(3), uint8(1))
		}
	}
	mid, last := ids[len(ids)/2], ids[len(ids)-1]
	for i, seed := range []string{
		mid, last, ids[0],
		mid[:len(mid)-1] + string(mid[len(mid)-1]+1), // same bytes, another spelling of the last 2 bits
		"dlv_" + strings.Repeat("v", 26), "dlv_" + strings.Repeat("0", 26), "dlv_" + strings.Repeat("w", 26),
		strings.ToUpper(mid), "evt_" + mid[4:], mid + "\n", mid[:29] + "\n", "dlv_" + mid[4:28] + "\r\n",
		"garbage", "dlv_", "\x00\xff",
	} {
		f.Add(seed, uint8(i), uint8(i*3))
		f.Add(seed, uint8(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, cursor string, shape, limit uint8) {
		q := Query{Cursor: cursor, Limit: int(limit % 12)}
		switch shape % 6 {
		case 1:
			q.Webhook = "crm"
		case 2:
			q.Status = StatusInQueue
		case 3:
			q.Webhook, q.Status = "tasks", StatusInQueue
		case 4:
			q.Event = "key-4"
		case 5:
			q.Status = StatusSuccess
		}
		page, err := e.List(q)
		valid := cursor == "" || ValidID(cursor)
		switch {
		case errors.Is(err, ErrBadCursor):
			if valid {
				t.Fatalf("List(%+v) = ErrBadCursor for a delivery id", q)
			}
			return
		case err != nil:
			t.Fatalf("List(%+v): %v", q, err)
		case !valid:
			t.Fatalf("List(%+v) accepted a cursor that is not a delivery id", q)
		}
		if page.Deliveries == nil || len(page.Deliveries) > max(q.Limit, 1) && q.Limit > 0 || len(page.Deliveries) > DefaultLimit {
			t.Errorf("List(%+v) gave %d deliveries (nil %v)", q, len(page.Deliveries), page.Deliveries == nil)
		}
		for i, d := range page.Deliveries {
			if cursor != "" && !idBefore(d.ID, cursor) {
				t.Errorf("List(%+v) gave %s, not older than the cursor", q, d.ID)
			}
			if i > 0 && !idBefore(d.ID, page.Deliveries[i-1].ID) {
				t.Errorf("List(%+v): %s after %s, not newest first", q, d.ID, page.Deliveries[i-1].ID)
			}
		}
		if page.NextCursor != nil && (len(page.Deliveries) == 0 || *page.NextCursor != page.Deliveries[len(page.Deliveries)-1].ID) {
			t.Errorf("List(%+v): next cursor %q is not the last delivery's id", q, *page.NextCursor)
		}
	})
}

// idBefore reports whether delivery id a was made before id b: both as
// text, the order the store keeps, and as the bytes they encode.
func idBefore(a, b string) bool {
	ab, errA := idEncoding.DecodeString(a[4:])
	bb, errB := idEncoding.DecodeString(b[4:])
	return a < b && errA == nil && errB == nil && bytes.Compare(ab, bb) < 0
}

func fuzzHook(id string, events ...string) *config.Webhook {
	return &config.Webhook{
		ID: id, Type: config.TypeHTTP, Events: events, URL: "http://127.0.0.1:1/" + id,
		ContentType: config.ContentJSON, Timeout: time.Second, Concurrency: 1, Delay: time.Hour,
		Retry: config.Retry{Attempts: 1, Backoff: time.Second, MaxBackoff: time.Second}, Enabled: true, BatchOff: true,
	}
}
