package e2e

import (
	"bufio"
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGOGC_HalfUnlessSet checks the collector setting the daemon runs
// with, as an operator reads it from /metrics: 50 by default, which keeps
// the heap's growth between collections at half the live heap, and
// whatever GOGC says when it is set.
func TestGOGC_HalfUnlessSet(t *testing.T) {
	requireBinary(t)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{env: []string{"GOGC="}, want: "50"}, // set but empty counts as unset
		{env: []string{"GOGC=200"}, want: "200"},
	} {
		if got := metricWith(t, tc.env, "go_gc_gogc_percent"); got != tc.want {
			t.Errorf("with %q: go_gc_gogc_percent = %q, want %s", tc.env, got, tc.want)
		}
	}
}

// TestGOMAXPROCS_TwiceTheCoresUnlessSet checks the processor count the
// daemon runs with, as /metrics shows it: twice Go's default (the cores,
// or the cgroup's CPU limit) unless GOMAXPROCS is set, which then wins.
func TestGOMAXPROCS_TwiceTheCoresUnlessSet(t *testing.T) {
	requireBinary(t)
	// Go's default in this process, whatever GOMAXPROCS or -cpu set here:
	// the daemon below runs with GOMAXPROCS cleared.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.SetDefaultGOMAXPROCS()
	cores := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{env: []string{"GOMAXPROCS="}, want: strconv.Itoa(2 * cores)},
		{env: []string{"GOMAXPROCS=3"}, want: "3"},
	} {
		if got := metricWith(t, tc.env, "go_sched_gomaxprocs_threads"); got != tc.want {
			t.Errorf("with %q: go_sched_gomaxprocs_threads = %q, want %s", tc.env, got, tc.want)
		}
	}
}

// metricWith starts a daemon with env added to its environment and
// returns an unlabelled metric from its /metrics, then stops it.
func metricWith(t *testing.T, env []string, name string) string {
	t.Helper()
	d := newDaemon(t, hookConfig{url: "http://127.0.0.1:1", concurrency: 1, attempts: 1})
	d.env = env
	d.start()
	defer d.stop(10 * time.Second)
	return d.metric(name)
}

// metric returns the value of an unlabelled metric from GET /metrics, or
// "" when it is missing.
func (d *daemon) metric(name string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidehook/metrics", nil)
	if err != nil {
		d.t.Fatalf("build request: %v", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Fatalf("get /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("get /metrics: status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	if err := sc.Err(); err != nil {
		d.t.Fatalf("read /metrics: %v", err)
	}
	return ""
}
