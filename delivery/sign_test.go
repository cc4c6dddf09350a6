package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

func whsec(t *testing.T, s string) config.Secret {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	return config.Secret{Key: key}
}

func TestSign_StandardWebhooksVectors(t *testing.T) {
	for _, tc := range []struct{ secret, id, ts, body, want string }{
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", `{"test": 2432232314}`,
			"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		{"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", `{"email":"test@example.com","username":"test_user"}`,
			"v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="},
	} {
		ts, _ := strconv.ParseInt(tc.ts, 10, 64)
		got := Sign([]config.Secret{whsec(t, tc.secret)}, time.Unix(ts, 0), tc.id, tc.ts, []byte(tc.body))
		if got != tc.want {
			t.Errorf("Sign(%s) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestSign_ExpiryAndRotation(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a := config.Secret{Key: []byte("key-a")}
	b := config.Secret{Key: []byte("key-b"), NotAfter: now.Add(time.Hour)}
	old := config.Secret{Key: []byte("key-old"), NotAfter: now.Add(-time.Second)}
	one := Sign([]config.Secret{a}, now, "dlv_x", "1700000000", []byte("{}"))
	two := Sign([]config.Secret{a, b}, now, "dlv_x", "1700000000", []byte("{}"))
	if parts := strings.Split(two, " "); len(parts) != 2 || parts[0] != one {
		t.Errorf("two secrets = %q, want two space-separated signatures starting with %q", two, one)
	}
	if got := Sign([]config.Secret{old, a}, now, "dlv_x", "1700000000", []byte("{}")); got != one {
		t.Errorf("with an expired secret = %q, want only the valid one %q", got, one)
	}
}

// verify checks a webhook-signature header the way a receiver does and
// returns how many of its signatures match each key.
func verify(t *testing.T, h http.Header, body string, keys ...[]byte) []int {
	t.Helper()
	id, ts, sig := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sig == "" {
		t.Fatalf("signature headers missing: id %q timestamp %q signature %q", id, ts, sig)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not the current Unix time", ts)
	}
	matches := make([]int, len(keys))
	for _, s := range strings.Split(sig, " ") {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			t.Errorf("signature %q is not v1,<base64>", s)
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Errorf("signature %q: %v", s, err)
			continue
		}
		for i, k := range keys {
			mac := hmac.New(sha256.New, k)
			mac.Write([]byte(id + "." + ts + "." + body))
			if hmac.Equal(got, mac.Sum(nil)) {
				matches[i]++
			}
		}
	}
	return matches
}

func TestSign_DeliveredRequestsVerify(t *testing.T) {
	rc := newReceiver(t, statuses(500, 200))
	key := []byte("0123456789abcdef0123456789abcdef")
	wh := hook("signed", rc.URL, "Lead_Post_Create")
	wh.Secrets = []config.Secret{{Key: key}}
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"sig": "ned", "n": 1.0}`)
	id := acc.Deliveries[0].ID
	got := rc.wait(t, 2)
	for i, r := range got {
		if r.header.Get("webhook-id") != id {
			t.Errorf("request %d: webhook-id %q, want the delivery id %s", i+1, r.header.Get("webhook-id"), id)
		}
		if m := verify(t, r.header, r.body, key); m[0] != 1 {
			t.Errorf("request %d: signature %q does not verify over the body received", i+1, r.header.Get("webhook-signature"))
		}
	}
	d := waitStatus(t, e, id, StatusSuccess)
	if h := d.Attempts[0].Request.Headers; h["Webhook-Id"] != id || h["Webhook-Signature"] == "" {
		t.Errorf("recorded headers = %v, want the signature headers", h)
	}
}

func TestSign_TwoSecretsAndExpiredOne(t *testing.T) {
	rc := newReceiver(t, nil)
	k1, k2, expired := []byte("first-key"), []byte("second-key"), []byte("expired-key")
	wh := hook("rotating", rc.URL, "Lead_Post_Create")
	wh.Secrets = []config.Secret{
		{Key: expired, NotAfter: time.Now().Add(-time.Minute)},
		{Key: k1},
		{Key: k2, NotAfter: time.Now().Add(time.Hour)},
	}
	e := openEngine(t, t.TempDir(), testConfig(wh))

	ingest(t, e, "Lead Creation", "", `{}`)
	r := rc.wait(t, 1)[0]
	sig := r.header.Get("webhook-signature")
	if n := len(strings.Split(sig, " ")); n != 2 {
		t.Errorf("webhook-signature %q has %d signatures, want 2", sig, n)
	}
	m := verify(t, r.header, r.body, k1, k2, expired)
	if m[0] != 1 || m[1] != 1 || m[2] != 0 {
		t.Errorf("matches per key (first, second, expired) = %v, want [1 1 0]", m)
	}
}
