package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildSidehook builds the module in the current directory into dir.
func buildSidehook(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the sidehook module: run from its root or pass --bin")
	}
	bin := filepath.Join(dir, "sidehook")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build sidehook: %w\n%s", err, b)
	}
	return bin, nil
}

// unixClient returns an HTTP client that reaches every URL through the Unix
// socket sock, keeping up to conns connections open.
func unixClient(sock string, conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
		},
	}
}

// child is a subprocess: the daemon or a baseline.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // Wait's result, valid after done
}

// startChild starts cmd with its output appended to logPath.
func startChild(name string, cmd *exec.Cmd, logPath string) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	cmd.Stderr = logf
	// On interrupt, stop the child gracefully and give it time to exit.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 30s, then kills. It returns an error
// when the child did not exit 0 in time.
func (c *child) stop() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited early: %v", c.name, c.err)
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not exit within 30s of SIGTERM", c.name)
	}
	if c.err != nil {
		return fmt.Errorf("%s: %w", c.name, c.err)
	}
	return nil
}

// waitReady polls url through client until it answers 200, the child exits,
// or 60s pass.
func (c *child) waitReady(ctx context.Context, client *http.Client, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			return fmt.Errorf("%s exited before it was ready: %v", c.name, c.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("build request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within 60s", c.name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hookSettings is what a benchmark sets in one of the daemon's webhooks.
type hookSettings struct {
	url         string
	delay       time.Duration
	timeout     time.Duration
	concurrency int
	id          string // default "sink"
	events      string // YAML flow list of event names; default [Lead Creation]
	batch       string // YAML value of batch:, e.g. "{window: 1m, max: 100}"; default unset
}

// daemon is a running sidehook.
type daemon struct {
	*child
	sock    string
	client  *http.Client
	log     string
	stopped bool
	readyIn time.Duration // from starting the process to /readyz answering 200
}

// startDaemon writes a config with the given webhooks (usually one, "sink",
// for Lead Creation), starts sidehook on the data directory under dir
// (fresh unless an earlier daemon used the same dir) and waits until it is
// ready. The profiler is on, so a benchmark can force a GC through it
// before reading the daemon's memory.
func (b *bench) startDaemon(ctx context.Context, dir string, hooks ...hookSettings) (*daemon, error) {
	cfg := "webhooks:\n"
	for _, h := range hooks {
		id, events := cmp.Or(h.id, "sink"), cmp.Or(h.events, "[Lead Creation]")
		cfg += fmt.Sprintf(`  - id: %s
    events: %s
    url: %s
    delay: %s
    timeout: %s
    concurrency: %d
    retry: { attempts: 20, backoff: 1s, max_backoff: 10s }
`, id, events, h.url, h.delay, h.timeout, h.concurrency)
		if h.batch != "" {
			cfg += "    batch: " + h.batch + "\n"
		}
	}
	return b.launch(ctx, dir, cfg)
}

// launch writes a config of cfg after the socket, listen and pprof keys,
// starts sidehook on the data directory under dir and waits until it is
// ready.
func (b *bench) launch(ctx context.Context, dir, cfg string) (*daemon, error) {
	// Unix socket paths are limited to 108 bytes: keep it short.
	sockDir, err := os.MkdirTemp("", "shb")
	if err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	sock := filepath.Join(sockDir, "sidehook.sock")
	cfgPath := filepath.Join(dir, "webhooks.yaml")
	cfg = fmt.Sprintf("socket: %s\nlisten: \"\"\npprof: true\n", sock) + cfg
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	logPath := filepath.Join(dir, "sidehook.log")
	cmd := exec.CommandContext(ctx, b.bin, "run", "--config", cfgPath, "--data", filepath.Join(dir, "data"))
	started := time.Now()
	c, err := startChild("sidehook", cmd, logPath)
	if err != nil {
		return nil, err
	}
	d := &daemon{child: c, sock: sock, client: unixClient(sock, max(b.opts.clients, 16)), log: logPath}
	if err := c.waitReady(ctx, d.client, "http://sidehook/readyz"); err != nil {
		c.cmd.Process.Kill()
		<-c.done
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	d.readyIn = time.Since(started)
	return d, nil
}

// stop stops the daemon with SIGTERM and removes its socket directory;
// once stopped, it does nothing.
func (d *daemon) stop() error {
	if d.stopped {
		return nil
	}
	d.stopped = true
	err := d.child.stop()
	d.client.CloseIdleConnections()
	os.RemoveAll(filepath.Dir(d.sock))
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, d.log)
	}
	return nil
}

// queueDepth returns the sink webhook's in_queue count from GET /v1/webhooks.
func (d *daemon) queueDepth(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidehook/v1/webhooks", nil)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("get /v1/webhooks: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Webhooks []struct {
			ID     string `json:"id"`
			Counts struct {
				InQueue int64 `json:"in_queue"`
			} `json:"counts"`
		} `json:"webhooks"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("get /v1/webhooks: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("decode /v1/webhooks: %w", err)
	}
	for _, w := range body.Webhooks {
		if w.ID == "sink" {
			return w.Counts.InQueue, nil
		}
	}
	return 0, fmt.Errorf("get /v1/webhooks: no webhook sink")
}

// metrics returns the values of the named unlabelled series in GET
// /metrics; a name the daemon does not export is absent from the map.
func (d *daemon) metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	all, err := d.scrape(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64)
	for _, name := range names {
		if v, ok := all[name]; ok {
			out[name] = v
		}
	}
	return out, nil
}

// scrape reads GET /metrics into a map from each series, as written
// (name{labels}), to its value.
func (d *daemon) scrape(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidehook/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get /metrics: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	out := make(map[string]float64)
	for line := range strings.SplitSeq(string(b), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// noop is the baseline server: this program re-executed as serve-noop.
type noop struct {
	*child
	sock   string
	client *http.Client
}

// startNoop starts the no-op server on a Unix socket and waits for it.
func (b *bench) startNoop(ctx context.Context, dir string) (*noop, error) {
	sockDir, err := os.MkdirTemp("", "shb")
	if err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	sock := filepath.Join(sockDir, "noop.sock")
	cmd := exec.CommandContext(ctx, b.self, "serve-noop", "--socket", sock)
	c, err := startChild("serve-noop", cmd, filepath.Join(dir, "noop.log"))
	if err != nil {
		return nil, err
	}
	n := &noop{child: c, sock: sock, client: unixClient(sock, b.opts.clients)}
	if err := c.waitReady(ctx, n.client, "http://noop/"); err != nil {
		c.cmd.Process.Kill()
		<-c.done
		return nil, err
	}
	return n, nil
}

func (n *noop) stop() error {
	err := n.child.stop()
	n.client.CloseIdleConnections()
	os.RemoveAll(filepath.Dir(n.sock))
	return err
}

// serveNoop is the hidden serve-noop mode: an HTTP server on a Unix socket
// that reads each request and answers 202 with a small JSON body, as
// sidehook does, and nothing else.
func serveNoop(ctx context.Context, args []string) error {
	var sock string
	if len(args) == 2 && args[0] == "--socket" {
		sock = args[1]
	} else {
		return fmt.Errorf("usage: bench serve-noop --socket PATH")
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	answer := []byte(`{"id":"evt_0","deliveries":[{"id":"dlv_0","webhook":"sink","due_at":"2006-01-02T15:04:05Z"}]}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write(answer)
	})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
