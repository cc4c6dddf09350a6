package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/internal/testcert"
)

// countingListener counts the connections a server accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// countedServer is an httptest server answering 200 that counts the
// connections it accepts.
func countedServer(t *testing.T) (*httptest.Server, *countingListener) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cl := &countingListener{Listener: srv.Listener}
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// failOnce sends one delivery to wh with a single attempt and returns it
// once finished.
func failOnce(t *testing.T, cfg *config.Config) (*Engine, Delivery) {
	t.Helper()
	e := openEngine(t, t.TempDir(), cfg)
	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	return e, waitFinished(t, e, acc.Deliveries[0].ID)
}

func TestPolicy_MetadataDeniedByDefault(t *testing.T) {
	wh := hook("meta", "http://169.254.169.254/latest/meta-data/", "Lead_Post_Create")
	wh.Retry.Attempts = 1
	e, d := failOnce(t, testConfig(wh))
	want := "destination 169.254.169.254 is denied by network.deny (169.254.0.0/16)"
	if d.Status != StatusFailure || len(d.Attempts) != 1 || d.Attempts[0].Error != want {
		t.Fatalf("delivery = %s, attempts %+v; want a failure with %q", d.Status, d.Attempts, want)
	}
	// The refusal comes from the dialer's Control hook, which runs after
	// the socket is made and before connect(2): no packet leaves, so it
	// is immediate even though nothing would ever answer at that address.
	start := time.Now()
	_, err := e.http.dialer.DialContext(context.Background(), "tcp", "169.254.169.254:80")
	var denied *deniedError
	if !errors.As(err, &denied) || time.Since(start) > time.Second {
		t.Errorf("dial 169.254.169.254:80 = %v after %s, want an immediate policy refusal", err, time.Since(start))
	}
	_, err = e.http.dialer.DialContext(context.Background(), "tcp", "[fe80::1]:80")
	if !errors.As(err, &denied) || denied.prefix.String() != "fe80::/10" {
		t.Errorf("dial [fe80::1]:80 = %v, want refused by fe80::/10", err)
	}
	// A ping (the handshake) is refused the same way.
	if res := e.Ping(context.Background(), wh); res.Error != want {
		t.Errorf("ping error = %q, want %q", res.Error, want)
	}
}

func TestPolicy_DenyRefusesBeforeConnecting(t *testing.T) {
	srv, cl := countedServer(t)
	wh := hook("local", srv.URL+"/hook", "Lead_Post_Create")
	wh.Retry.Attempts = 1
	cfg := testConfig(wh)
	cfg.Network = &config.Network{Deny: prefixes("127.0.0.0/8")}
	e, d := failOnce(t, cfg)
	want := "destination 127.0.0.1 is denied by network.deny (127.0.0.0/8)"
	if d.Status != StatusFailure || d.Attempts[0].Error != want {
		t.Fatalf("delivery = %s, error %q; want a failure with %q", d.Status, d.Attempts[0].Error, want)
	}
	if n := cl.n.Load(); n != 0 {
		t.Errorf("the receiver accepted %d connections, want none", n)
	}

	// Allowing the address, by a reload, lets the next attempt through:
	// the dialer reads the policy in force at each connection.
	allowed := testConfig(wh)
	allowed.Network = &config.Network{Deny: prefixes("127.0.0.0/8"), Allow: prefixes("127.0.0.1/32")}
	e.SetConfig(allowed)
	got, err := e.Retry(context.Background(), d.ID)
	if err != nil || got.Status != StatusSuccess {
		t.Fatalf("retry after allowing 127.0.0.1 = %s (err %v), want success; attempts %+v", got.Status, err, got.Attempts)
	}
	if cl.n.Load() == 0 {
		t.Error("the receiver saw no connection after the allow")
	}
}

func TestPolicy_AllowBeatsDeny(t *testing.T) {
	srv, _ := countedServer(t)
	wh := hook("local", srv.URL+"/hook", "Lead_Post_Create")
	wh.Retry.Attempts = 1
	cfg := testConfig(wh)
	cfg.Network = &config.Network{Deny: prefixes("127.0.0.0/8"), Allow: prefixes("127.0.0.1/32")}
	if _, d := failOnce(t, cfg); d.Status != StatusSuccess {
		t.Fatalf("delivery = %s, attempts %+v; want success", d.Status, d.Attempts)
	}
}

func TestPolicy_AppliesToNotices(t *testing.T) {
	dead := newReceiver(t, func(int, http.ResponseWriter) int { return 500 })
	crm := hook("crm", dead.URL, "Lead_Post_Create")
	crm.NotifyOnFailure = true
	crm.Retry.Attempts = 1
	cfg := testConfig(crm)
	cfg.Notify = &config.Notify{URL: "http://169.254.169.254/notices", Timeout: time.Second, Window: 50 * time.Millisecond}
	e := openEngine(t, t.TempDir(), cfg)
	ingest(t, e, "Lead Creation", "", `{}`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		page, err := e.List(Query{Webhook: NotifyWebhook})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Deliveries) == 1 {
			if d := mustGet(t, e, page.Deliveries[0].ID); len(d.Attempts) > 0 {
				if want := "destination 169.254.169.254 is denied by network.deny (169.254.0.0/16)"; d.Attempts[0].Error != want {
					t.Fatalf("notice attempt error = %q, want %q", d.Attempts[0].Error, want)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no notice attempt within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsReceiver starts an HTTPS server with the given certificate; with
// clientCA set it requires a client certificate signed by it.
func tlsReceiver(t *testing.T, leaf *testcert.Leaf, clientCA *testcert.CA) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	if clientCA != nil {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = clientCA.Pool()
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func caTLS(ca *testcert.CA) *config.TLS {
	return &config.TLS{CAFile: ca.File, CAPEM: ca.PEM}
}

func TestTLS_Errors(t *testing.T) {
	ca := testcert.NewCA(t, "sidehook-test")
	good := tlsReceiver(t, ca.Leaf("good", testcert.LeafOptions{}), nil)
	expired := tlsReceiver(t, ca.Leaf("expired", testcert.LeafOptions{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}), nil)
	otherHost := tlsReceiver(t, ca.Leaf("other", testcert.LeafOptions{Hosts: []string{"127.0.0.2"}}), nil)
	otherCA := testcert.NewCA(t, "another")

	tests := []struct {
		name string
		url  string
		tls  *config.TLS
		want string // "" for success; else the start of the error
	}{
		{"unknown authority", good.URL, nil, "TLS: the receiver's certificate is signed by an unknown authority (self-signed or from a private CA? set tls.ca_file to the CA's certificate) (x509: certificate signed by unknown authority"},
		{"wrong ca_file", good.URL, caTLS(otherCA), "TLS: the receiver's certificate is signed by an unknown authority (not signed by the CA in tls.ca_file " + otherCA.File + ")"},
		{"ca_file", good.URL, caTLS(ca), ""},
		{"expired", expired.URL, caTLS(ca), "TLS: the receiver's certificate has expired or is not valid yet (x509: certificate has expired or is not yet valid: current time"},
		{"wrong host", otherHost.URL, caTLS(ca), "TLS: the receiver's certificate is for another host (x509: certificate is valid for 127.0.0.2, not 127.0.0.1)"},
		{"insecure_skip_verify", good.URL, &config.TLS{InsecureSkipVerify: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh := hook("tls", tt.url+"/hook", "Lead_Post_Create")
			wh.Retry.Attempts = 1
			wh.TLS = tt.tls
			_, d := failOnce(t, testConfig(wh))
			switch {
			case tt.want == "" && d.Status != StatusSuccess:
				t.Fatalf("delivery = %s, attempts %+v; want success", d.Status, d.Attempts)
			case tt.want != "" && (d.Status != StatusFailure || !strings.HasPrefix(d.Attempts[0].Error, tt.want)):
				t.Fatalf("delivery = %s, error:\n%s\nwant a failure starting:\n%s", d.Status, d.Attempts[0].Error, tt.want)
			}
		})
	}
}

func TestTLS_ClientCertificate(t *testing.T) {
	ca := testcert.NewCA(t, "sidehook-test")
	srv := tlsReceiver(t, ca.Leaf("server", testcert.LeafOptions{}), ca)
	client := ca.Leaf("client", testcert.LeafOptions{Client: true})

	without := hook("without", srv.URL+"/hook", "Lead_Post_Create")
	without.Retry.Attempts = 1
	without.TLS = caTLS(ca)
	with := hook("with", srv.URL+"/hook", "Task_Post_Create")
	with.Retry.Attempts = 1
	with.TLS = &config.TLS{CAFile: ca.File, CAPEM: ca.PEM,
		CertFile: client.CertFile, CertPEM: client.CertPEM, KeyFile: client.KeyFile, KeyPEM: client.KeyPEM}
	e := openEngine(t, t.TempDir(), testConfig(without, with))

	d := waitFinished(t, e, ingest(t, e, "Lead Creation", "", `{}`).Deliveries[0].ID)
	want := "TLS: the receiver asks for a client certificate; set tls.cert_file and tls.key_file (remote error: tls: certificate required)"
	if d.Status != StatusFailure || d.Attempts[0].Error != want {
		t.Errorf("without a client certificate: %s, error %q; want a failure with %q", d.Status, d.Attempts[0].Error, want)
	}
	d = waitFinished(t, e, ingest(t, e, "Task Create", "", `{}`).Deliveries[0].ID)
	if d.Status != StatusSuccess {
		t.Errorf("with a client certificate: %s, attempts %+v; want success", d.Status, d.Attempts)
	}
}

func TestTLS_OneTransportPerSetting(t *testing.T) {
	ca := testcert.NewCA(t, "sidehook-test")
	a := hook("a", "https://127.0.0.1:1/", "Lead_Post_Create")
	a.TLS = caTLS(ca)
	b := hook("b", "https://127.0.0.1:1/", "Lead_Post_Create")
	b.TLS = caTLS(ca)
	c := hook("c", "https://127.0.0.1:1/", "Lead_Post_Create")
	c.TLS = &config.TLS{InsecureSkipVerify: true}
	plain := hook("plain", "https://127.0.0.1:1/", "Lead_Post_Create")
	s := newHTTPSender("test", testConfig(a, b, c, plain))
	ca1, _ := s.clientFor(a)
	cb, _ := s.clientFor(b)
	cc, _ := s.clientFor(c)
	cp, _ := s.clientFor(plain)
	if ca1 != cb || ca1 == cc || ca1 == cp || cc == cp {
		t.Error("want one client per distinct TLS setting")
	}
	if ca1.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify || !cc.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify {
		t.Error("insecure_skip_verify is not where it was set")
	}
	// A reload without the insecure webhook drops its transport.
	s.setConfig(testConfig(a, b, plain))
	if len(s.clients) != 2 {
		t.Errorf("after reload %d clients, want 2", len(s.clients))
	}
}

// TestPolicy_ChecksResolvedAddress shows that a host name is checked on
// what it resolves to at connect time, not on its spelling.
func TestPolicy_ChecksResolvedAddress(t *testing.T) {
	srv, cl := countedServer(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	wh := hook("byname", "http://localhost:"+port+"/hook", "Lead_Post_Create")
	wh.Retry.Attempts = 1
	cfg := testConfig(wh)
	cfg.Network = &config.Network{Deny: prefixes("127.0.0.0/8", "::1/128")}
	_, d := failOnce(t, cfg)
	if d.Status != StatusFailure || !strings.HasPrefix(d.Attempts[0].Error, "destination ") ||
		!strings.Contains(d.Attempts[0].Error, " is denied by network.deny (") {
		t.Fatalf("delivery = %s, error %q; want refused by the policy", d.Status, d.Attempts[0].Error)
	}
	if n := cl.n.Load(); n != 0 {
		t.Errorf("the receiver accepted %d connections, want none", n)
	}
}
