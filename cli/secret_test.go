package cli_test

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/delivery"
)

var secretLine = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]+={0,2}\n$`)

func TestSecret_Format(t *testing.T) {
	tests := []struct {
		args  []string
		bytes int
	}{
		{nil, 32},
		{[]string{"--bytes", "24"}, 24},
		{[]string{"--bytes=33"}, 33},
		{[]string{"--bytes", "64"}, 64},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.bytes), func(t *testing.T) {
			r := sidehook(t, nil, "", append([]string{"secret"}, tt.args...)...)
			if r.err != nil {
				t.Fatalf("secret %v: %v (stderr %q)", tt.args, r.err, r.stderr)
			}
			if !secretLine.MatchString(r.stdout) {
				t.Fatalf("secret %v printed %q, want one line whsec_<standard base64>", tt.args, r.stdout)
			}
			key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(r.stdout, "whsec_")))
			if err != nil || len(key) != tt.bytes {
				t.Errorf("secret %v: key of %d bytes (err %v), want %d", tt.args, len(key), err, tt.bytes)
			}
			if _, err := delivery.ParseSecret(r.stdout); err != nil {
				t.Errorf("ParseSecret(the printed secret): %v", err)
			}
		})
	}
}

func TestSecret_Random(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		r := sidehook(t, nil, "", "secret")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if seen[r.stdout] {
			t.Fatalf("secret printed %q twice in 20 runs", r.stdout)
		}
		seen[r.stdout] = true
	}
}

func TestSecret_Bounds(t *testing.T) {
	for _, n := range []string{"23", "65", "0", "-1", "1024"} {
		r := sidehook(t, nil, "", "secret", "--bytes", n)
		if r.exitCode() != 1 || r.stdout != "" {
			t.Errorf("secret --bytes %s: exit %d, stdout %q; want exit 1 and no secret", n, r.exitCode(), r.stdout)
		}
		want := fmt.Sprintf("secret: --bytes must be between 24 and 64 (got %s)", n)
		if r.err == nil || r.err.Error() != want {
			t.Errorf("secret --bytes %s: error %v, want %q", n, r.err, want)
		}
	}
	for _, args := range [][]string{{"--bytes", "many"}, {"--length", "32"}} {
		r := sidehook(t, nil, "", append([]string{"secret"}, args...)...)
		if r.exitCode() != 2 || r.stdout != "" {
			t.Errorf("secret %v: exit %d, stdout %q; want 2 with usage on stderr", args, r.exitCode(), r.stdout)
		}
		wantContains(t, "stderr", r.stderr, "Usage: sidehook secret [--bytes N]")
	}
	if r := sidehook(t, nil, "", "secret", "extra"); r.err == nil || !strings.Contains(r.err.Error(), `unexpected argument "extra"`) {
		t.Errorf("secret extra: error %v, want one naming the argument", r.err)
	}
}

// TestSecret_AcceptedByConfig checks that what "sidehook secret" prints
// is what the config's secret: takes.
func TestSecret_AcceptedByConfig(t *testing.T) {
	secret := strings.TrimSpace(sidehook(t, nil, "", "secret").stdout)
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	writeFile(t, path, `webhooks:
  - id: signed
    events: [Lead Creation]
    url: https://crm.example.com/hook
    secret: `+secret+`
`)
	r := sidehook(t, nil, "", "validate", "--config", path)
	if r.err != nil {
		t.Fatalf("validate with a generated secret: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
}

func TestHelp_ListsSecretAndVerify(t *testing.T) {
	r := sidehook(t, nil, "", "help")
	wantContains(t, "help", r.stdout, "\n  secret ", "\n  verify ")
	for _, cmd := range []string{"secret", "verify"} {
		r := sidehook(t, nil, "", "help", cmd)
		wantContains(t, "help "+cmd, r.stdout, "Usage: sidehook "+cmd)
		r = sidehook(t, nil, "", cmd, "-h")
		wantContains(t, cmd+" -h", r.stderr, "Usage: sidehook "+cmd)
	}
}
