package delivery

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// hijacker is a receiver that takes over the raw connection.
func hijacker(t *testing.T, serve func(c net.Conn, rw *bufio.ReadWriter)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c, rw)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestReceiverFaults: each misbehaving receiver is a failed attempt with a
// clear error, and none holds the attempt past the webhook's timeout.
func TestReceiverFaults(t *testing.T) {
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		chunk := []byte(strings.Repeat("x", 4096))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	tests := []struct {
		name, url, want string
	}{
		{"dns failure", "http://no-such-host.invalid/hook", "no-such-host.invalid"},
		{"reset mid-response", hijacker(t, func(c net.Conn, rw *bufio.ReadWriter) {
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			rw.Flush()
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST instead of FIN
			}
		}), "connection reset"},
		{"one byte per second", hijacker(t, func(c net.Conn, rw *bufio.ReadWriter) {
			for _, b := range []byte("HTTP/1.1 200 OK\r\n\r\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}), "timeout"},
		{"never answers", hijacker(t, func(c net.Conn, rw *bufio.ReadWriter) { time.Sleep(5 * time.Second) }), "timeout"},
		{"endless body", endless.URL, "HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh := hook("faulty", tt.url, "Lead_Post_Create")
			wh.Timeout = 700 * time.Millisecond
			wh.Retry.Attempts = 1
			e := openEngine(t, t.TempDir(), testConfig(wh))
			start := time.Now()
			id := ingest(t, e, "Lead Creation", "", `{}`).Deliveries[0].ID
			d := waitStatus(t, e, id, StatusFailure)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the attempt took %v with a timeout of %v", took, wh.Timeout)
			}
			if len(d.Attempts) != 1 {
				t.Fatalf("attempts = %d, want 1", len(d.Attempts))
			}
			a := d.Attempts[0]
			if !strings.Contains(a.Error, tt.want) {
				t.Errorf("error = %q, want it to mention %q", a.Error, tt.want)
			}
			if a.Response != nil && len(a.Response.Body) > MaxResponseBody {
				t.Errorf("kept %d bytes of body, want at most %d", len(a.Response.Body), MaxResponseBody)
			}
		})
	}
}
