package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// verifierDir holds the independent verifier: the standardwebhooks npm
// package behind a small script (.ci/run installs it with npm ci).
const verifierDir = "verifier"

// requireVerifier skips the test when Node.js or the verifier's packages
// are not installed, and returns the node executable.
func requireVerifier(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipped: node is not on PATH; the independent verifier runs on Node.js")
	}
	if _, err := os.Stat(filepath.Join(verifierDir, "node_modules", "standardwebhooks")); err != nil {
		t.Skip("skipped: e2e/verifier/node_modules is missing; run: npm ci --prefix e2e/verifier (.ci/run does)")
	}
	return node
}

// captured is one request as the receiver got it.
type captured struct {
	webhook string // entityId from the query
	header  http.Header
	body    []byte
	at      time.Time
	status  int // what the receiver answered
}

// capture is a receiver that records every request and answers the first
// one for each webhook-id with 500, so that every delivery is retried,
// and all later ones with 200.
type capture struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []captured
	seen map[string]int // webhook-id -> requests
}

func newCapture(t *testing.T) *capture {
	c := &capture{seen: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *capture) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	id := r.Header.Get("webhook-id")
	c.seen[id]++
	status := http.StatusOK
	if c.seen[id] == 1 {
		status = http.StatusInternalServerError
	}
	c.reqs = append(c.reqs, captured{
		webhook: r.URL.Query().Get("entityId"),
		header:  r.Header.Clone(),
		body:    body,
		at:      time.Now(),
		status:  status,
	})
	c.mu.Unlock()
	w.WriteHeader(status)
}

// byID returns the captured requests for each webhook-id, in arrival order.
func (c *capture) byID() map[string][]captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string][]captured{}
	for _, r := range c.reqs {
		id := r.header.Get("webhook-id")
		m[id] = append(m[id], r)
	}
	return m
}

// waitFor polls until every id has at least n requests.
func (c *capture) waitFor(t *testing.T, ids []string, n int, timeout time.Duration) map[string][]captured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := c.byID()
		short := ""
		for _, id := range ids {
			if len(got[id]) < n {
				short = fmt.Sprintf("delivery %s: %d requests, want %d", id, len(got[id]), n)
				break
			}
		}
		if short == "" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver, after %v: %s", timeout, short)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// generateSecret runs "sidehook secret".
func generateSecret(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(binaryPath, "secret").Output()
	if err != nil {
		t.Fatalf("sidehook secret: %v", err)
	}
	s := strings.TrimSpace(string(out))
	if !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("sidehook secret printed %q, want whsec_...", s)
	}
	return s
}

// tamper returns body with one byte changed.
func tamper(body []byte) []byte {
	b := bytes.Clone(body)
	i := len(b) / 2
	for i < len(b)-1 && b[i] >= 0x80 {
		i++ // stay on an ASCII byte, so the body stays valid UTF-8
	}
	if b[i] == 'x' {
		b[i] = 'y'
	} else {
		b[i] = 'x'
	}
	return b
}

// postRetry asks the daemon to redeliver a delivery now.
func postRetry(t *testing.T, d *daemon, id string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://sidehook/v1/deliveries/"+id+"/retry", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("retry %s: %v", id, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry %s: status %d, want 202: %s", id, resp.StatusCode, body)
	}
}

// check is one question for the independent verifier.
type check struct {
	what string // for messages
	want string // "ok", or the exact failure line
	doc  map[string]any
}

// TestSignatures_IndependentVerifier runs the daemon with three signed
// webhooks — one secret; a rotation (two valid secrets and a retired one);
// a form body — and has the standardwebhooks npm package verify the
// requests the receiver really got: the first attempt (answered 500), its
// retry, and a manual retry, which must all carry the delivery id as
// webhook-id. Every genuine request must verify with every valid secret,
// and fail with the retired one; every request with one byte of its body
// changed must fail.
func TestSignatures_IndependentVerifier(t *testing.T) {
	requireBinary(t)
	node := requireVerifier(t)

	one, old, current, retired, form := generateSecret(t), generateSecret(t), generateSecret(t), generateSecret(t), generateSecret(t)
	// valid are the secrets each webhook signs with; retired signs nothing.
	valid := map[string][]string{
		"signed-one":      {one},
		"signed-rotation": {old, current},
		"signed-form":     {form},
	}

	rcv := newCapture(t)
	d := newDaemon(t, hookConfig{url: rcv.srv.URL, concurrency: 4, attempts: 3})
	retry := "retry: { attempts: 3, backoff: 100ms, max_backoff: 1s }"
	cfg := fmt.Sprintf(`socket: %s
listen: ""
webhooks:
  - id: signed-one
    events: [Lead Creation]
    url: %s/one
    secret: %s
    %s
  - id: signed-rotation
    events: [Lead Creation]
    url: %s/rotation
    secrets:
      - secret: %s
        not_after: %s
      - %s
      - secret: %s
        not_after: 2020-01-01T00:00:00Z
    %s
  - id: signed-form
    events: [Lead Creation]
    url: %s/form
    content_type: application/x-www-form-urlencoded
    secret: %s
    %s
`, d.sock,
		rcv.srv.URL, one, retry,
		rcv.srv.URL, old, time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339), current, retired, retry,
		rcv.srv.URL, form, retry)
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write config: %v", err)
	}
	d.start()

	ctx := t.Context()
	const events = 3
	webhookOf := map[string]string{} // delivery id -> webhook
	var ids []string
	for n := int64(1); n <= events; n++ {
		status, body, err := d.post(ctx, eventBody("", eventData(n)))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("post event %d: status %d, err %v: %s", n, status, err, body)
		}
		var a accepted
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("202 body: %v: %s", err, body)
		}
		if len(a.Deliveries) != len(valid) {
			t.Fatalf("event %d went to %d webhooks, want %d: %s", n, len(a.Deliveries), len(valid), body)
		}
		for _, dl := range a.Deliveries {
			webhookOf[dl.ID] = dl.Webhook
			ids = append(ids, dl.ID)
		}
	}
	// Each delivery: a first attempt answered 500, then a retry.
	rcv.waitFor(t, ids, 2, 30*time.Second)
	if err := d.waitDrained(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// A manual retry of the first delivery of each webhook: a third
	// request, with the same webhook-id again.
	var manualIDs []string
	isManual := map[string]bool{}
	for _, id := range ids {
		if wh := webhookOf[id]; !isManual[wh] {
			isManual[wh], isManual[id] = true, true
			manualIDs = append(manualIDs, id)
			postRetry(t, d, id)
		}
	}
	got := rcv.waitFor(t, manualIDs, 3, 30*time.Second)

	// What the daemon sent, checked in Go before the independent verifier.
	var checks []check
	var requests int
	for _, id := range ids {
		wh := webhookOf[id]
		reqs := got[id]
		want, which := 2, "first attempt, retry"
		if isManual[id] {
			want, which = 3, "first attempt, retry, manual retry"
		}
		if len(reqs) != want {
			t.Errorf("delivery %s (%s): %d requests with webhook-id %s, want %d (%s)", id, wh, len(reqs), id, want, which)
		}
		for i, r := range reqs {
			what := fmt.Sprintf("delivery %s (%s) request %d", id, wh, i+1)
			requests++
			if r.webhook != wh {
				t.Errorf("%s: reached the receiver for webhook %q", what, r.webhook)
			}
			ts, err := strconv.ParseInt(r.header.Get("webhook-timestamp"), 10, 64)
			if err != nil || r.at.Sub(time.Unix(ts, 0)).Abs() > 5*time.Second {
				t.Errorf("%s: webhook-timestamp %q is not the time of the attempt (%s)", what, r.header.Get("webhook-timestamp"), r.at.Format(time.RFC3339))
			}
			sigs := strings.Fields(r.header.Get("webhook-signature"))
			if len(sigs) != len(valid[wh]) {
				t.Errorf("%s: webhook-signature %q has %d signatures, want %d (one per secret not past its not_after)",
					what, r.header.Get("webhook-signature"), len(sigs), len(valid[wh]))
			}

			headers := map[string]string{}
			for name, vals := range r.header {
				headers[name] = strings.Join(vals, ", ")
			}
			doc := func(secret string, body []byte) map[string]any {
				return map[string]any{"secret": secret, "headers": headers, "body": string(body)}
			}
			for k, s := range valid[wh] {
				checks = append(checks,
					check{fmt.Sprintf("%s, secret #%d", what, k+1), "ok", doc(s, r.body)},
					check{fmt.Sprintf("%s, secret #%d, body tampered", what, k+1), "fail: No matching signature found", doc(s, tamper(r.body))})
			}
			if wh == "signed-rotation" {
				checks = append(checks, check{what + ", retired secret (not_after passed)", "fail: No matching signature found", doc(retired, r.body)})
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The independent verifier.
	var in bytes.Buffer
	for _, c := range checks {
		line, err := json.Marshal(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(line)
		in.WriteByte('\n')
	}
	nctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(nctx, node, filepath.Join(verifierDir, "verify.js"))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node verify.js: %v\n%s", err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(checks) {
		t.Fatalf("verify.js answered %d lines for %d documents:\n%s%s", len(lines), len(checks), out, stderr.Bytes())
	}
	var oks, fails int
	for i, c := range checks {
		if lines[i] != c.want {
			t.Errorf("standardwebhooks on %s: %q, want %q", c.what, lines[i], c.want)
		}
		if lines[i] == "ok" {
			oks++
		} else {
			fails++
		}
	}
	t.Logf("standardwebhooks verified %d requests (%d deliveries: first attempt 500, retry, %d manual retries): %d checks ok, %d failed as they must",
		requests, len(ids), len(manualIDs), oks, fails)

	// sidehook verify, on a request saved the way curl -D saves one.
	for _, id := range manualIDs {
		wh := webhookOf[id]
		r := got[id][1]
		dir := t.TempDir()
		var h bytes.Buffer
		fmt.Fprintf(&h, "POST /%s HTTP/1.1\r\n", wh)
		r.header.Write(&h)
		h.WriteString("\r\n")
		hf, bf := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
		if err := os.WriteFile(hf, h.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bf, r.body, 0o600); err != nil {
			t.Fatal(err)
		}
		secrets := valid[wh]
		args := []string{"verify", "--headers", hf, "--body", bf}
		for _, s := range append([]string{retired}, secrets[len(secrets)-1]) {
			args = append(args, "--secret", s)
		}
		out, err := exec.Command(binaryPath, args...).CombinedOutput()
		want := fmt.Sprintf("ok: signature v1 matches secret #2 (webhook-id %s, timestamp %s)\n", id, r.header.Get("webhook-timestamp"))
		if err != nil || string(out) != want {
			t.Errorf("sidehook verify on %s's retry: %v\n got %q\nwant %q", wh, err, out, want)
		}
		if err := os.WriteFile(bf, tamper(r.body), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err = exec.Command(binaryPath, args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "fail: no signature matched") {
			t.Errorf("sidehook verify on %s's retry, body tampered: %v, want exit 1 saying no signature matched:\n%s", wh, err, out)
		}
	}

	if code := d.stop(10 * time.Second); code != 0 {
		t.Errorf("SIGTERM at the end: exit code %d, want 0", code)
	}
}
