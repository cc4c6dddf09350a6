package daemon

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPprof_OptInAndSocketOnly(t *testing.T) {
	td := startDaemon(t, "socket: %s\nlisten: 127.0.0.1:0\nwebhooks: []\n")
	tcp := func(path string) int {
		t.Helper()
		resp, err := http.Get("http://" + td.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code, _ := td.do(t, "GET", "/debug/pprof/", "", ""); code != http.StatusNotFound {
		t.Errorf("pprof off, socket: %d, want 404", code)
	}

	cfg, err := os.ReadFile(td.config)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, td.config, string(cfg)+"pprof: true\n")
	if err := td.Reload(); err != nil {
		t.Fatal(err)
	}
	code, body := td.do(t, "GET", "/debug/pprof/", "", "")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof on, socket index: %d %.200s", code, body)
	}
	if code, body := td.do(t, "GET", "/debug/pprof/heap?debug=1", "", ""); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("pprof on, socket heap: %d %.200s", code, body)
	}
	start := time.Now()
	if code, _ := td.do(t, "GET", "/debug/pprof/profile?seconds=1", "", ""); code != http.StatusOK {
		t.Errorf("pprof on, socket CPU profile: %d", code)
	} else if time.Since(start) < time.Second {
		t.Error("the CPU profile came back before its second was over")
	}
	if code := tcp("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof on, TCP listener: %d, want 404 (profiles are for the socket only)", code)
	}
}
