package cli_test

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/delivery"
)

// The first official Standard Webhooks test vector.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = "1614265330"
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	// A second secret, the second vector's, that did not sign it.
	otherSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

// saved writes a request's headers (as curl -D does: a status line, CRLF)
// and body to files and returns their paths.
func saved(t *testing.T, id, ts, sig, body string) (headers, bodyFile string) {
	t.Helper()
	dir := t.TempDir()
	headers, bodyFile = filepath.Join(dir, "headers.txt"), filepath.Join(dir, "body.json")
	lines := []string{"POST /hook?entityType=Webhook&entityId=crm&eventType=Lead_Post_Create HTTP/1.1", "Host: 127.0.0.1:9000", "Content-Type: application/json"}
	for _, h := range [][2]string{{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", sig}} {
		if h[1] != "" {
			lines = append(lines, h[0]+": "+h[1])
		}
	}
	writeFile(t, headers, strings.Join(lines, "\r\n")+"\r\n\r\n")
	writeFile(t, bodyFile, body)
	return headers, bodyFile
}

// fresh signs body now with the given whsec_ secrets.
func fresh(t *testing.T, at time.Time, id, body string, secrets ...string) (ts, sig string) {
	t.Helper()
	var secs []config.Secret
	for _, s := range secrets {
		sec, err := delivery.ParseSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		secs = append(secs, sec)
	}
	ts = strconv.FormatInt(at.Unix(), 10)
	return ts, delivery.Sign(secs, at, id, ts, []byte(body))
}

func TestVerify_OfficialVector(t *testing.T) {
	h, b := saved(t, vecID, vecTS, vecSig, vecBody)
	r := sidehook(t, nil, "", "verify", "--secret", vecSecret, "--headers", h, "--body", b, "--tolerance", "0")
	if r.exitCode() != 0 {
		t.Fatalf("exit %d, err %v, stdout:\n%s", r.exitCode(), r.err, r.stdout)
	}
	wantOutput(t, "stdout", r.stdout, "ok: signature v1 matches secret #1 (webhook-id "+vecID+", timestamp "+vecTS+")\n")

	// With the default tolerance the 2021 timestamp is too old, and the
	// output still says the signature is right.
	r = sidehook(t, nil, "", "verify", "--secret", vecSecret, "--headers", h, "--body", b)
	if r.exitCode() != 1 {
		t.Errorf("default tolerance: exit %d, want 1", r.exitCode())
	}
	wantContains(t, "stdout", r.stdout, "fail: webhook-timestamp 1614265330 (2021-02-25T15:02:10Z) is too old: ",
		"beyond the 5m0s tolerance", "--tolerance 0 skips this check", "the signature itself matches secret #1")
}

func TestVerify_FreshRequest(t *testing.T) {
	secret := strings.TrimSpace(sidehook(t, nil, "", "secret").stdout)
	body := `{"ProspectID": "4711", "amount": 12.50}`
	ts, sig := fresh(t, time.Now(), "dlv_fresh", body, secret)
	h, b := saved(t, "dlv_fresh", ts, sig, body)

	r := sidehook(t, nil, "", "verify", "--secret", secret, "--headers", h, "--body", b)
	if r.exitCode() != 0 {
		t.Fatalf("exit %d, err %v, stdout:\n%s", r.exitCode(), r.err, r.stdout)
	}
	wantOutput(t, "stdout", r.stdout, "ok: signature v1 matches secret #1 (webhook-id dlv_fresh, timestamp "+ts+")\n")

	// Ten minutes ahead: too new by 10m, 5m beyond the tolerance (a
	// second less when the clock moved on past a half second since).
	ts, sig = fresh(t, time.Now().Add(10*time.Minute), "dlv_future", body, secret)
	h, b = saved(t, "dlv_future", ts, sig, body)
	r = sidehook(t, nil, "", "verify", "--secret", secret, "--headers", h, "--body", b)
	if r.exitCode() != 1 {
		t.Errorf("future timestamp: exit %d, want 1", r.exitCode())
	}
	tooNew := regexp.MustCompile(`^fail: webhook-timestamp \d+ \(\S+\) is too new: (10m0s|9m59s) after now, (5m0s|4m59s) beyond the 5m0s tolerance \(is the sender's clock right\?\)\n  the signature itself matches secret #1\n$`)
	if !tooNew.MatchString(r.stdout) {
		t.Errorf("future timestamp: stdout\n%s\ndoes not match %s", r.stdout, tooNew)
	}
	// A wider tolerance accepts it.
	r = sidehook(t, nil, "", "verify", "--secret", secret, "--headers", h, "--body", b, "--tolerance", "15m")
	if r.exitCode() != 0 {
		t.Errorf("--tolerance 15m: exit %d, stdout %s", r.exitCode(), r.stdout)
	}
}

func TestVerify_Fails(t *testing.T) {
	tests := []struct {
		name        string
		secrets     []string
		id, ts, sig string
		body        string
		want        []string
	}{
		{
			name: "tampered body", secrets: []string{vecSecret},
			id: vecID, ts: vecTS, sig: vecSig, body: `{"test": 2432232315}`,
			want: []string{
				"fail: no signature matched: the v1 signature was not made with the secret over this webhook-id, webhook-timestamp and body\n",
				"  received webhook-signature: " + vecSig + "\n",
				// HMAC of the tampered body with secret #1.
				"  expected with secret #1:    v1,",
				"byte for byte",
			},
		},
		{
			name: "body saved with a final newline", secrets: []string{vecSecret},
			id: vecID, ts: vecTS, sig: vecSig, body: vecBody + "\r\n",
			want: []string{"fail: no signature matched", "the body without its final newline matches secret #1"},
		},
		{
			name: "wrong secret", secrets: []string{otherSecret},
			id: vecID, ts: vecTS, sig: vecSig, body: vecBody,
			want: []string{"fail: no signature matched"},
		},
		{
			name: "no signature header", secrets: []string{vecSecret},
			id: vecID, ts: vecTS, body: vecBody,
			want: []string{"fail: missing header webhook-signature (the headers file has: Content-Type, Host, Webhook-Id, Webhook-Timestamp)\n"},
		},
		{
			name: "no id and no timestamp", secrets: []string{vecSecret},
			sig: vecSig, body: vecBody,
			want: []string{"fail: missing header webhook-id, webhook-timestamp ("},
		},
		{
			name: "timestamp not a number", secrets: []string{vecSecret},
			id: vecID, ts: "Thu, 25 Feb 2021 15:02:10 GMT", sig: vecSig, body: vecBody,
			want: []string{"fail: webhook-timestamp \"Thu, 25 Feb 2021 15:02:10 GMT\" is not Unix seconds"},
		},
		{
			name: "only a v2 signature", secrets: []string{vecSecret},
			id: vecID, ts: vecTS, sig: "v2,abcd", body: vecBody,
			want: []string{"fail: webhook-signature holds no v1 signature"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, b := saved(t, tt.id, tt.ts, tt.sig, tt.body)
			args := []string{"verify", "--headers", h, "--body", b, "--tolerance", "0"}
			for _, s := range tt.secrets {
				args = append(args, "--secret", s)
			}
			r := sidehook(t, nil, "", args...)
			if r.exitCode() != 1 || r.err == nil {
				t.Errorf("exit %d (err %v), want 1", r.exitCode(), r.err)
			}
			if strings.HasPrefix(r.stdout, "ok") {
				t.Errorf("stdout says ok:\n%s", r.stdout)
			}
			wantContains(t, "stdout", r.stdout, tt.want...)
		})
	}

	// The expected signature printed is the one for the body received.
	h, b := saved(t, vecID, vecTS, vecSig, `{"test": 2432232315}`)
	r := sidehook(t, nil, "", "verify", "--secret", vecSecret, "--headers", h, "--body", b, "--tolerance", "0")
	_, want := fresh(t, time.Unix(1614265330, 0), vecID, `{"test": 2432232315}`, vecSecret)
	wantContains(t, "stdout", r.stdout, "expected with secret #1:    "+want+"\n")
}

func TestVerify_Rotation(t *testing.T) {
	body := `{"n": 1}`
	now := time.Now()
	tests := []struct {
		name     string
		signedBy []string // secrets in webhook-signature
		given    []string // --secret flags
		want     string
	}{
		{"new secret given second", []string{vecSecret}, []string{otherSecret, vecSecret}, "matches secret #2"},
		{"header with two signatures, old secret", []string{otherSecret, vecSecret}, []string{otherSecret}, "matches secret #1"},
		{"header with two signatures, new secret", []string{otherSecret, vecSecret}, []string{vecSecret}, "matches secret #1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, sig := fresh(t, now, "dlv_rot", body, tt.signedBy...)
			if got := len(strings.Fields(sig)); got != len(tt.signedBy) {
				t.Fatalf("signature header %q has %d signatures, want %d", sig, got, len(tt.signedBy))
			}
			h, b := saved(t, "dlv_rot", ts, sig, body)
			args := []string{"verify", "--headers", h, "--body", b}
			for _, s := range tt.given {
				args = append(args, "--secret", s)
			}
			r := sidehook(t, nil, "", args...)
			if r.exitCode() != 0 {
				t.Fatalf("exit %d, err %v, stdout:\n%s", r.exitCode(), r.err, r.stdout)
			}
			wantContains(t, "stdout", r.stdout, "ok: signature v1 "+tt.want+" (webhook-id dlv_rot, timestamp "+ts+")")
		})
	}
}

func TestVerify_HeaderFileFormats(t *testing.T) {
	ok := "ok: signature v1 matches secret #1 (webhook-id " + vecID + ", timestamp " + vecTS + ")\n"
	tests := []struct {
		name, headers string
	}{
		{"plain lines", "webhook-id: " + vecID + "\nwebhook-timestamp: " + vecTS + "\nwebhook-signature: " + vecSig + "\n"},
		{"no final newline, odd case and spacing", "Webhook-ID:" + vecID + "\nWEBHOOK-TIMESTAMP:   " + vecTS + "  \nwebhook-signature: " + vecSig},
		{"request line, CRLF, body after a blank line",
			"POST /hook HTTP/1.1\r\nHost: x\r\nwebhook-id: " + vecID + "\r\nwebhook-timestamp: " + vecTS + "\r\nwebhook-signature: " + vecSig + "\r\n\r\n" + vecBody},
		{"curl -D blocks: 100 Continue first",
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nwebhook-id: " + vecID + "\r\nwebhook-timestamp: " + vecTS + "\r\nwebhook-signature: " + vecSig + "\r\n\r\n"},
		{"HTTP/2 pseudo-headers", ":method: POST\n:path: /hook\nwebhook-id: " + vecID + "\nwebhook-timestamp: " + vecTS + "\nwebhook-signature: " + vecSig + "\n"},
		{"folded signature line and a rotated-out signature",
			"webhook-id: " + vecID + "\nwebhook-timestamp: " + vecTS + "\nwebhook-signature: v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n  " + vecSig + "\n"},
		{"signature header twice",
			"webhook-id: " + vecID + "\nwebhook-timestamp: " + vecTS + "\nwebhook-signature: v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nwebhook-signature: " + vecSig + "\n"},
		{"byte order mark and leading blank lines", "\ufeff\n\nwebhook-id: " + vecID + "\nwebhook-timestamp: " + vecTS + "\nwebhook-signature: " + vecSig + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h, b := filepath.Join(dir, "h"), filepath.Join(dir, "b")
			writeFile(t, h, tt.headers)
			writeFile(t, b, vecBody)
			r := sidehook(t, nil, "", "verify", "--secret", vecSecret, "--headers", h, "--body", b, "--tolerance", "0")
			if r.err != nil {
				t.Fatalf("err %v, stdout:\n%s", r.err, r.stdout)
			}
			wantOutput(t, "stdout", r.stdout, ok)
		})
	}

	for _, tt := range []struct{ name, headers, want string }{
		{"a body as headers", vecBody, `line 1: "{\"test\": 2432232314}" is not a header line (Name: value)`},
		{"empty", "\r\n\r\n", "no header lines"},
		{"continuation first", "  folded\nwebhook-id: x\n", "line 1:"},
		{"space in a name", "webhook id: x\n", "line 1:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h, b := filepath.Join(dir, "h"), filepath.Join(dir, "b")
			writeFile(t, h, tt.headers)
			writeFile(t, b, vecBody)
			r := sidehook(t, nil, "", "verify", "--secret", vecSecret, "--headers", h, "--body", b)
			if r.exitCode() != 1 || r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("exit %d, err %v; want exit 1 and an error saying %q", r.exitCode(), r.err, tt.want)
			}
			if !strings.Contains(r.err.Error(), "--headers "+h) {
				t.Errorf("error %q does not name the file", r.err)
			}
		})
	}
}

func TestVerify_Stdin(t *testing.T) {
	h, b := saved(t, vecID, vecTS, vecSig, vecBody)
	headers := "webhook-id: " + vecID + "\nwebhook-timestamp: " + vecTS + "\nwebhook-signature: " + vecSig + "\n"
	for _, tt := range []struct {
		name, stdin string
		args        []string
	}{
		{"body", vecBody, []string{"--headers", h, "--body", "-"}},
		{"headers", headers, []string{"--headers", "-", "--body", b}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify", "--secret", vecSecret, "--tolerance", "0"}, tt.args...)
			r := sidehook(t, nil, tt.stdin, args...)
			if r.err != nil || !strings.HasPrefix(r.stdout, "ok: ") {
				t.Errorf("err %v, stdout %q; want ok", r.err, r.stdout)
			}
		})
	}
}

func TestVerify_SecretFromFile(t *testing.T) {
	h, b := saved(t, vecID, vecTS, vecSig, vecBody)
	sf := filepath.Join(t.TempDir(), "secret")
	writeFile(t, sf, vecSecret+"\n")
	r := sidehook(t, nil, "", "verify", "--secret", "@"+sf, "--headers", h, "--body", b, "--tolerance", "0")
	if r.err != nil || !strings.HasPrefix(r.stdout, "ok: ") {
		t.Errorf("--secret @FILE: err %v, stdout %q; want ok", r.err, r.stdout)
	}
}

func TestVerify_UsageErrors(t *testing.T) {
	h, b := saved(t, vecID, vecTS, vecSig, vecBody)
	tests := []struct {
		name string
		args []string
		want string // in the error; "" for a flag error (exit 2, usage on stderr)
	}{
		{"no secret", []string{"--headers", h, "--body", b}, "--secret is required"},
		{"no headers", []string{"--secret", vecSecret, "--body", b}, "--headers is required"},
		{"no body", []string{"--secret", vecSecret, "--headers", h}, "--body is required"},
		{"both stdin", []string{"--secret", vecSecret, "--headers", "-", "--body", "-"}, "only one of --headers and --body can be -"},
		{"negative tolerance", []string{"--secret", vecSecret, "--headers", h, "--body", b, "--tolerance", "-1s"}, "--tolerance must not be negative"},
		{"bad secret", []string{"--secret", vecSecret, "--secret", "whsec_s3cr3t!!", "--headers", h, "--body", b}, "--secret #2: the part after whsec_ is not standard base64"},
		{"missing headers file", []string{"--secret", vecSecret, "--headers", h + ".gone", "--body", b}, "read --headers file"},
		{"missing body file", []string{"--secret", vecSecret, "--headers", h, "--body", b + ".gone"}, "read --body file"},
		{"missing secret file", []string{"--secret", "@" + b + ".gone", "--headers", h, "--body", b}, "read secret file"},
		{"positional argument", []string{"--secret", vecSecret, "--headers", h, "--body", b, "extra"}, `unexpected argument "extra"`},
		{"bad tolerance", []string{"--secret", vecSecret, "--headers", h, "--body", b, "--tolerance", "soon"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sidehook(t, nil, "", append([]string{"verify"}, tt.args...)...)
			if strings.HasPrefix(r.stdout, "ok") {
				t.Fatalf("stdout says ok: %s", r.stdout)
			}
			if tt.want == "" {
				if r.exitCode() != 2 {
					t.Errorf("exit %d, want 2", r.exitCode())
				}
				wantContains(t, "stderr", r.stderr, "Usage: sidehook verify")
				return
			}
			if r.exitCode() != 1 || r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("exit %d, err %v; want exit 1 and an error saying %q", r.exitCode(), r.err, tt.want)
			}
			if r.err != nil && strings.Contains(r.err.Error(), "s3cr3t") {
				t.Errorf("error %q repeats the secret", r.err)
			}
		})
	}
}
