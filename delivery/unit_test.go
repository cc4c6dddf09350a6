package delivery

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTargetURL(t *testing.T) {
	const q = "entityType=Webhook&entityId=crm&eventType=Lead_Post_Create"
	for _, tc := range []struct{ raw, want string }{
		{"https://x.example/a", "https://x.example/a?" + q},
		{"https://x.example/a?k=v", "https://x.example/a?k=v&" + q},
		{"https://x.example/a?", "https://x.example/a?" + q},
		{"https://x.example/a?k=v&", "https://x.example/a?k=v&" + q},
		{"https://x.example/a?k=v#frag", "https://x.example/a?k=v&" + q + "#frag"},
	} {
		if got := targetURL(tc.raw, "crm", "Lead_Post_Create"); got != tc.want {
			t.Errorf("targetURL(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestEncodeForm(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{`{}`, ``},
		{` { "a" : 12.50 , "b":-0, "c":1E+2 } `, `a=12.50&b=-0&c=1E%2B2`},
		{`{"name":"caf\u00e9 & co","k y":"a=b"}`, `name=caf%C3%A9+%26+co&k+y=a%3Db`},
		{`{"o":{"x": [1, 2]},"n":null,"t":false}`, `o=%7B%22x%22%3A+%5B1%2C+2%5D%7D&n=&t=false`},
		{`{"z":1,"a":2,"m":3}`, `z=1&a=2&m=3`},
	} {
		got, err := encodeForm(json.RawMessage(tc.data))
		if err != nil || string(got) != tc.want {
			t.Errorf("encodeForm(%s) = %q, %v; want %q", tc.data, got, err, tc.want)
		}
	}
	for _, data := range []string{`[]`, `"s"`, `1`, `true`, `null`, ` [1]`} {
		if _, err := encodeForm(json.RawMessage(data)); err == nil || !strings.Contains(err.Error(), "JSON object") {
			t.Errorf("encodeForm(%s) error = %v, want one asking for a JSON object", data, err)
		}
	}
}

func TestEncodeBody_Batch(t *testing.T) {
	data := []json.RawMessage{json.RawMessage(`{"a": 1}`), json.RawMessage(`2`), json.RawMessage(`"three"`)}
	for _, ct := range []string{"application/json", "text/plain"} {
		got, err := encodeBody(ct, true, data)
		if err != nil || string(got) != `[{"a": 1},2,"three"]` || !json.Valid(got) {
			t.Errorf("encodeBody(%s, batch) = %s, %v; want the array of data in order", ct, got, err)
		}
	}
	if got, _ := encodeBody("application/json", true, data[:1]); string(got) != `[{"a": 1}]` {
		t.Errorf("a batch of one = %s, want a one-item array", got)
	}
	if _, err := encodeBody("application/x-www-form-urlencoded", true, data[:2]); err == nil {
		t.Error("a form batch was encoded, want an error")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}
