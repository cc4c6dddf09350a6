package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/sidehook/sidehook/config"
)

// MaxResponseBody is how much of a response body history keeps.
const MaxResponseBody = 64 << 10

// Message is one attempt's input: the webhook as currently defined and the
// body it gets.
type Message struct {
	Delivery  string
	Webhook   *config.Webhook
	EventType string
	Body      []byte
	// N is the attempt number, counting from 1.
	N      int
	Manual bool
}

// Sender makes one attempt at a delivery. Implementations record what
// they sent and got in the returned outcome and never return early
// because of a slow peer: ctx and the webhook's timeout bound them.
type Sender interface {
	send(ctx context.Context, m *Message) outcome
}

// httpSender posts to a webhook's URL over keep-alive transports: one per
// distinct TLS setting, all dialling through one dialer whose Control hook
// applies the outbound policy (network:) to the resolved address of every
// connection, so a name that resolves somewhere else at connect time (DNS
// rebinding) is still checked.
type httpSender struct {
	userAgent string
	dialer    *net.Dialer
	// policy is the network: block in force (nil: the defaults); SetConfig
	// replaces it and every later connection follows it.
	policy atomic.Pointer[config.Network]

	mu      sync.Mutex
	clients map[string]*http.Client // by config.TLS fingerprint
}

func newHTTPSender(userAgent string, cfg *config.Config) *httpSender {
	s := &httpSender{userAgent: userAgent, clients: map[string]*http.Client{}}
	s.dialer = &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   s.control,
	}
	s.setConfig(cfg)
	return s
}

// setConfig makes cfg's outbound policy the one in force and drops the
// transports of TLS settings no webhook uses any more.
func (s *httpSender) setConfig(cfg *config.Config) {
	s.policy.Store(cfg.Network)
	used := map[string]bool{"": true}
	for _, wh := range cfg.Webhooks {
		used[wh.TLS.Fingerprint()] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, c := range s.clients {
		if !used[key] {
			c.CloseIdleConnections()
			delete(s.clients, key)
		}
	}
}

// clientFor returns the client for a webhook's TLS settings, made on
// first use.
func (s *httpSender) clientFor(wh *config.Webhook) (*http.Client, error) {
	key := wh.TLS.Fingerprint()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[key]; c != nil {
		return c, nil
	}
	tc, err := wh.TLS.ClientConfig()
	if err != nil {
		return nil, err
	}
	c := &http.Client{
		Transport: &http.Transport{
			Proxy:                 s.proxy,
			DialContext:           s.dialer.DialContext,
			TLSClientConfig:       tc,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		// Redirects are not followed: a 3xx is a failed attempt whose
		// Location shows in history.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.clients[key] = c
	return c, nil
}

func (s *httpSender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		c.CloseIdleConnections()
	}
}

// deniedError is a connection the outbound policy refused.
type deniedError struct {
	addr   netip.Addr
	prefix netip.Prefix
}

func (e *deniedError) Error() string {
	return fmt.Sprintf("destination %s is denied by network.deny (%s)", e.addr, e.prefix)
}

// check applies the policy in force to one address.
func (s *httpSender) check(addr netip.Addr) error {
	addr = addr.Unmap()
	if p, denied := s.policy.Load().Denies(addr); denied {
		return &deniedError{addr: addr, prefix: p}
	}
	return nil
}

// control runs after the socket is made and before it connects, with the
// resolved address: a refused destination gets no packet at all.
func (s *httpSender) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound policy: cannot read address %q: %w", address, err)
	}
	return s.check(ap.Addr())
}

// proxy is http.ProxyFromEnvironment. Through a proxy the dialer only sees
// the proxy's address, so a destination written as an IP address is
// checked here too; a host name is resolved, and checked, by the proxy.
func (s *httpSender) proxy(r *http.Request) (*url.URL, error) {
	p, err := http.ProxyFromEnvironment(r)
	if p == nil || err != nil {
		return p, err
	}
	if a, perr := netip.ParseAddr(r.URL.Hostname()); perr == nil {
		if err := s.check(a); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// targetURL appends entityType, entityId and eventType to the webhook's
// URL, keeping its own query as it is.
func targetURL(raw, webhook, eventType string) string {
	extra := "entityType=Webhook&entityId=" + url.QueryEscape(webhook) + "&eventType=" + url.QueryEscape(eventType)
	frag := ""
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw, frag = raw[:i], raw[i:]
	}
	switch {
	case !strings.Contains(raw, "?"):
		raw += "?" + extra
	case strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "&"):
		raw += extra
	default:
		raw += "&" + extra
	}
	return raw + frag
}

func (s *httpSender) send(ctx context.Context, m *Message) outcome {
	wh := m.Webhook
	at := time.Now()
	u := targetURL(wh.URL, wh.ID, m.EventType)
	rec := &Request{URL: u, Headers: map[string]string{}, Body: string(m.Body)}
	oc := outcome{attempt: Attempt{At: at, Manual: m.Manual, Request: rec}}

	ctx, cancel := context.WithTimeout(ctx, wh.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(m.Body))
	if err != nil {
		oc.attempt.Error = fmt.Sprintf("build request: %v", err)
		oc.permanent = true
		return oc
	}
	h := req.Header
	h.Set("Content-Type", wh.ContentType)
	h.Set("User-Agent", s.userAgent)
	for _, hd := range wh.Headers {
		h.Set(hd.Name, hd.Value)
	}
	if len(wh.Secrets) > 0 {
		id, ts := m.Delivery, strconv.FormatInt(at.Unix(), 10)
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", Sign(wh.Secrets, at, id, ts, m.Body))
	}
	for name := range h {
		rec.Headers[name] = h.Get(name)
	}
	for _, hd := range wh.Headers {
		if hd.Secret || strings.EqualFold(hd.Name, "Authorization") {
			rec.Headers[http.CanonicalHeaderKey(hd.Name)] = "[redacted]"
		}
	}

	client, err := s.clientFor(wh)
	if err != nil {
		oc.attempt.Error = fmt.Sprintf("tls settings: %v", err)
		return oc
	}
	resp, err := client.Do(req)
	if err != nil {
		oc.attempt.DurationMS = ms(time.Since(at))
		oc.attempt.Error = describeErr(err, wh.Timeout)
		if msg := describeTLS(err, wh.TLS); msg != "" {
			oc.attempt.Error = msg
		}
		return oc
	}
	body, truncated, rerr := readLimited(resp.Body, MaxResponseBody)
	resp.Body.Close()
	oc.attempt.DurationMS = ms(time.Since(at))
	r := &Response{Status: resp.StatusCode, Headers: map[string]string{}, Body: string(body), Truncated: truncated}
	for name, vals := range resp.Header {
		r.Headers[name] = strings.Join(vals, ", ")
	}
	oc.attempt.Response = r
	// A body cut short (reset, timeout) fails the attempt even after a
	// 2xx status: the receiver may not have finished with the request.
	oc.ok = wh.IsSuccess(resp.StatusCode) && rerr == nil
	switch {
	case rerr != nil:
		oc.attempt.Error = fmt.Sprintf("read response: %s", describeErr(rerr, wh.Timeout))
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		oc.attempt.Error = fmt.Sprintf("redirect not followed (Location: %s)", resp.Header.Get("Location"))
	case !oc.ok:
		oc.attempt.Error = fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		oc.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return oc
}

// readLimited reads up to limit bytes and reports whether there was more.
func readLimited(r io.Reader, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(b)) > limit {
		return trimPartialRune(b[:limit]), true, nil
	}
	return b, false, err
}

// Sign returns the Standard Webhooks signature header value: one
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" per secret still valid
// at t, separated by spaces.
func Sign(secrets []config.Secret, t time.Time, id, ts string, body []byte) string {
	var sigs []string
	for _, sec := range secrets {
		if !sec.NotAfter.IsZero() && t.After(sec.NotAfter) {
			continue
		}
		mac := hmac.New(sha256.New, sec.Key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// describeErr turns a transport error into a sentence for history.
func describeErr(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("timeout: no complete answer within %s (%v)", timeout, err)
	case errors.Is(err, context.Canceled):
		return "canceled: sidehook was stopping"
	}
	var denied *deniedError
	if errors.As(err, &denied) {
		return denied.Error()
	}
	return err.Error()
}

// describeTLS says what went wrong in a TLS handshake, and what to do
// about it, or returns "" when err is not a TLS problem.
func describeTLS(err error, t *config.TLS) string {
	var (
		invalid   x509.CertificateInvalidError
		host      x509.HostnameError
		authority x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Sprintf("TLS: the receiver's certificate has expired or is not valid yet (%v)", invalid)
	case errors.As(err, &host):
		return fmt.Sprintf("TLS: the receiver's certificate is for another host (%v)", host)
	case errors.As(err, &authority):
		hint := "self-signed or from a private CA? set tls.ca_file to the CA's certificate"
		if t != nil && t.CAFile != "" {
			hint = "not signed by the CA in tls.ca_file " + t.CAFile
		}
		return fmt.Sprintf("TLS: the receiver's certificate is signed by an unknown authority (%s) (%v)", hint, authority)
	case errors.As(err, &invalid):
		return fmt.Sprintf("TLS: the receiver's certificate is not valid (%v)", invalid)
	}
	msg := err.Error()
	for _, alert := range []string{"tls: certificate required", "tls: bad certificate", "tls: unknown certificate authority"} {
		if !strings.Contains(msg, "remote error: "+alert) {
			continue
		}
		if t == nil || t.CertFile == "" {
			return fmt.Sprintf("TLS: the receiver asks for a client certificate; set tls.cert_file and tls.key_file (remote error: %s)", alert)
		}
		return fmt.Sprintf("TLS: the receiver refused the client certificate in tls.cert_file %s (remote error: %s)", t.CertFile, alert)
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// PingResult is the outcome of a handshake with a webhook's URL.
type PingResult struct {
	Webhook   string  `json:"webhook"`
	URL       string  `json:"url"`
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error"`
}

// Ping checks a webhook's URL with a HEAD request carrying its headers, as
// LeadSquared's handshake does.
func (e *Engine) Ping(ctx context.Context, wh *config.Webhook) PingResult {
	res := PingResult{Webhook: wh.ID, URL: wh.URL}
	if wh.Type == config.TypeCommand {
		res.Error = "command webhooks have no URL to ping; nothing was run"
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, wh.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, wh.URL, nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	req.Header.Set("User-Agent", e.http.userAgent)
	for _, h := range wh.Headers {
		req.Header.Set(h.Name, h.Value)
	}
	client, err := e.http.clientFor(wh)
	if err != nil {
		res.Error = fmt.Sprintf("tls settings: %v", err)
		return res
	}
	start := time.Now()
	resp, err := client.Do(req)
	res.LatencyMS = ms(time.Since(start))
	if err != nil {
		res.Error = describeErr(err, wh.Timeout)
		if msg := describeTLS(err, wh.TLS); msg != "" {
			res.Error = msg
		}
		return res
	}
	resp.Body.Close()
	res.Status = resp.StatusCode
	return res
}

// trimPartialRune drops a multi-byte UTF-8 character that the limit cut
// in two, so that history keeps a prefix of what was received rather than
// a replacement character that was never sent.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			break
		}
	}
	return b
}
