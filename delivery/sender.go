package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// httpSender posts to a webhook's URL over a shared keep-alive transport.
type httpSender struct {
	client    *http.Client
	userAgent string
}

func newHTTPSender(userAgent string) *httpSender {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &httpSender{
		client: &http.Client{
			Transport: tr,
			// Redirects are not followed: a 3xx is a failed attempt whose
			// Location shows in history.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		userAgent: userAgent,
	}
}

func (s *httpSender) close() { s.client.CloseIdleConnections() }

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

	resp, err := s.client.Do(req)
	if err != nil {
		oc.attempt.DurationMS = ms(time.Since(at))
		oc.attempt.Error = describeErr(err, wh.Timeout)
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
	oc.ok = wh.IsSuccess(resp.StatusCode)
	switch {
	case rerr != nil && !oc.ok:
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
	return err.Error()
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
	start := time.Now()
	resp, err := e.http.client.Do(req)
	res.LatencyMS = ms(time.Since(start))
	if err != nil {
		res.Error = describeErr(err, wh.Timeout)
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
