package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/internal/testcert"
)

func TestLoad_Security(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_TOKEN", "tok-0123456789abcdef")
	cfg, err := Load(writeConfig(t, `
listen: 0.0.0.0:8787
listen_public: true
api_token: ${SIDEHOOK_TEST_TOKEN}
socket_group: sidehook
network:
  deny: [127.0.0.0/8, "::ffff:10.0.0.0/104"]
  allow: [127.0.0.1, 10.1.0.0/16]
webhooks: []
`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ListenPublic || cfg.APIToken != "tok-0123456789abcdef" || cfg.SocketGroup != "sidehook" {
		t.Errorf("got listen_public %v, api_token %q, socket_group %q", cfg.ListenPublic, cfg.APIToken, cfg.SocketGroup)
	}
	wantDeny := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	wantAllow := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.1.0.0/16")}
	if cfg.Network == nil || !equalPrefixes(cfg.Network.Deny, wantDeny) || !equalPrefixes(cfg.Network.Allow, wantAllow) {
		t.Errorf("network = %+v, want deny %v allow %v", cfg.Network, wantDeny, wantAllow)
	}
}

func equalPrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoad_LoopbackListen(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8787", "[::1]:8787", "localhost:8787", "127.1.2.3:0"} {
		if _, err := Load(writeConfig(t, "listen: \""+addr+"\"\nwebhooks: []\n")); err != nil {
			t.Errorf("listen %s: %v", addr, err)
		}
	}
	for _, addr := range []string{":8787", "0.0.0.0:8787", "[::]:8787", "example.com:8787"} {
		if _, err := Load(writeConfig(t, "listen: \""+addr+"\"\nwebhooks: []\n")); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("listen %s: err = %v, want not a loopback address", addr, err)
		}
	}
}

func TestNetwork_Denies(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	tests := []struct {
		name string
		n    *Network
		addr string
		want string // the denying prefix, "" when allowed
	}{
		{"default metadata", nil, "169.254.169.254", "169.254.0.0/16"},
		{"default mapped metadata", nil, "::ffff:169.254.169.254", "169.254.0.0/16"},
		{"default v6 link-local", nil, "fe80::1", "fe80::/10"},
		{"default loopback", nil, "127.0.0.1", ""},
		{"default private", nil, "10.0.0.7", ""},
		{"no deny keeps defaults", &Network{Allow: []netip.Prefix{p("10.0.0.0/8")}}, "169.254.169.254", "169.254.0.0/16"},
		{"allow beats default", &Network{Allow: []netip.Prefix{p("169.254.169.254/32")}}, "169.254.169.254", ""},
		{"own deny replaces defaults", &Network{Deny: []netip.Prefix{p("127.0.0.0/8")}}, "169.254.169.254", ""},
		{"own deny", &Network{Deny: []netip.Prefix{p("127.0.0.0/8")}}, "127.0.0.1", "127.0.0.0/8"},
		{"allow beats deny", &Network{Deny: []netip.Prefix{p("127.0.0.0/8")}, Allow: []netip.Prefix{p("127.0.0.1/32")}}, "127.0.0.1", ""},
		{"allow is narrow", &Network{Deny: []netip.Prefix{p("127.0.0.0/8")}, Allow: []netip.Prefix{p("127.0.0.1/32")}}, "127.0.0.2", "127.0.0.0/8"},
	}
	for _, tt := range tests {
		got, denied := tt.n.Denies(a(tt.addr))
		switch {
		case tt.want == "" && denied:
			t.Errorf("%s: %s denied by %s, want allowed", tt.name, tt.addr, got)
		case tt.want != "" && (!denied || got.String() != tt.want):
			t.Errorf("%s: %s = (%s, %v), want denied by %s", tt.name, tt.addr, got, denied, tt.want)
		}
	}
}

func TestLoad_TLS(t *testing.T) {
	ca := testcert.NewCA(t, "test")
	client := ca.Leaf("client", testcert.LeafOptions{Client: true})
	other := ca.Leaf("other", testcert.LeafOptions{Client: true})
	dir := filepath.Dir(writeConfig(t, ""))
	// A relative ca_file is relative to the file's folder.
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "webhooks.yaml")
	text := `
webhooks:
  - id: mtls
    event: Lead Creation
    url: https://127.0.0.1:8443/leads
    tls:
      ca_file: ca.pem
      cert_file: ` + client.CertFile + `
      key_file: ` + client.KeyFile + `
  - id: insecure
    event: Lead Creation
    url: https://127.0.0.1:8443/leads
    tls: {insecure_skip_verify: true}
  - id: plain
    event: Lead Creation
    url: https://127.0.0.1:8443/leads
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Webhook("mtls").TLS
	if m == nil || m.CAFile != filepath.Join(dir, "ca.pem") || string(m.CAPEM) != string(ca.PEM) || string(m.KeyPEM) != string(client.KeyPEM) {
		t.Fatalf("mtls tls = %+v", m)
	}
	c, err := m.ClientConfig()
	if err != nil || c.RootCAs == nil || len(c.Certificates) != 1 || c.InsecureSkipVerify {
		t.Fatalf("ClientConfig = %+v, %v", c, err)
	}
	ins := cfg.Webhook("insecure").TLS
	if c, _ := ins.ClientConfig(); !c.InsecureSkipVerify {
		t.Error("insecure_skip_verify: true did not turn verification off")
	}
	if cfg.Webhook("plain").TLS != nil {
		t.Error("a webhook without tls has TLS settings")
	}
	if m.Fingerprint() == ins.Fingerprint() || m.Fingerprint() == (*TLS)(nil).Fingerprint() {
		t.Error("different TLS settings share a fingerprint")
	}

	// A certificate with another's key is refused at load.
	bad := strings.Replace(text, client.KeyFile, other.KeyFile, 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), "webhooks[0].tls.cert_file: "+client.CertFile+" and key_file "+other.KeyFile+" do not make a client certificate: tls: private key does not match public key") {
		t.Errorf("mismatched key: err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error shows the key: %v", err)
	}
}

// TestLoad_SecretsNotInErrors checks that problems with values that hold
// secrets never repeat the expanded value.
func TestLoad_SecretsNotInErrors(t *testing.T) {
	const secret = "SeCrEt-canary-7f3a9"
	t.Setenv("TEST_SECRET", secret)
	t.Setenv("TEST_SHORT", "short"+secret[:4])
	_, err := Load(writeConfig(t, `
api_token: ${TEST_SHORT}
webhooks:
  - id: a
    event: Lead Creation
    url: http://127.0.0.1:9/
    secret: ${TEST_SECRET}
    headers:
      X-Api-Key: "${TEST_SECRET}\n"
  - id: b
    event: Lead Creation
    url: http://127.0.0.1:9/
    secrets: [{secret: "whsec_${TEST_SECRET}"}]
  - id: c
    event: Lead Creation
    url: "http://127.0.0.1:${TEST_SECRET}/"
`))
	if err == nil {
		t.Fatal("no error")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 5 {
		t.Errorf("got %d problems, want 5:\n%v", n, err)
	}
	for _, s := range []string{secret, "short" + secret[:4]} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows a secret:\n%v", err)
		}
	}
}
