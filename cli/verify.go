package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sidehook/sidehook/config"
	// Imported by another name: "delivery" is the API type in history.go.
	signing "github.com/sidehook/sidehook/delivery"
)

const verifyUsage = `Usage: sidehook verify --secret SECRET [--secret SECRET ...] --headers FILE --body FILE [--tolerance 5m]

Checks the Standard Webhooks signature of a saved request, as a receiver
does, for people debugging one: webhook-id and webhook-timestamp are there,
the timestamp is within the tolerance of now, and one of the v1 signatures
in webhook-signature was made with one of the secrets over the exact body.
It does not talk to the daemon.

Flags:
  --secret SECRET   a signing secret, whsec_<base64>, or @FILE to read it
                    from a file; repeat it for several (during a rotation):
                    any one may match
  --headers FILE    the request's header lines, Name: value, as curl -D or
                    a raw dump writes them (a request or status line first,
                    CRLF line ends and a body after a blank line are fine)
  --body FILE       the body exactly as received, byte for byte
  --tolerance D     how far webhook-timestamp may be from now (default 5m);
                    0 skips the check, for requests saved long ago
  FILE may be - for standard input, for one of --headers and --body.

Prints "ok: ..." and exits 0 when the signature verifies; otherwise says
what is wrong (a missing header, the timestamp off by how much, no
signature matching, with the one expected) and exits 1.
`

// stringsFlag collects the values of a flag given several times.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func (m *Main) verify(args []string) error {
	fs := m.newFlagSet("verify")
	var secretArgs stringsFlag
	fs.Var(&secretArgs, "secret", "signing secret (repeatable)")
	headersFile := fs.String("headers", "", "file with the request's headers")
	bodyFile := fs.String("body", "", "file with the request's body")
	tolerance := fs.Duration("tolerance", 5*time.Minute, "allowed timestamp skew (0: no check)")
	if _, err := parseN(fs, args); err != nil {
		return err
	}
	switch {
	case len(secretArgs) == 0:
		return errors.New("verify: --secret is required: the webhook's whsec_ secret (see: sidehook verify -h)")
	case *headersFile == "":
		return errors.New("verify: --headers is required: a file with the request's header lines (see: sidehook verify -h)")
	case *bodyFile == "":
		return errors.New("verify: --body is required: a file with the request's exact body (see: sidehook verify -h)")
	case *headersFile == "-" && *bodyFile == "-":
		return errors.New("verify: only one of --headers and --body can be - (standard input); save the other to a file")
	case *tolerance < 0:
		return fmt.Errorf("verify: --tolerance must not be negative (got %s); 0 skips the check", *tolerance)
	}
	secrets := make([]config.Secret, 0, len(secretArgs))
	for i, arg := range secretArgs {
		sec, err := m.readSecret(arg)
		if err != nil {
			return fmt.Errorf("verify: --secret #%d: %w", i+1, err)
		}
		secrets = append(secrets, sec)
	}
	rawHeaders, err := m.readInput("--headers", *headersFile)
	if err != nil {
		return err
	}
	header, err := parseHeaderDump(rawHeaders)
	if err != nil {
		return fmt.Errorf("verify: --headers %s: %w", *headersFile, err)
	}
	body, err := m.readInput("--body", *bodyFile)
	if err != nil {
		return err
	}

	id, ts := header.Get("webhook-id"), header.Get("webhook-timestamp")
	sig := strings.Join(header.Values("webhook-signature"), " ")
	var problems, notes []string
	tsErr := signing.CheckTimestamp(ts, time.Now(), *tolerance)
	var tooFar *signing.TimestampError
	if errors.As(tsErr, &tooFar) {
		p := tsErr.Error()
		if tooFar.Skew > 0 {
			p += " (for a request saved earlier, --tolerance 0 skips this check)"
		} else {
			p += " (is the sender's clock right?)"
		}
		problems = append(problems, p)
	}
	matched, err := signing.Verify(secrets, id, ts, sig, body)
	switch {
	case errors.Is(err, signing.ErrMissingHeader):
		names := slices.Sorted(maps.Keys(header))
		problems = append(problems, fmt.Sprintf("%v (the headers file has: %s)", err, strings.Join(names, ", ")))
	case errors.Is(err, signing.ErrNoMatch):
		problems = append(problems, err.Error())
		notes = append(notes, noMatchNotes(secrets, id, ts, sig, body)...)
	case err != nil:
		problems = append(problems, err.Error())
	case len(problems) > 0:
		notes = append(notes, fmt.Sprintf("the signature itself matches secret #%d", matched+1))
	}
	if len(problems) == 0 {
		fmt.Fprintf(m.Stdout, "ok: signature v1 matches secret #%d (webhook-id %s, timestamp %s)\n", matched+1, id, strings.TrimSpace(ts))
		return nil
	}
	for _, p := range problems {
		fmt.Fprintf(m.Stdout, "fail: %s\n", p)
	}
	for _, n := range notes {
		fmt.Fprintf(m.Stdout, "  %s\n", n)
	}
	return ExitError{Code: 1}
}

// noMatchNotes helps find why no signature matched: what was received,
// what secret #1 gives, and whether the body file only differs by a final
// newline (editors and echo add one).
func noMatchNotes(secrets []config.Secret, id, ts, sig string, body []byte) []string {
	first := config.Secret{Key: secrets[0].Key}
	want := signing.Sign([]config.Secret{first}, time.Now(), id, ts, body)
	notes := []string{
		"received webhook-signature: " + sig,
		"expected with secret #1:    " + want,
	}
	trimmed := bytes.TrimRight(body, "\r\n")
	if len(trimmed) < len(body) {
		if i, err := signing.Verify(secrets, id, ts, sig, trimmed); err == nil {
			return append(notes, fmt.Sprintf("the body without its final newline matches secret #%d: the body file has a newline the request did not", i+1))
		}
	}
	return append(notes, fmt.Sprintf("over %d bytes of body, webhook-id %q and webhook-timestamp %q; the body must be byte for byte as sent (no reformatted JSON, no added newline) and the secret the webhook's", len(body), id, ts))
}

// readSecret parses a --secret value: whsec_<base64>, or @FILE.
func (m *Main) readSecret(arg string) (config.Secret, error) {
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return config.Secret{}, fmt.Errorf("read secret file: %w", err)
		}
		arg = string(b)
	}
	return signing.ParseSecret(arg)
}

// readInput reads a file named by a flag, or standard input for "-".
func (m *Main) readInput(flagName, path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(m.Stdin)
		if err != nil {
			return nil, fmt.Errorf("verify: read %s from standard input: %w", flagName, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verify: read %s file: %w", flagName, err)
	}
	return b, nil
}

// parseHeaderDump reads header lines ("Name: value") as curl -D, a proxy
// or a receiver's raw dump writes them: an optional request or status
// line first, LF or CRLF line ends, folded continuation lines, HTTP/2
// pseudo-headers (":method: POST", skipped). A blank line ends the
// headers, unless another status line follows (curl -D writes one block
// per response, as for "100 Continue"), in which case the last block
// counts; anything after the blank line is a body and is ignored.
func parseHeaderDump(b []byte) (http.Header, error) {
	text := strings.TrimPrefix(string(b), "\ufeff")
	lines := strings.Split(text, "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	h := http.Header{}
	var last string // the header a continuation line extends
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "":
			if len(h) == 0 {
				continue
			}
			next := i + 1
			for next < len(lines) && strings.TrimSpace(lines[next]) == "" {
				next++
			}
			if next < len(lines) && isStartLine(lines[next]) {
				continue // another block follows
			}
			return h, nil
		case isStartLine(line):
			h, last = http.Header{}, ""
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("line %d: %.60q continues no header", i+1, line)
			}
			vals := h[last]
			vals[len(vals)-1] += " " + strings.TrimSpace(line)
		case line[0] == ':':
			last = "" // an HTTP/2 pseudo-header
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || !isToken(name) {
				return nil, fmt.Errorf("line %d: %.60q is not a header line (Name: value)", i+1, line)
			}
			last = http.CanonicalHeaderKey(name)
			h[last] = append(h[last], strings.TrimSpace(value))
		}
	}
	if len(h) == 0 {
		return nil, errors.New("no header lines (Name: value) found")
	}
	return h, nil
}

// isToken reports whether s is a valid header name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		isAlnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !isAlnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// isStartLine reports whether line is an HTTP/1 request line ("POST /hook
// HTTP/1.1") or status line ("HTTP/1.1 200 OK", "HTTP/2 200").
func isStartLine(line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false
	}
	return strings.HasPrefix(f[0], "HTTP/") ||
		len(f) == 3 && !strings.Contains(f[0], ":") && strings.HasPrefix(f[2], "HTTP/")
}
