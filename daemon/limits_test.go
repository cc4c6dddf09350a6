package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// nested returns a JSON value that nests depth levels of arrays.
func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func TestJSONDepth(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{`1`, 0},
		{`"[{"`, 0},
		{`"\"[{"`, 0},
		{`"\\"`, 0},
		{`{}`, 1},
		{`[1,2,3]`, 1},
		{`{"a":[1,{"b":"]]]}"}]}`, 3},
		{`{"a\"[":{"\\":[]}}`, 3},
		{`[[],[[]],[]]`, 3},
		{nested(64), 64},
	}
	for _, tt := range tests {
		if got := jsonDepth([]byte(tt.in)); got != tt.want {
			t.Errorf("jsonDepth(%s) = %d, want %d", tt.in, got, tt.want)
		}
		for _, limit := range []int{0, 1, 2, 3, 63, 64} {
			if got, want := tooDeep([]byte(tt.in), limit), tt.want > limit; got != want {
				t.Errorf("tooDeep(%s, %d) = %v, want %v", tt.in, limit, got, want)
			}
		}
	}
}

const limitedHook = `
socket: %s
limits:
  max_body: 1KiB
  max_events: 3
  max_depth: 4
  max_key: 8
webhooks:
  - id: crm-new-lead
    events: [Lead Creation]
    url: http://127.0.0.1:1/leads
    delay: 1h
`

// chunked hides a reader's length, so the request is sent without a
// Content-Length and the limit is found while reading.
type chunked struct{ io.Reader }

func TestPostEvents_ConfiguredLimits(t *testing.T) {
	td := startDaemon(t, limitedHook)
	ev := func(data string) string { return `{"event":"Lead Creation","data":` + data + `}` }
	long := ev(`"` + strings.Repeat("x", 1100) + `"`)
	tests := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"at the depth limit", ev(nested(4)), 202, ""},
		{"over the depth limit", ev(nested(5)), 400, "data nests 5 levels deep; the limit is 4 (limits.max_depth)"},
		{"key at the limit", `{"event":"Lead Creation","id":"12345678","data":1}`, 202, ""},
		{"key over the limit", `{"event":"Lead Creation","id":"123456789","data":1}`, 400, `"id" is 9 bytes; idempotency keys are at most 8 (limits.max_key)`},
		{"array at the limit", "[" + ev("1") + "," + ev("2") + "," + ev("3") + "]", 202, ""},
		{"array over the limit", "[" + ev("1") + "," + ev("2") + "," + ev("3") + "," + ev("4") + "]", 413, "4 events; the limit is 3 in one array (limits.max_events)"},
		{"body over the limit", long, 413, fmt.Sprintf("body is %d bytes; the limit is 1024 (limits.max_body)", len(long))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := td.post(t, tt.body)
			if status != tt.status {
				t.Errorf("status = %d, want %d (body %s)", status, tt.status, body)
			}
			if tt.status < 400 {
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("body = %s, want a JSON error containing %q", body, tt.msg)
			}
		})
	}

	t.Run("body over the limit, chunked", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://sidehook/v1/events", chunked{strings.NewReader(long)})
		req.Header.Set("Content-Type", "application/json")
		resp, err := td.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 || !strings.Contains(string(b), "body over the limit of 1024 bytes (limits.max_body)") {
			t.Errorf("got %d %s, want 413 naming limits.max_body", resp.StatusCode, b)
		}
	})

	// A reload applies new limits to the next request.
	writeConfig(t, td.config, fmt.Sprintf(strings.Replace(limitedHook, "max_depth: 4", "max_depth: 6", 1), td.Socket()))
	if s, b := td.do(t, "POST", "/v1/reload", "", ""); s != 200 {
		t.Fatalf("reload = %d %s", s, b)
	}
	if s, b := td.post(t, ev(nested(6))); s != 202 {
		t.Errorf("depth 6 after raising max_depth to 6: %d %s, want 202", s, b)
	}
	if s, b := td.post(t, ev(nested(7))); s != 400 || !strings.Contains(b, "the limit is 6 (limits.max_depth)") {
		t.Errorf("depth 7 after raising max_depth to 6: %d %s, want 400 naming the new limit", s, b)
	}
}

func TestListener_HeaderBytes(t *testing.T) {
	td := startDaemon(t, `
socket: %s
limits: {max_header_bytes: 4KiB}
`)
	get := func(h http.Header) (int, string) {
		req, _ := http.NewRequest("GET", "http://sidehook/healthz", nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := td.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, b := get(http.Header{"X-Small": {strings.Repeat("v", 1000)}}); s != 200 {
		t.Errorf("1000-byte header: %d %s, want 200", s, b)
	}
	// Go's server reads up to 4 KiB past the limit before refusing.
	if s, b := get(http.Header{"X-Big": {strings.Repeat("v", 16<<10)}}); s != 431 {
		t.Errorf("16 KiB header: %d %s, want 431", s, b)
	}
	many := http.Header{}
	for i := range 2000 {
		many.Set(fmt.Sprintf("X-H%d", i), "v")
	}
	if s, b := get(many); s != 431 {
		t.Errorf("2000 headers: %d %s, want 431", s, b)
	}
}

func TestListener_MaxConnections(t *testing.T) {
	td := startDaemon(t, `
socket: %s
listen: 127.0.0.1:0
limits: {max_connections: 2}
`)
	for _, l := range []struct{ network, addr string }{{"unix", td.Socket()}, {"tcp", td.Addr()}} {
		t.Run(l.network, func(t *testing.T) {
			// Two idle connections take both slots.
			var held []net.Conn
			for range 2 {
				c, err := net.Dial(l.network, l.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				held = append(held, c)
			}
			// A third is answered 429 and closed.
			status, body := rawGet(t, l.network, l.addr)
			if status != 429 || !strings.Contains(body, "the limit is 2 at once on this listener (limits.max_connections)") {
				t.Fatalf("third connection: %d %s, want 429 naming limits.max_connections", status, body)
			}
			// A connection that closes gives its slot back.
			held[0].Close()
			eventually(t, 5*time.Second, "a slot to be free", func() bool {
				status, _ := rawGet(t, l.network, l.addr)
				return status == 200
			})
		})
	}
}

// rawGet sends GET /healthz on a new connection and returns the answer.
func rawGet(t *testing.T, network, addr string) (int, string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: sidehook\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
