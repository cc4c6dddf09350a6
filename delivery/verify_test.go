package delivery_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/delivery"
)

// vectors are the official Standard Webhooks test vectors.
var vectors = []struct{ secret, id, ts, body, want string }{
	{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", `{"test": 2432232314}`,
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
	{"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", `{"email":"test@example.com","username":"test_user"}`,
		"v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="},
}

func mustSecret(t testing.TB, s string) config.Secret {
	t.Helper()
	sec, err := delivery.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return sec
}

func unixTime(t testing.TB, ts string) time.Time {
	t.Helper()
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(n, 0)
}

func TestVerify_StandardWebhooksVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.id, func(t *testing.T) {
			sec := mustSecret(t, v.secret)
			if got := delivery.Sign([]config.Secret{sec}, unixTime(t, v.ts), v.id, v.ts, []byte(v.body)); got != v.want {
				t.Errorf("Sign = %q, want %q", got, v.want)
			}
			i, err := delivery.Verify([]config.Secret{sec}, v.id, v.ts, v.want, []byte(v.body))
			if err != nil || i != 0 {
				t.Errorf("Verify(the vector's signature) = %d, %v; want 0, nil", i, err)
			}
			// Among other versions and signatures, in any position.
			header := "v1a,xxx v2,AAAA " + vectors[0].want + " " + vectors[1].want
			if i, err := delivery.Verify([]config.Secret{sec}, v.id, v.ts, header, []byte(v.body)); err != nil || i != 0 {
				t.Errorf("Verify(%q) = %d, %v; want 0, nil", header, i, err)
			}
		})
	}
}

func TestVerify_TamperedFails(t *testing.T) {
	v := vectors[0]
	sec := []config.Secret{mustSecret(t, v.secret)}
	other := mustSecret(t, vectors[1].secret)
	tests := []struct {
		name          string
		secrets       []config.Secret
		id, ts, body  string
		signatureHead string
	}{
		{"body one byte changed", sec, v.id, v.ts, `{"test": 2432232315}`, v.want},
		{"body with a trailing newline", sec, v.id, v.ts, v.body + "\n", v.want},
		{"body re-encoded", sec, v.id, v.ts, `{"test":2432232314}`, v.want},
		{"other id", sec, "msg_p5jXN8AQM9LWM0D4loKWxJeK", v.ts, v.body, v.want},
		{"other timestamp", sec, v.id, "1614265331", v.body, v.want},
		{"other secret", []config.Secret{other}, v.id, v.ts, v.body, v.want},
		{"signature one bit off", sec, v.id, v.ts, v.body, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, err := delivery.Verify(tt.secrets, tt.id, tt.ts, tt.signatureHead, []byte(tt.body))
			if !errors.Is(err, delivery.ErrNoMatch) || i != -1 {
				t.Errorf("Verify = %d, %v; want -1 and ErrNoMatch", i, err)
			}
		})
	}
}

func TestVerify_Rotation(t *testing.T) {
	a := config.Secret{Key: []byte("rotation-key-a-0123456789abcdef")}
	b := config.Secret{Key: []byte("rotation-key-b-0123456789abcdef")}
	c := config.Secret{Key: []byte("unrelated-key-c-0123456789abcde")}
	now := time.Unix(1700000000, 0)
	id, ts, body := "dlv_rot", "1700000000", []byte(`{"n":1}`)
	both := delivery.Sign([]config.Secret{a, b}, now, id, ts, body)
	onlyA := delivery.Sign([]config.Secret{a}, now, id, ts, body)
	onlyB := delivery.Sign([]config.Secret{b}, now, id, ts, body)
	if n := len(strings.Fields(both)); n != 2 {
		t.Fatalf("Sign with two secrets = %q, want two signatures", both)
	}
	tests := []struct {
		name    string
		header  string
		secrets []config.Secret
		want    int
	}{
		{"two signatures, receiver has the old secret", both, []config.Secret{a}, 0},
		{"two signatures, receiver has the new secret", both, []config.Secret{b}, 0},
		{"two signatures, receiver has both", both, []config.Secret{b, a}, 0},
		{"one signature, second of the receiver's secrets", onlyA, []config.Secret{c, a}, 1},
		{"one signature, first of the receiver's secrets", onlyB, []config.Secret{b, c}, 0},
		{"signatures in the other order", onlyB + " " + onlyA, []config.Secret{c, a}, 1},
		{"no secret of the receiver's", both, []config.Secret{c}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := delivery.Verify(tt.secrets, id, ts, tt.header, body)
			if got != tt.want || (tt.want >= 0) != (err == nil) {
				t.Errorf("Verify = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestVerify_ExpiredSecretNotTried(t *testing.T) {
	old := config.Secret{Key: []byte("old-key"), NotAfter: time.Unix(1700000000, 0)}
	id, body := "dlv_exp", []byte("{}")
	before, after := "1699999999", "1700000001"
	sigBefore := delivery.Sign([]config.Secret{{Key: old.Key}}, unixTime(t, before), id, before, body)
	sigAfter := delivery.Sign([]config.Secret{{Key: old.Key}}, unixTime(t, after), id, after, body)
	if i, err := delivery.Verify([]config.Secret{old}, id, before, sigBefore, body); err != nil || i != 0 {
		t.Errorf("signed before not_after: Verify = %d, %v; want 0, nil", i, err)
	}
	_, err := delivery.Verify([]config.Secret{old}, id, after, sigAfter, body)
	if !errors.Is(err, delivery.ErrNoMatch) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("signed after not_after: Verify error = %v, want ErrNoMatch saying the secret expired", err)
	}
}

func TestVerify_GarbageHeaders(t *testing.T) {
	v := vectors[0]
	sec := []config.Secret{mustSecret(t, v.secret)}
	tests := []struct {
		name          string
		secrets       []config.Secret
		id, ts, sig   string
		wantErrSubstr string
	}{
		{"no id", sec, "", v.ts, v.want, "missing header webhook-id"},
		{"blank id", sec, "  ", v.ts, v.want, "missing header webhook-id"},
		{"nothing", sec, "", "", "", "missing header webhook-id, webhook-timestamp, webhook-signature"},
		{"no timestamp", sec, v.id, "", v.want, "missing header webhook-timestamp"},
		{"no signature", sec, v.id, v.ts, "", "missing header webhook-signature"},
		{"timestamp in milliseconds with a dot", sec, v.id, "1614265330.123", v.want, "not Unix seconds"},
		{"timestamp as a date", sec, v.id, "2021-02-25T15:02:10Z", v.want, "not Unix seconds"},
		{"signature without version", sec, v.id, v.ts, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "no v1 signature"},
		{"only other versions", sec, v.id, v.ts, "v1a,abc v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "no v1 signature"},
		{"v1 with nothing", sec, v.id, v.ts, "v1,", "no valid v1 signature"},
		{"v1 not base64", sec, v.id, v.ts, "v1,!!not*base64!!", "no valid v1 signature"},
		{"v1 too short", sec, v.id, v.ts, "v1,AAAA", "no valid v1 signature"},
		{"v1 url-safe base64", sec, v.id, v.ts, "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=", "no valid v1 signature"},
		{"comma-separated list", sec, v.id, v.ts, v.want + "," + v.want, "no valid v1 signature"},
		{"no secrets", nil, v.id, v.ts, v.want, "no secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, err := delivery.Verify(tt.secrets, tt.id, tt.ts, tt.sig, []byte(v.body))
			if err == nil || i != -1 {
				t.Fatalf("Verify = %d, %v; want -1 and an error", i, err)
			}
			if !strings.Contains(err.Error(), tt.wantErrSubstr) {
				t.Errorf("error %q does not say %q", err, tt.wantErrSubstr)
			}
		})
	}
	// Extra spaces around and between signatures are tolerated.
	if i, err := delivery.Verify(sec, v.id, v.ts, "  v2,x   "+v.want+"  ", []byte(v.body)); err != nil || i != 0 {
		t.Errorf("signature header with extra spaces: Verify = %d, %v; want 0, nil", i, err)
	}
}

func TestParseSecret(t *testing.T) {
	want, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
	} {
		sec, err := delivery.ParseSecret(s)
		if err != nil {
			t.Errorf("ParseSecret(%q): %v", s, err)
			continue
		}
		if !bytes.Equal(sec.Key, want) || !sec.NotAfter.IsZero() {
			t.Errorf("ParseSecret(%q) = %x (not after %v), want %x", s, sec.Key, sec.NotAfter, want)
		}
	}
	for _, s := range []string{"", "whsec_", "   ", "whsec_not base64!", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w"} {
		_, err := delivery.ParseSecret(s)
		if err == nil {
			t.Errorf("ParseSecret(%q) succeeded, want an error", s)
			continue
		}
		if b := strings.TrimPrefix(strings.TrimSpace(s), "whsec_"); len(b) > 3 && strings.Contains(err.Error(), b) {
			t.Errorf("ParseSecret(%q) error %q repeats the secret", s, err)
		}
	}
}

func TestCheckTimestamp(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name      string
		ts        string
		tolerance time.Duration
		wantErr   string // "" for no error
	}{
		{"now", "1700000000", 5 * time.Minute, ""},
		{"at the edge in the past", "1699999700", 5 * time.Minute, ""},
		{"at the edge in the future", "1700000300", 5 * time.Minute, ""},
		{"too old", "1699999000", 5 * time.Minute, "is too old: 16m40s before now, 11m40s beyond the 5m0s tolerance"},
		{"too new", "1700000301", 5 * time.Minute, "is too new: 5m1s after now, 1s beyond the 5m0s tolerance"},
		{"years old, check off", "1614265330", 0, ""},
		{"garbage, check off", "soon", 0, "not Unix seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := delivery.CheckTimestamp(tt.ts, now, tt.tolerance)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckTimestamp = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckTimestamp = %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
	var te *delivery.TimestampError
	if err := delivery.CheckTimestamp("1699999000", now, time.Minute); !errors.As(err, &te) || te.Skew != 1000*time.Second {
		t.Errorf("CheckTimestamp error = %#v, want a *TimestampError with Skew 16m40s", err)
	}
}

// FuzzVerify checks that no header, however malformed, makes Verify panic
// or accept a signature that Sign would not have made.
func FuzzVerify(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.id, v.ts, v.want, v.body)
	}
	f.Add("", "", "", "")
	f.Add("id", "-1", "v1,, v1 ,v1", "x")
	sec := config.Secret{Key: []byte("fuzz-key")}
	f.Fuzz(func(t *testing.T, id, ts, sig, body string) {
		i, err := delivery.Verify([]config.Secret{sec}, id, ts, sig, []byte(body))
		if err != nil {
			return
		}
		if i != 0 {
			t.Fatalf("Verify = %d, nil with one secret", i)
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
		want := delivery.Sign([]config.Secret{sec}, time.Unix(n, 0), id, ts, []byte(body))
		if !strings.Contains(" "+sig+" ", " "+want+" ") && !strings.Contains(sig, strings.TrimPrefix(want, "v1,")) {
			t.Fatalf("Verify accepted %q for id %q ts %q body %q; Sign gives %q", sig, id, ts, body, want)
		}
	})
}
