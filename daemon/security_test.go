package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sidehook/sidehook/delivery"
	"github.com/sidehook/sidehook/internal/testcert"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLogged writes text as the config (with %s standing for a socket
// path) and starts a daemon on it that logs JSON at debug level to buf.
func startLogged(t *testing.T, text string, buf *syncBuffer) (*testDaemon, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "webhooks.yaml")
	writeConfig(t, path, strings.ReplaceAll(text, "%s", sockPath(t)))
	var log *slog.Logger
	if buf != nil {
		log = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := Start(context.Background(), Options{ConfigFile: path, DataDir: filepath.Join(dir, "data"), Version: "test", Logger: log})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return &testDaemon{Daemon: d, dir: dir, config: path, client: unixClient(d.Socket())}, nil
}

func TestSocketGroup(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("primary group %d has no name: %v", os.Getgid(), err)
	}
	check := func(t *testing.T, group string, gid int) {
		td, err := startLogged(t, "socket: %s\nsocket_group: "+group+"\nwebhooks: []\n", nil)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(td.Socket())
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid || fi.Mode().Perm() != 0o660 {
			t.Errorf("socket group %d mode %v, want group %d mode 0660", st.Gid, fi.Mode().Perm(), gid)
		}
		if s, _ := td.do(t, "GET", "/healthz", "", ""); s != 200 {
			t.Errorf("healthz on the socket = %d", s)
		}
	}
	t.Run("primary group by name", func(t *testing.T) { check(t, g.Name, os.Getgid()) })
	t.Run("by id", func(t *testing.T) { check(t, `"`+g.Gid+`"`, os.Getgid()) })
	if os.Geteuid() == 0 {
		// As root the socket can be given to any group: pick one that is
		// not ours, so the chown visibly changes something.
		for gid := 1; gid < 1000; gid++ {
			if other, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil && gid != os.Getgid() {
				t.Run("another group", func(t *testing.T) { check(t, other.Name, gid) })
				break
			}
		}
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := startLogged(t, "socket: %s\nsocket_group: sidehook-no-such-group\nwebhooks: []\n", nil)
		if err == nil || err.Error() != `socket_group "sidehook-no-such-group": no such group` {
			t.Errorf("err = %v, want no such group", err)
		}
	})
}

const testToken = "tok-5b1e0c2f9d8a7e6b4c3a"

// tcpDo sends a request to the daemon's TCP listener with an optional
// Authorization header.
func tcpDo(t *testing.T, addr, method, path, auth string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(`{"event":"Lead Creation","data":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAPIToken(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_API_TOKEN", testToken)
	td, err := startLogged(t, `socket: %s
listen: 127.0.0.1:0
api_token: ${SIDEHOOK_TEST_API_TOKEN}
webhooks:
  - id: crm
    events: [Lead Creation]
    url: http://127.0.0.1:1/leads
    delay: 1h
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := td.Addr()
	routes := []struct{ method, path string }{
		{"GET", "/v1/webhooks"}, {"GET", "/v1/deliveries"}, {"GET", "/v1/deliveries/dlv_x"},
		{"GET", "/v1/webhooks/crm/deliveries"}, {"GET", "/v1/events"}, {"POST", "/v1/events"},
		{"POST", "/v1/reload"}, {"GET", "/metrics"}, {"GET", "/"}, {"GET", "/no-such-page"},
	}
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + base64.StdEncoding.EncodeToString([]byte("x:wrong-token-0123456789")), testToken, "Bearer " + testToken + "x"} {
		for _, rt := range routes {
			resp, body := tcpDo(t, addr, rt.method, rt.path, auth)
			var msg struct{ Error string }
			json.Unmarshal([]byte(body), &msg)
			if resp.StatusCode != 401 || msg.Error != "missing or wrong bearer token (set Authorization: Bearer …)" ||
				resp.Header.Get("WWW-Authenticate") != "Bearer" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s with %q = %d %v %s, want 401 with WWW-Authenticate: Bearer", rt.method, rt.path, auth, resp.StatusCode, resp.Header, body)
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := tcpDo(t, addr, "GET", path, ""); resp.StatusCode != 200 {
			t.Errorf("GET %s without a token = %d %s, want 200", path, resp.StatusCode, body)
		}
	}
	// Basic (any user, the token as password) is how a browser sends it.
	for _, auth := range []string{"Bearer " + testToken, "bearer " + testToken, "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+testToken))} {
		if resp, body := tcpDo(t, addr, "GET", "/v1/webhooks", auth); resp.StatusCode != 200 || !strings.Contains(body, `"crm"`) {
			t.Errorf("GET /v1/webhooks with %q = %d %s, want 200", auth, resp.StatusCode, body)
		}
	}
	if resp, body := tcpDo(t, addr, "POST", "/v1/events", "Bearer "+testToken); resp.StatusCode != 202 {
		t.Errorf("POST /v1/events with the token = %d %s, want 202", resp.StatusCode, body)
	}
	if resp, _ := tcpDo(t, addr, "GET", "/metrics", "Bearer "+testToken); resp.StatusCode != 200 {
		t.Errorf("GET /metrics with the token = %d, want 200", resp.StatusCode)
	}
	// The socket needs no token: its mode and group decide.
	if s, b := td.do(t, "GET", "/v1/webhooks", "", ""); s != 200 {
		t.Errorf("GET /v1/webhooks on the socket = %d %s, want 200", s, b)
	}

	// A reload rotates the token.
	t.Setenv("SIDEHOOK_TEST_API_TOKEN", testToken+"-new")
	if err := td.Reload(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := tcpDo(t, addr, "GET", "/v1/webhooks", "Bearer "+testToken); resp.StatusCode != 401 {
		t.Errorf("old token after rotation = %d, want 401", resp.StatusCode)
	}
	if resp, _ := tcpDo(t, addr, "GET", "/v1/webhooks", "Bearer "+testToken+"-new"); resp.StatusCode != 200 {
		t.Errorf("new token after rotation = %d, want 200", resp.StatusCode)
	}
}

func TestAPIToken_NoneOnLoopback(t *testing.T) {
	td, err := startLogged(t, "socket: %s\nlisten: 127.0.0.1:0\nwebhooks: []\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := tcpDo(t, td.Addr(), "GET", "/v1/webhooks", ""); resp.StatusCode != 200 {
		t.Errorf("loopback listener without api_token = %d %s, want 200", resp.StatusCode, body)
	}
}

func TestListenPublic(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_API_TOKEN", testToken)
	td, err := startLogged(t, "socket: %s\nlisten: 0.0.0.0:0\nlisten_public: true\napi_token: ${SIDEHOOK_TEST_API_TOKEN}\nwebhooks: []\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(td.Addr())
	if host, _, _ := net.SplitHostPort(td.Addr()); host != "0.0.0.0" && host != "::" {
		t.Errorf("bound %s, want all addresses", td.Addr())
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	if resp, _ := tcpDo(t, addr, "GET", "/v1/webhooks", ""); resp.StatusCode != 401 {
		t.Errorf("public listener without the token = %d, want 401", resp.StatusCode)
	}
	if resp, _ := tcpDo(t, addr, "GET", "/v1/webhooks", "Bearer "+testToken); resp.StatusCode != 200 {
		t.Errorf("public listener with the token = %d, want 200", resp.StatusCode)
	}
	// A reload that drops api_token (and listen_public, which needs it)
	// cannot open the listener already bound to every address: it then
	// refuses every request until the token is back or sidehook restarts.
	writeConfig(t, td.config, "socket: "+td.Socket()+"\nlisten: 127.0.0.1:0\nwebhooks: []\n")
	if err := td.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"", "Bearer " + testToken, "Bearer "} {
		if resp, _ := tcpDo(t, addr, "GET", "/v1/webhooks", auth); resp.StatusCode != 401 {
			t.Errorf("public listener after api_token was removed, auth %q = %d, want 401", auth, resp.StatusCode)
		}
	}
	if resp, _ := tcpDo(t, addr, "GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("healthz = %d, want 200", resp.StatusCode)
	}
}

func TestListen_NotLoopbackRefused(t *testing.T) {
	_, err := startLogged(t, "socket: %s\nlisten: 0.0.0.0:0\nwebhooks: []\n", nil)
	if err == nil || !strings.Contains(err.Error(), `listen: "0.0.0.0:0" is not a loopback address`) {
		t.Errorf("err = %v, want not a loopback address", err)
	}
	_, err = startLogged(t, "socket: %s\nlisten: 0.0.0.0:0\nlisten_public: true\nwebhooks: []\n", nil)
	if err == nil || !strings.Contains(err.Error(), "listen_public: true needs api_token") {
		t.Errorf("err = %v, want listen_public needs api_token", err)
	}
}

// TestSecretsNeverShown plants recognizable secrets in every place the
// configuration takes one and checks that none shows in the logs (debug
// level), the webhook listing, a delivery's history or a failed reload.
func TestSecretsNeverShown(t *testing.T) {
	const (
		headerSecret = "hdr-canary-4e9d1f7a"
		tokenSecret  = "tok-canary-8c2b6e0d3f"
	)
	whsecKey := []byte("whsec-canary-key-6a0f")
	whsec := base64.StdEncoding.EncodeToString(whsecKey)
	t.Setenv("TEST_SECRET", headerSecret)
	t.Setenv("TEST_API_TOKEN", tokenSecret)
	t.Setenv("TEST_WHSEC", "whsec_"+whsec)

	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != headerSecret {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(500) // a failure, so the attempt is logged as a warning
	}))
	t.Cleanup(rc.Close)
	buf := &syncBuffer{}
	td, err := startLogged(t, `socket: %s
listen: 127.0.0.1:0
api_token: ${TEST_API_TOKEN}
notify:
  url: `+rc.URL+`/notices
  headers: {X-Api-Key: "${TEST_SECRET}"}
  secret: ${TEST_WHSEC}
  window: 10ms
webhooks:
  - id: crm
    events: [Lead Creation]
    url: `+rc.URL+`/leads
    headers:
      X-Api-Key: ${TEST_SECRET}
      Authorization: Bearer ${TEST_SECRET}
    secret: ${TEST_WHSEC}
    handshake: true
    notify_on_failure: true
    retry: {attempts: 2, backoff: 10ms}
`, buf)
	if err != nil {
		t.Fatal(err)
	}
	status, body := td.post(t, `{"event":"Lead Creation","data":{"n":1}}`)
	if status != 202 {
		t.Fatalf("post = %d %s", status, body)
	}
	var acc delivery.Accepted
	json.Unmarshal([]byte(body), &acc)
	id := acc.Deliveries[0].ID
	var shown []string
	eventually(t, 20*1e9, "the delivery to fail and its notice to be sent", func() bool {
		_, b := td.do(t, "GET", "/v1/deliveries/"+id, "", "")
		_, n := td.do(t, "GET", "/v1/webhooks/_notify/deliveries", "", "")
		shown = []string{b, n}
		return strings.Contains(b, `"status":"failure"`) && strings.Contains(n, `"attempt_count":1`)
	})
	if !strings.Contains(shown[0], `"X-Api-Key":"[redacted]"`) || !strings.Contains(shown[0], `"Authorization":"[redacted]"`) {
		t.Errorf("history does not show the secret headers as redacted: %s", shown[0])
	}
	// The API, and the history pages a browser shows.
	for _, path := range []string{"/v1/webhooks", "/v1/deliveries", "/readyz", "/metrics", "/", "/webhooks/crm", "/deliveries/" + id} {
		_, b := td.do(t, "GET", path, "", "")
		shown = append(shown, b)
	}
	if last := shown[len(shown)-1]; !strings.Contains(last, "[redacted]") {
		t.Errorf("the delivery's history page does not show the redacted headers:\n%s", last)
	}
	page := grep(shown[1], `"id"`)
	for _, nid := range strings.Split(page, `"id":"`)[1:] {
		nid, _, _ = strings.Cut(nid, `"`)
		_, b := td.do(t, "GET", "/v1/deliveries/"+nid, "", "")
		shown = append(shown, b)
	}

	// A reload of a broken file: every problem is about a secret's value.
	writeConfig(t, td.config, `socket: `+td.Socket()+`
api_token: "${TEST_API_TOKEN} x"
webhooks:
  - id: crm
    events: [Lead Creation]
    url: "http://127.0.0.1:${TEST_SECRET}/"
    headers:
      X-Api-Key: "${TEST_SECRET}\n"
    secret: whsec_${TEST_SECRET}
`)
	rerr := td.Reload()
	if rerr == nil || strings.Count(rerr.Error(), "\n") != 3 {
		t.Fatalf("reload error = %v, want 4 problems", rerr)
	}
	shown = append(shown, rerr.Error())
	_, b := td.do(t, "GET", "/v1/webhooks", "", "")
	if !strings.Contains(b, `"config_error":"`) {
		t.Errorf("the listing does not show the reload error: %s", b)
	}
	shown = append(shown, b)
	shown = append(shown, buf.String())
	if !strings.Contains(buf.String(), `"level":"DEBUG"`) || !strings.Contains(buf.String(), "attempt failed") || !strings.Contains(buf.String(), "config rejected") {
		t.Errorf("the log is missing the lines this test looks at:\n%s", buf.String())
	}
	for i, text := range shown {
		for _, secret := range []string{headerSecret, tokenSecret, whsec, string(whsecKey)} {
			if strings.Contains(text, secret) {
				t.Errorf("output %d shows secret %q:\n%s", i, secret, text)
			}
		}
	}
}

func TestInsecureSkipVerifyWarned(t *testing.T) {
	buf := &syncBuffer{}
	td, err := startLogged(t, `socket: %s
webhooks:
  - id: lab
    events: [Lead Creation]
    url: https://127.0.0.1:1/leads
    tls: {insecure_skip_verify: true}
  - id: safe
    events: [Lead Creation]
    url: https://127.0.0.1:1/leads
`, buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := td.Reload(); err != nil {
		t.Fatal(err)
	}
	var warned []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		json.Unmarshal([]byte(line), &rec)
		if rec["level"] == "WARN" && strings.Contains(rec["msg"].(string), "insecure_skip_verify") {
			warned = append(warned, rec["webhook"].(string))
		}
	}
	if len(warned) != 2 || warned[0] != "lab" || warned[1] != "lab" {
		t.Errorf("insecure_skip_verify warnings for %v, want lab at start and at reload", warned)
	}
}

func TestTLSFilesAtLoad(t *testing.T) {
	ca := testcert.NewCA(t, "sidehook-test")
	client := ca.Leaf("client", testcert.LeafOptions{Client: true})
	_, err := startLogged(t, `socket: %s
webhooks:
  - id: mtls
    events: [Lead Creation]
    url: https://127.0.0.1:1/leads
    tls: {ca_file: `+ca.File+`, cert_file: `+client.CertFile+`, key_file: `+client.KeyFile+`}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
}
