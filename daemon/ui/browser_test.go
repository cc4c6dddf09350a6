package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/sidehook/sidehook/daemon"
	"github.com/sidehook/sidehook/delivery"
)

// chromium is where Debian's package puts the browser; .ci/run installs it.
const chromium = "/usr/bin/chromium"

// TestBrowser_HistoryPages opens the pages of a running daemon in headless
// Chromium, as a person would: it watches deliveries move from In Queue to
// Success without a reload, reads a failed delivery's data sent and
// received, presses Retry now and sees the new attempt. It saves
// screenshots in $SIDEHOOK_ARTIFACTS (else a temp dir).
func TestBrowser_HistoryPages(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no browser at %s (apt-get install chromium): %v", chromium, err)
	}
	artifacts := os.Getenv("SIDEHOOK_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	recv := newReceiver(t)
	d := startDaemon(t, recv.URL)
	base := "http://" + d.Addr()

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	ctx = startBrowser(t, ctx)
	shot := func(name string) {
		t.Helper()
		// From the top, so that the sticky header sits there.
		chromedp.Run(ctx, chromedp.Evaluate[any](`window.scrollTo(0, 0)`))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		p := filepath.Join(artifacts, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Error(err)
			return
		}
		t.Logf("screenshot: %s", p)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			shot("failed.png")
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	must := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot("failed.png")
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}

	// Leads wait 2 s before their first attempt: the history page shows
	// them In Queue, then Success (or Failure for the one the receiver
	// refuses), by itself.
	var leads []string
	for i, name := range []string{"Ada Lovelace", "Grace Hopper", `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">`} {
		leads = append(leads, post(t, base, "Lead Creation", fmt.Sprintf("lead-%d", 4711+i),
			map[string]any{"ProspectID": fmt.Sprint(4711 + i), "FirstName": name, "Source": "Landing page"})...)
	}
	must("open the lead history",
		chromedp.Navigate(base+"/webhooks/crm-new-lead"),
		chromedp.WaitVisible(chromedp.CSS(`#history tbody tr`)),
	)
	if got := text(`#history tbody`); strings.Count(got, "In Queue") != 3 {
		t.Errorf("history before the delay: want 3 In Queue rows, see:\n%s", got)
	}
	shot("history-in-queue.png")
	eval(`window.__stay = "no reload"`)
	must("wait for the deliveries to show their outcome without a reload",
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#history tbody .st-success').length === 2 &&
			document.querySelectorAll('#history tbody .st-failure').length === 1`,
			chromedp.WithPollingTimeout(10*time.Second)),
	)
	if got := eval(`window.__stay`); got != "no reload" {
		t.Errorf("the page reloaded to show the change (marker %v)", got)
	}
	if got := text(`[data-live-state]`); !strings.HasPrefix(got, "Live") {
		t.Errorf("live indicator says %q, want Live", got)
	}

	// A task that fails once, a batch of activities, and one delivery
	// kept in the queue by a long delay.
	task := post(t, base, "Task Complete", "task-42", map[string]any{"TaskId": "42", "Subject": "Call back Ada", "Owner": "sales@example.com"})[0]
	var batch []string
	for i := range 3 {
		batch = post(t, base, "Lead Activity Creation", fmt.Sprintf("act-%d", i), map[string]any{"ActivityEvent": 200 + i, "ProspectID": "4711"})
	}
	post(t, base, "Opportunity Create", "opp-1", map[string]any{"OpportunityId": "o-1", "Amount": 1250.5})
	for _, id := range append(append([]string{task}, batch...), leads...) {
		waitFinished(t, d.Engine(), id)
	}

	must("open the webhooks page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`table.hooks`)))
	hooks := text(`table.hooks`)
	for _, want := range []string{"crm-new-lead", "New Lead Data", "Lead Creation", "task-sync", "Enabled", "66.7%", "0.0%", "100%"} {
		if !strings.Contains(hooks, want) {
			t.Errorf("webhooks page lacks %q:\n%s", want, hooks)
		}
	}
	if got := text(`tr[data-webhook="crm-new-lead"] .c-success`); got != "2" {
		t.Errorf("crm-new-lead success count: got %q, want 2", got)
	}
	if got := text(`tr[data-webhook="task-sync"] .c-failure`); got != "1" {
		t.Errorf("task-sync failure count: got %q, want 1", got)
	}
	if got := text(`tr[data-webhook="opportunities"] .c-queue`); got != "1" {
		t.Errorf("opportunities in-queue count: got %q, want 1", got)
	}
	shot("webhooks.png")

	must("open the lead history again", chromedp.Navigate(base+"/webhooks/crm-new-lead"), chromedp.WaitVisible(chromedp.CSS(`#history tbody tr`)))
	shot("history.png")

	// The failed task: data sent and received.
	must("open the failed delivery", chromedp.Navigate(base+"/deliveries/"+task), chromedp.WaitVisible(chromedp.ID("attempt-1")))
	if got := text(`#summary`); !strings.Contains(got, "Failure") {
		t.Errorf("summary of the failed delivery:\n%s", got)
	}
	attempt := text(`#attempt-1`)
	for _, want := range []string{"Attempt 1", "HTTP 503 Service Unavailable", `"Subject": "Call back Ada"`,
		"upstream database locked", "Authorization", "[redacted]", "entityId=task-sync"} {
		if !strings.Contains(attempt, want) {
			t.Errorf("attempt 1 lacks %q:\n%s", want, attempt)
		}
	}
	if html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); strings.Contains(html, "tok_do_not_show") {
		t.Error("the delivery page shows a secret header value")
	}
	if got := text(`#repro-cmd`); !strings.Contains(got, "curl -sS -i -X POST") || !strings.Contains(got, "Authorization: [redacted]") {
		t.Errorf("curl command:\n%s", got)
	}
	// Times are shown in the browser's zone, UTC on hover.
	tm, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
		`(t => ({text: t.textContent, title: t.title, iso: t.getAttribute("datetime")}))(document.querySelector("#attempt-1 time"))`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(tm["title"], " UTC") || strings.Contains(tm["text"], "UTC") {
		t.Errorf("attempt time: text %q, title %q; want local text and UTC in the title", tm["text"], tm["title"])
	}
	if at, _ := time.Parse(time.RFC3339, tm["iso"]); !strings.Contains(tm["text"], at.In(kolkata(t)).Format("15:04:05")) {
		t.Errorf("attempt time %q is not %s in Asia/Kolkata", tm["text"], tm["iso"])
	}

	must("press Retry now",
		chromedp.Click(chromedp.CSS(`form[data-retry] button`)),
		chromedp.WaitVisible(chromedp.ID("attempt-2")),
	)
	retried := text(`#attempt-2`)
	for _, want := range []string{"Attempt 2", "manual", "200 OK", `"ok": true`} {
		if !strings.Contains(retried, want) {
			t.Errorf("the manual attempt lacks %q:\n%s", want, retried)
		}
	}
	if got := text(`#summary`); !strings.Contains(got, "Success") {
		t.Errorf("after the retry the delivery is not Success:\n%s", got)
	}
	shot("delivery.png")

	// Hostile data shows as text and runs nothing.
	must("open the hostile lead", chromedp.Navigate(base+"/deliveries/"+leads[2]), chromedp.WaitVisible(chromedp.ID("attempt-1")))
	if got := eval(`window.__xss === undefined`); got != true {
		t.Errorf("hostile data ran: window.__xss is set")
	}
	if got := text(`#attempt-1 pre`); !strings.Contains(got, `<script>window.__xss=1</script>`) {
		t.Errorf("the request body does not show the payload as text:\n%s", got)
	}
	if got := text(`#attempt-1`); !strings.Contains(got, `"error": "FirstName must not hold markup: <script>"`) {
		t.Errorf("the response body does not show as text:\n%s", got)
	}

	must("open the batch", chromedp.Navigate(base+"/deliveries/"+batch[0]), chromedp.WaitVisible(chromedp.CSS(`.event-ids`)))
	if got := text(`main`); !strings.Contains(strings.ToLower(got), "batch of 3 events") {
		t.Errorf("the batch delivery does not list its 3 events:\n%.600s", got)
	}

	// For the eye: statuses must read without colour, and the dark
	// palette must be as legible as the light one.
	must("see the history in greyscale",
		emulate(emulation.SetEmulatedVisionDeficiency, emulation.SetEmulatedVisionDeficiencyParams{Type: emulation.SetEmulatedVisionDeficiencyTypeAchromatopsia}),
		chromedp.Navigate(base+"/webhooks/crm-new-lead"), chromedp.WaitVisible(chromedp.CSS(`#history tbody tr`)),
	)
	shot("history-greyscale.png")
	must("see a delivery in the dark palette",
		emulate(emulation.SetEmulatedVisionDeficiency, emulation.SetEmulatedVisionDeficiencyParams{Type: emulation.SetEmulatedVisionDeficiencyTypeNone}),
		emulate(emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}),
		chromedp.Navigate(base+"/deliveries/"+task), chromedp.WaitVisible(chromedp.ID("attempt-2")),
	)
	shot("delivery-dark.png")
}

// emulate sends one Emulation command to the tab.
func emulate[P any](c cdp.Command[P, cdp.Empty], params P) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, c, params)
		return chromedp.Void{}, err
	}
}

func kolkata(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	return loc
}

// startBrowser starts headless Chromium with a fresh profile, in the
// Asia/Kolkata zone so that local times differ from UTC.
func startBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "sidehook-chromium")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 900),
		chromedp.Env("TZ=Asia/Kolkata"),
	)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		// The browser's children may still write for a moment.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1440, 900)); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return bctx
}

// receiver answers 200, but 422 to a lead holding markup and 503 to the
// first task.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	tasks int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/leads":
			if bytes.Contains(body, []byte("<script>")) {
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprint(w, `{"error":"FirstName must not hold markup: <script>"}`)
				return
			}
		case "/tasks":
			rc.mu.Lock()
			rc.tasks++
			n := rc.tasks
			rc.mu.Unlock()
			if n == 1 {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"error":"upstream database locked","retry":true}`)
				return
			}
		}
		fmt.Fprintf(w, `{"ok":true,"bytes":%d}`, len(body))
	}))
	t.Cleanup(rc.Close)
	return rc
}

// startDaemon runs a daemon in-process with a loopback listener.
func startDaemon(t *testing.T, recvURL string) *daemon.Daemon {
	t.Helper()
	dir := t.TempDir()
	sockDir, err := os.MkdirTemp("", "shui")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`socket: %s
listen: %s
webhooks:
  - id: crm-new-lead
    description: New Lead Data
    events: [Lead Creation]
    url: %[3]s/leads
    delay: 2s
    headers:
      X-Team: sales
    retry: {attempts: 1}
  - id: task-sync
    description: Completed tasks to the ERP
    events: [Task Complete]
    url: %[3]s/tasks
    headers:
      Authorization: Bearer tok_do_not_show
    retry: {attempts: 1}
  - id: activity-feed
    description: Lead activities, batched
    events: [Lead Activity Creation]
    url: %[3]s/activities
    batch: {window: 1s, max: 50}
  - id: opportunities
    description: New opportunities, after review
    events: [Opportunity Create]
    url: %[3]s/opportunities
    delay: 1h
`, filepath.Join(sockDir, "s.sock"), addr, recvURL)
	path := filepath.Join(dir, "webhooks.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), daemon.Options{ConfigFile: path, DataDir: filepath.Join(dir, "data"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d
}

// post sends one event through the daemon's API and returns its
// deliveries.
func post(t *testing.T, base, event, key string, data any) []string {
	t.Helper()
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // hostile markup goes out as it is
	if err := enc.Encode(map[string]any{"event": event, "id": key, "data": data}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/v1/events", "application/json", &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acc delivery.Accepted
	if err := json.NewDecoder(resp.Body).Decode(&acc); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post %s: %d %v", event, resp.StatusCode, err)
	}
	var ids []string
	for _, p := range acc.Deliveries {
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		t.Fatalf("post %s: no delivery", event)
	}
	return ids
}

func waitFinished(t *testing.T, e *delivery.Engine, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := e.Get(id)
		if err == nil && d.Status != delivery.StatusInQueue {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s still %q after 10s (err %v)", id, d.Status, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
