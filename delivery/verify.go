package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/config"
)

// SecretPrefix starts a signing secret in its text form: whsec_ followed
// by the standard base64 of the key.
const SecretPrefix = "whsec_"

// ErrNoMatch is returned by Verify when the signature header holds v1
// signatures but none of them was made with any of the secrets over the
// given id, timestamp and body.
var ErrNoMatch = errors.New("no signature matched")

// ErrMissingHeader is returned by Verify when webhook-id,
// webhook-timestamp or webhook-signature is empty; the message names them.
var ErrMissingHeader = errors.New("missing header")

// ParseSecret decodes a signing secret written as whsec_<base64>, as in
// the config's secret: and secrets: and in the Standard Webhooks libraries
// (which, like this, also take the base64 without its prefix). Surrounding
// white space, such as the newline of a file, is ignored. Errors never
// repeat the value.
func ParseSecret(s string) (config.Secret, error) {
	b64 := strings.TrimPrefix(strings.TrimSpace(s), SecretPrefix)
	if b64 == "" {
		return config.Secret{}, errors.New("secret is empty: want whsec_ followed by a base64 key")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return config.Secret{}, errors.New("the part after whsec_ is not standard base64 (with = padding)")
	}
	return config.Secret{Key: key}, nil
}

// Verify checks a Standard Webhooks signature the way a receiver does:
// id and ts are the webhook-id and webhook-timestamp headers, sigHeader
// the webhook-signature header (space-separated "v1,<base64>" entries;
// other versions are ignored), body the exact bytes received. It returns
// the index in secrets of the first secret that made one of the
// signatures. The comparison takes the same time wherever the signatures
// differ.
//
// A secret whose NotAfter is before the timestamp is not tried, so Verify
// accepts exactly what Sign would have produced at that time. Verify does
// not judge the timestamp's age; CheckTimestamp does.
func Verify(secrets []config.Secret, id, ts, sigHeader string, body []byte) (int, error) {
	var missing []string
	for _, h := range []struct{ name, value string }{
		{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", sigHeader},
	} {
		if strings.TrimSpace(h.value) == "" {
			missing = append(missing, h.name)
		}
	}
	if len(missing) > 0 {
		return -1, fmt.Errorf("%w %s", ErrMissingHeader, strings.Join(missing, ", "))
	}
	unix, err := ParseTimestamp(ts)
	if err != nil {
		return -1, err
	}
	if len(secrets) == 0 {
		return -1, errors.New("no secret to verify with")
	}

	var sigs [][]byte
	var bad []string
	for _, entry := range strings.Fields(sigHeader) {
		version, b64, _ := strings.Cut(entry, ",")
		if version != "v1" {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) != sha256.Size {
			bad = append(bad, fmt.Sprintf("%.60q", entry))
			continue
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		if len(bad) > 0 {
			return -1, fmt.Errorf("webhook-signature holds no valid v1 signature: %s is not v1,<base64 of 32 bytes>", strings.Join(bad, ", "))
		}
		return -1, fmt.Errorf("webhook-signature holds no v1 signature (got %.120q); want v1,<base64>, several separated by spaces", sigHeader)
	}

	at := time.Unix(unix, 0)
	tried := 0
	for i, sec := range secrets {
		if !sec.NotAfter.IsZero() && at.After(sec.NotAfter) {
			continue
		}
		tried++
		want := signatureMAC(sec.Key, id, ts, body)
		matched := false
		for _, sig := range sigs {
			// No early exit: every signature is compared with every key.
			if hmac.Equal(sig, want) {
				matched = true
			}
		}
		if matched {
			return i, nil
		}
	}
	if tried == 0 {
		return -1, fmt.Errorf("%w: every secret expired (not_after) before the timestamp %s", ErrNoMatch, at.UTC().Format(time.RFC3339))
	}
	return -1, fmt.Errorf("%w: %s made with %s over this webhook-id, webhook-timestamp and body",
		ErrNoMatch, verifyPlural(len(sigs), "the v1 signature was not", "none of the %d v1 signatures was"),
		verifyPlural(tried, "the secret", "any of the %d secrets"))
}

// signatureMAC is the raw HMAC-SHA256 of id.ts.body, as Sign computes it.
func signatureMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

func verifyPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf(many, n)
}

// ParseTimestamp reads a webhook-timestamp header: Unix seconds, a
// decimal integer.
func ParseTimestamp(ts string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("webhook-timestamp %.40q is not Unix seconds (a whole number such as 1614265330)", ts)
	}
	return n, nil
}

// TimestampError is a webhook-timestamp outside the tolerance around now.
type TimestampError struct {
	Timestamp time.Time
	// Skew is how far the timestamp lies from now: positive in the past
	// (too old), negative in the future (too new).
	Skew      time.Duration
	Tolerance time.Duration
}

// Error says which way the timestamp is off and by how much.
func (e *TimestampError) Error() string {
	when, off := "too old", e.Skew
	dir := "before"
	if off < 0 {
		when, off, dir = "too new", -off, "after"
	}
	return fmt.Sprintf("webhook-timestamp %d (%s) is %s: %s %s now, %s beyond the %s tolerance",
		e.Timestamp.Unix(), e.Timestamp.UTC().Format(time.RFC3339), when,
		roughly(off), dir, roughly(off-e.Tolerance), e.Tolerance)
}

// roughly writes a duration to the second, in days and hours beyond two
// days (a request saved last year is "412d3h" old, not "9891h").
func roughly(d time.Duration) string {
	d = d.Round(time.Second)
	if d < 48*time.Hour {
		return d.String()
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
}

// CheckTimestamp reports a webhook-timestamp more than tolerance away
// from now (either way) as a *TimestampError; receivers refuse those so
// that a captured request cannot be replayed later. A tolerance of 0
// skips the check, for old saved requests.
func CheckTimestamp(ts string, now time.Time, tolerance time.Duration) error {
	unix, err := ParseTimestamp(ts)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		return nil
	}
	at := time.Unix(unix, 0)
	skew := now.Sub(at)
	if skew > tolerance || -skew > tolerance {
		return &TimestampError{Timestamp: at, Skew: skew, Tolerance: tolerance}
	}
	return nil
}
