package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binaryPath is the sidehook binary under test. TestMain sets it once,
// before any test runs; nothing writes it afterwards.
var binaryPath string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test skips itself with the reason; nothing to build.
		os.Exit(m.Run())
	}
	code, err := runWithBinary(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// runWithBinary builds the sidehook binary into a temporary directory (or
// takes $SIDEHOOK_BIN), runs the tests, and removes the build.
func runWithBinary(m *testing.M) (int, error) {
	if p := os.Getenv("SIDEHOOK_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return 0, fmt.Errorf("resolve $SIDEHOOK_BIN %s: %w", p, err)
		}
		binaryPath = abs
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "sidehook-e2e-bin-")
	if err != nil {
		return 0, fmt.Errorf("create build dir: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "sidehook")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = ".." // the module root, where main.go lives
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build sidehook: %w\n%s", err, b)
	}
	binaryPath = out
	return m.Run(), nil
}

// requireBinary skips the test under -short.
func requireBinary(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: builds the sidehook binary and runs it as a subprocess (run without -short; .ci/run does)")
	}
}

// envInt reads a positive integer from the environment, or returns def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("$%s = %q: want a positive integer", name, v)
	}
	return n
}

// hookConfig is what the tests vary in the daemon's configuration. The
// daemon always has one webhook, "sink", for Lead Creation.
type hookConfig struct {
	url         string
	concurrency int
	attempts    int
	timeout     time.Duration // per attempt; 5s when zero
}

// daemon runs the sidehook binary as a subprocess on a fixed config, data
// directory and socket, so it can be killed and started again on the same
// state. Its methods are called from the test goroutine only; the client
// may be shared with other goroutines.
type daemon struct {
	t       *testing.T
	cfgPath string
	dataDir string
	sock    string
	logPath string
	env     []string // added to the test's environment, KEY=value
	client  *http.Client

	proc   *process // the running process, nil when none
	starts int
}

// process is one run of the binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// newDaemon writes the config for hc and returns a daemon that is not
// started yet. The process is killed, and its log shown on failure, when
// the test ends.
func newDaemon(t *testing.T, hc hookConfig) *daemon {
	t.Helper()
	dir := t.TempDir()
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	sockDir, err := os.MkdirTemp("", "shk")
	if err != nil {
		t.Fatalf("create socket dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })

	d := &daemon{
		t:       t,
		cfgPath: filepath.Join(dir, "webhooks.yaml"),
		dataDir: filepath.Join(dir, "data"),
		sock:    filepath.Join(sockDir, "sidehook.sock"),
		logPath: filepath.Join(dir, "sidehook.log"),
	}
	cfg := fmt.Sprintf(`socket: %s
listen: ""
webhooks:
  - id: sink
    events: [Lead Creation]
    url: %s/hook
    concurrency: %d
    timeout: %s
    retry: { attempts: %d, backoff: 100ms, max_backoff: 1s }
`, d.sock, hc.url, hc.concurrency, cmp.Or(hc.timeout, 5*time.Second), hc.attempts)
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write config: %v", err)
	}
	d.client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dialer net.Dialer
				return dialer.DialContext(ctx, "unix", d.sock)
			},
			MaxIdleConnsPerHost: 64,
		},
	}
	t.Cleanup(func() {
		if d.proc != nil {
			d.proc.cmd.Process.Kill()
			<-d.proc.done
		}
		d.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("daemon log (last 80 lines of %s):\n%s", d.logPath, tail(d.logPath, 80))
		}
	})
	return d
}

// start runs the binary and waits until /readyz answers 200.
func (d *daemon) start() {
	d.t.Helper()
	p := d.spawn()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			d.proc = nil
			d.t.Fatalf("sidehook start #%d exited before it was ready: %v\n%s", d.starts, p.err, tail(d.logPath, 40))
		default:
		}
		if d.ready() {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("sidehook start #%d: /readyz not 200 within 30s", d.starts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spawn runs the binary without waiting for it to be ready.
func (d *daemon) spawn() *process {
	d.t.Helper()
	if d.proc != nil {
		d.t.Fatal("start: daemon already running")
	}
	d.starts++
	logf, err := os.OpenFile(d.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		d.t.Fatalf("open daemon log: %v", err)
	}
	fmt.Fprintf(logf, "=== e2e: start #%d\n", d.starts)
	cmd := exec.Command(binaryPath, "run", "--config", d.cfgPath, "--data", d.dataDir)
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		d.t.Fatalf("start sidehook: %v", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	d.proc = p
	return p
}

// ready reports whether GET /readyz answers 200.
func (d *daemon) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidehook/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill() {
	d.t.Helper()
	if d.proc == nil {
		d.t.Fatal("kill: daemon not running")
	}
	if err := d.proc.cmd.Process.Kill(); err != nil {
		d.t.Fatalf("kill -9 sidehook: %v", err)
	}
	<-d.proc.done
	d.proc = nil
}

// stop sends SIGTERM and waits up to timeout for the process to exit. It
// returns the exit code (-1 when killed by a signal); on timeout it kills
// the process and fails the test.
func (d *daemon) stop(timeout time.Duration) int {
	d.t.Helper()
	d.sigterm()
	return d.wait(timeout)
}

// sigterm sends SIGTERM without waiting.
func (d *daemon) sigterm() {
	d.t.Helper()
	if d.proc == nil {
		d.t.Fatal("sigterm: daemon not running")
	}
	if err := d.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatalf("send SIGTERM: %v", err)
	}
}

// wait waits up to timeout for the process to exit and returns its exit
// code (-1 when killed by a signal); on timeout it kills the process and
// fails the test.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	if d.proc == nil {
		d.t.Fatal("wait: daemon not running")
	}
	p := d.proc
	d.proc = nil
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		d.t.Fatalf("sidehook did not exit within %v (killed it)", timeout)
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		d.t.Fatalf("wait for sidehook: %v", p.err)
	}
	return p.cmd.ProcessState.ExitCode()
}

// post sends one POST /v1/events and returns the status and body.
func (d *daemon) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sidehook/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("post event: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// getJSON fetches an API path that must answer 200 and decodes its body.
func (d *daemon) getJSON(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidehook"+path, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d: %.200s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s: %w (body %.200s)", path, err, b)
	}
	return nil
}

// delivery is the part of the API's delivery object the tests look at.
type delivery struct {
	ID       string            `json:"id"`
	Webhook  string            `json:"webhook"`
	Status   string            `json:"status"`
	DueAt    string            `json:"due_at"`
	EventIDs []string          `json:"event_ids"`
	Attempts []json.RawMessage `json:"attempts"`
}

// deliveryList is GET /v1/deliveries.
type deliveryList struct {
	Deliveries []delivery `json:"deliveries"`
	NextCursor *string    `json:"next_cursor"`
}

// deliveries returns the first page of deliveries with the given status
// ("" for all).
func (d *daemon) deliveries(ctx context.Context, status string, limit int) ([]delivery, error) {
	path := fmt.Sprintf("/v1/deliveries?limit=%d", limit)
	if status != "" {
		path += "&status=" + status
	}
	var l deliveryList
	if err := d.getJSON(ctx, path, &l); err != nil {
		return nil, err
	}
	return l.Deliveries, nil
}

// waitDrained polls until no delivery is in_queue, for at most timeout. On
// timeout it returns an error listing some of the stuck deliveries.
func (d *daemon) waitDrained(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last []delivery
	var lastErr error
	for {
		last, lastErr = d.deliveries(ctx, "in_queue", 10)
		if lastErr == nil && len(last) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("queue not drained within %v: %w", timeout, lastErr)
			}
			var ids []string
			for _, dl := range last {
				ids = append(ids, fmt.Sprintf("%s (due %s, %d attempts)", dl.ID, dl.DueAt, len(dl.Attempts)))
			}
			return fmt.Errorf("queue not drained within %v; still in_queue: %s", timeout, strings.Join(ids, ", "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// eventBody is a Lead Creation event carrying data, with an optional
// idempotency key.
func eventBody(key string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"event":"Lead Creation",`)
	if key != "" {
		fmt.Fprintf(&b, `"id":%q,`, key)
	}
	b.WriteString(`"data":`)
	b.Write(data)
	b.WriteString("}")
	return b.Bytes()
}

// eventData is the data of event n. The space and the 12.50 check that the
// receiver gets the bytes as posted, not a re-encoding.
func eventData(n int64) []byte {
	return fmt.Appendf(nil, `{"n": %d, "amount": 12.50, "pad": "%s"}`, n, strings.Repeat("x", 200))
}

// accepted is the 202 answer to a single event.
type accepted struct {
	ID         string `json:"id"`
	Deliveries []struct {
		ID      string `json:"id"`
		Webhook string `json:"webhook"`
		DueAt   string `json:"due_at"`
	} `json:"deliveries"`
}

// receiverMode is how the receiver answers.
type receiverMode int32

const (
	modeOK   receiverMode = iota // 200 after 0-5 ms
	modeSlow                     // 200 after 100-400 ms, so attempts are in flight
	mode503                      // 503 at once, so deliveries wait for a retry
	modeHang                     // no answer until the sender gives up
)

func (m receiverMode) String() string {
	switch m {
	case modeOK:
		return "ok"
	case modeSlow:
		return "slow"
	case mode503:
		return "503"
	case modeHang:
		return "hang"
	}
	return "mode" + strconv.Itoa(int(m))
}

// receiver is the webhook's URL: it checks each request against what a
// receiver is promised and records the data's "n" of every request it
// answers with 200.
type receiver struct {
	srv       *httptest.Server
	webhookID string
	mode      atomic.Int32
	inFlight  atomic.Int64
	rejected  atomic.Int64 // answered 503
	abandoned atomic.Int64 // the sender hung up before the answer

	mu       sync.Mutex
	got      map[int64]int    // n -> requests answered 200
	first    map[int64][]byte // n -> body of the first such request
	total    int              // requests answered 200
	problems []string         // requests that broke the contract
}

// newReceiver starts a receiver for webhook id, closed when the test ends.
func newReceiver(t *testing.T, webhookID string) *receiver {
	r := &receiver{
		webhookID: webhookID,
		got:       make(map[int64]int),
		first:     make(map[int64][]byte),
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setMode(m receiverMode) { r.mode.Store(int32(m)) }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.problem("read body: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	q := req.URL.Query()
	if req.Method != http.MethodPost || req.URL.Path != "/hook" ||
		q.Get("entityType") != "Webhook" || q.Get("entityId") != r.webhookID || q.Get("eventType") != "Lead_Post_Create" {
		r.problem("unexpected request %s %s", req.Method, req.URL)
	}
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		r.problem("Content-Type %q, want application/json", ct)
	}

	var delay time.Duration
	switch receiverMode(r.mode.Load()) {
	case mode503:
		r.rejected.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case modeHang:
		delay = time.Hour
	case modeSlow:
		delay = 100*time.Millisecond + rand.N(300*time.Millisecond)
	default:
		delay = rand.N(5 * time.Millisecond)
	}
	select {
	case <-time.After(delay):
	case <-req.Context().Done():
		r.abandoned.Add(1)
		return
	}

	var data struct {
		N *int64 `json:"n"`
	}
	if err := json.Unmarshal(body, &data); err != nil || data.N == nil {
		r.problem("body is not an event's data: %.100q", body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got[*data.N]++
	if _, ok := r.first[*data.N]; !ok {
		r.first[*data.N] = body
	}
	r.total++
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 20 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// received is a copy of what the receiver recorded.
type received struct {
	got      map[int64]int
	first    map[int64][]byte
	total    int
	problems []string
}

func (r *receiver) snapshot() received {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := received{
		got:      make(map[int64]int, len(r.got)),
		first:    make(map[int64][]byte, len(r.first)),
		total:    r.total,
		problems: append([]string(nil), r.problems...),
	}
	for k, v := range r.got {
		s.got[k] = v
	}
	for k, v := range r.first {
		s.first[k] = v
	}
	return s
}

// count returns how many times n was answered 200.
func (r *receiver) count(n int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[n]
}

// tail returns the last n lines of a file, or why it could not.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
