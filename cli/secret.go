package cli

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	// Imported by another name: "delivery" is the API type in history.go.
	signing "github.com/sidehook/sidehook/delivery"
)

// Signing secrets are 24 to 64 random bytes, 32 by default: HMAC-SHA256
// hashes a key longer than its 64-byte block, and 32 bytes match its
// output.
const (
	secretMinBytes     = 24
	secretMaxBytes     = 64
	secretDefaultBytes = 32
)

const secretUsage = `Usage: sidehook secret [--bytes N]

Prints a new random signing secret, whsec_<base64>, for a webhook's
secret: or secrets: in the config. Receivers verify requests with the same
secret and any Standard Webhooks library (or: sidehook verify).

Flags:
  --bytes N   key length in bytes, 24 to 64 (default 32)
`

func (m *Main) secret(args []string) error {
	fs := m.newFlagSet("secret")
	n := fs.Int("bytes", secretDefaultBytes, "key length in bytes")
	if _, err := parseN(fs, args); err != nil {
		return err
	}
	if *n < secretMinBytes || *n > secretMaxBytes {
		return fmt.Errorf("secret: --bytes must be between %d and %d (got %d)", secretMinBytes, secretMaxBytes, *n)
	}
	key := make([]byte, *n)
	// crypto/rand's Read never fails; it crashes the program rather than
	// return a weak key.
	rand.Read(key)
	fmt.Fprintln(m.Stdout, signing.SecretPrefix+base64.StdEncoding.EncodeToString(key))
	return nil
}
