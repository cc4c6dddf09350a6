package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// MinAPITokenLength is the shortest api_token accepted.
const MinAPITokenLength = 16

// Network is the outbound policy, checked on the address every connection
// is about to be made to, after DNS resolution. An address in Allow is
// permitted; otherwise one in Deny is refused; anything else is permitted.
type Network struct {
	Allow []netip.Prefix
	// Deny is the file's deny list; empty means DefaultDeny.
	Deny []netip.Prefix
}

// DefaultDeny returns the deny list in force when the file sets none: the
// link-local ranges, where cloud metadata services (169.254.169.254)
// live.
func DefaultDeny() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")}
}

// Denies reports whether a connection to addr is refused, and the deny
// prefix that refuses it. A nil Network applies the defaults.
func (n *Network) Denies(addr netip.Addr) (netip.Prefix, bool) {
	addr = addr.Unmap()
	deny := DefaultDeny()
	if n != nil {
		for _, p := range n.Allow {
			if p.Contains(addr) {
				return netip.Prefix{}, false
			}
		}
		if len(n.Deny) > 0 {
			deny = n.Deny
		}
	}
	for _, p := range deny {
		if p.Contains(addr) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// TLS is a webhook's TLS client settings. The files are read and checked
// at load; their contents are kept so that a reload picks up new ones.
type TLS struct {
	// InsecureSkipVerify turns certificate verification off.
	InsecureSkipVerify bool
	// CAFile holds the PEM certificates trusted instead of the system's.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key (mTLS).
	CertFile string
	KeyFile  string
	// CAPEM, CertPEM and KeyPEM are the files' contents. KeyPEM is a
	// secret: it is never shown.
	CAPEM   []byte `json:"-"`
	CertPEM []byte `json:"-"`
	KeyPEM  []byte `json:"-"`
}

// Fingerprint identifies the settings and the files' contents, so that
// webhooks with the same TLS settings can share connections.
func (t *TLS) Fingerprint() string {
	if t == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%t\x00", t.InsecureSkipVerify)
	for _, b := range [][]byte{t.CAPEM, t.CertPEM, t.KeyPEM} {
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ClientConfig builds the crypto/tls client configuration. Verification
// stays on unless InsecureSkipVerify; a nil TLS gives the defaults.
func (t *TLS) ClientConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t == nil {
		return c, nil
	}
	c.InsecureSkipVerify = t.InsecureSkipVerify
	if len(t.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CAPEM) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if len(t.CertPEM) > 0 {
		cert, err := tls.X509KeyPair(t.CertPEM, t.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s and tls.key_file %s: %v", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// network reads the top-level network block: {allow: [CIDR...], deny:
// [CIDR...]}.
func (d *decoder) network(n *yaml.Node, path string) *Network {
	m, ok := d.mapping(n, path, "allow", "deny")
	if !ok {
		return nil
	}
	nw := &Network{}
	if v := m.get("allow"); v != nil {
		nw.Allow = d.prefixes(v, join(path, "allow"))
	}
	if v := m.get("deny"); v != nil {
		nw.Deny = d.prefixes(v, join(path, "deny"))
	}
	return nw
}

// prefixes reads a list of CIDR prefixes; a bare address is one host.
func (d *decoder) prefixes(n *yaml.Node, path string) []netip.Prefix {
	items, ok := d.seq(n, path)
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for i, item := range items {
		at := index(path, i)
		s, ok := d.str(item, at)
		if !ok {
			continue
		}
		s = strings.TrimSpace(s)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		switch {
		case err != nil && !strings.Contains(s, "%"):
			d.errorf(item, at, "must be a CIDR prefix such as 10.0.0.0/8 or fd00::/8, or one address (got %q)", item.Value)
		case strings.Contains(s, "%"):
			d.errorf(item, at, "must not name a zone (%%eth0): the policy applies on every interface (got %q)", item.Value)
		case p != p.Masked():
			d.errorf(item, at, "%s has bits set past the prefix length; did you mean %s? (got %q)", p, p.Masked(), item.Value)
		default:
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				// ::ffff:a.b.c.d/n is the IPv4 prefix a.b.c.d/(n-96):
				// dialled addresses are compared unmapped.
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p)
		}
	}
	return out
}

// apiToken reads api_token, the bearer token of the TCP listener. Messages
// never repeat its value.
func (d *decoder) apiToken(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			d.errorf(n, path, "must be printable ASCII without spaces (it is sent in an Authorization header)")
			return "", false
		}
	}
	if len(s) < MinAPITokenLength {
		d.errorf(n, path, "is too short (%d characters); use at least %d random ones, such as the output of: openssl rand -hex 32", len(s), MinAPITokenLength)
		return "", false
	}
	return s, true
}

// tls reads a webhook's tls block, reading and checking its files.
func (d *decoder) tls(n *yaml.Node, path string) *TLS {
	m, ok := d.mapping(n, path, "insecure_skip_verify", "ca_file", "cert_file", "key_file")
	if !ok {
		return nil
	}
	t := &TLS{}
	if v := m.get("insecure_skip_verify"); v != nil {
		t.InsecureSkipVerify, _ = d.bool(v, join(path, "insecure_skip_verify"))
	}
	if v := m.get("ca_file"); v != nil {
		at := join(path, "ca_file")
		if t.CAFile, t.CAPEM = d.readPEM(v, at); t.CAPEM != nil {
			if !x509.NewCertPool().AppendCertsFromPEM(t.CAPEM) {
				d.errorf(v, at, "%s holds no PEM certificate (want -----BEGIN CERTIFICATE----- blocks)", t.CAFile)
				t.CAPEM = nil
			}
		}
	}
	cert, key := m.get("cert_file"), m.get("key_file")
	switch {
	case cert != nil && key == nil:
		d.errorf(m.keys["cert_file"], join(path, "cert_file"), "needs key_file too: a client certificate is a certificate and its private key")
	case key != nil && cert == nil:
		d.errorf(m.keys["key_file"], join(path, "key_file"), "needs cert_file too: a client certificate is a certificate and its private key")
	case cert != nil:
		t.CertFile, t.CertPEM = d.readPEM(cert, join(path, "cert_file"))
		t.KeyFile, t.KeyPEM = d.readPEM(key, join(path, "key_file"))
		if t.CertPEM != nil && t.KeyPEM != nil {
			if _, err := tls.X509KeyPair(t.CertPEM, t.KeyPEM); err != nil {
				d.errorf(cert, join(path, "cert_file"), "%s and key_file %s do not make a client certificate: %v", t.CertFile, t.KeyFile, err)
			}
		}
	}
	return t
}

// readPEM reads a file named by a value, relative to the file's folder.
func (d *decoder) readPEM(n *yaml.Node, path string) (string, []byte) {
	p, ok := d.path(n, path)
	if !ok {
		return "", nil
	}
	if p == "" {
		d.errorf(n, path, "must not be empty; give the path of a PEM file")
		return "", nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		d.errorf(n, path, "read %s: %v", p, unwrapPathError(err))
		return p, nil
	}
	return p, b
}

// security reads the top-level socket_group, listen_public, api_token and
// network settings.
func (d *decoder) security(m mapping, c *Config) {
	if v := m.get("socket_group"); v != nil {
		if s, ok := d.str(v, "socket_group"); ok {
			if strings.TrimSpace(s) == "" {
				d.errorf(v, "socket_group", "must not be empty; name the group whose members may use the socket, or remove it")
			} else {
				c.SocketGroup = s
			}
		}
	}
	if v := m.get("api_token"); v != nil {
		c.APIToken, _ = d.apiToken(v, "api_token")
	}
	if v := m.get("listen_public"); v != nil {
		c.ListenPublic, _ = d.bool(v, "listen_public")
		if c.ListenPublic && m.get("api_token") == nil {
			d.errorf(v, "listen_public", "true needs api_token, the bearer token every request on the TCP listener must carry, such as api_token: ${SIDEHOOK_API_TOKEN}")
		}
	}
	if v := m.get("listen"); v != nil && c.Listen != "" && !c.ListenPublic && !IsLoopback(c.Listen) {
		d.errorf(v, "listen", "%q is not a loopback address (127.0.0.1, ::1 or localhost); to serve other hosts set listen_public: true and api_token", v.Value)
	}
	if v := m.get("network"); v != nil {
		c.Network = d.network(v, "network")
	}
}

// IsLoopback reports whether the host of a host:port address is a
// loopback address or localhost.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
