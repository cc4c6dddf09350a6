package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzLoad writes any bytes as a configuration file and loads it, with
// ${VAR} and ${file:...} expansion in reach. Load either returns a
// configuration with every limit in range, or config.Errors whose every
// line is FILE:LINE:COL: message (FILE: message when there is no
// position), the form editors link to. It never panics.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "webhooks.yaml")
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte("s3cr3t-token-value\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Setenv("SIDEHOOK_FUZZ_TOKEN", "0123456789abcdef0123")
	f.Setenv("SIDEHOOK_FUZZ_URL", "http://127.0.0.1:9/hook")
	f.Setenv("SIDEHOOK_FUZZ_MULTILINE", "a\nb")
	for _, seed := range []string{
		"webhooks:\n  - id: crm-new-lead\n    events: [Lead Creation]\n    url: https://api.example.com/leads\n",
		"webhooks:\n  - id: a\n    event: Lead Creation\n    url: ${SIDEHOOK_FUZZ_URL}\n    headers: {Authorization: \"Bearer ${file:token.txt}\", X-Lit: \"$${HOME}\"}\n",
		"listen: 127.0.0.1:8787\napi_token: ${SIDEHOOK_FUZZ_TOKEN}\nsocket_group: sidehook\n",
		"limits:\n  max_body: 1MiB\n  max_events: 1000\n  max_depth: 64\n  max_key: 256\n  max_header_bytes: 64KiB\n  max_connections: 1024\n",
		"limits: {max_body: 512KB, max_header_bytes: 1048576, max_depth: 0, max_key: -1}\n",
		"limits: {max_body: 99999999999999999999TiB}\n",
		"socket: ${SIDEHOOK_FUZZ_MULTILINE}\nlisten: \"${SIDEHOOK_FUZZ_UNSET}\"\n",
		"webhooks:\n  - id: x\n    event: \"${not\\na name}\"\n    url: \"${file:}\"\n",
		"webhooks:\n  - id: x\n    events: [Lead Creation]\n    url: \"http://h/${unterminated\"\n",
		"events:\n  - {name: Invoice Paid, code: Invoice_Post_Paid, batched: true}\nwebhooks:\n  - id: inv\n    events: [Invoice Paid]\n    url: http://127.0.0.1:9/i\n    batch: {window: 1m, max: 10}\n    retry: {attempts: 5, backoff: 1s, max_backoff: 2m}\n    circuit: {failures: 3, probe: 30s}\n",
		"notify:\n  url: http://127.0.0.1:9/n\nwebhooks:\n  - id: c\n    type: command\n    event: Lead Update\n    command: [/bin/true]\n    notify_on_failure: true\n",
		"base: &b {events: [Lead Creation], url: http://127.0.0.1:9/x}\nwebhooks: [*b, *b]\n",
		"webhooks:\n  - <<: {id: m}\n    url: http://x\n",
		"network:\n  deny: [10.0.0.0/8, 169.254.169.254]\n  allow: [fd00::/8]\n",
		"webhooks: [\n",
		"a: 1\n---\nb: 2\n",
		"\t- x",
		"",
	} {
		f.Add([]byte(seed))
	}
	lineRE := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `(:[1-9][0-9]*:[1-9][0-9]*)?: \S`)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err == nil {
			if cfg == nil || cfg.Catalog == nil {
				t.Fatal("Load returned neither a config nor an error")
			}
			l := cfg.Limits
			if l.MaxBody < minMaxBody || l.MaxBody > maxMaxBody || l.MaxEvents < 1 || l.MaxDepth < 1 || l.MaxKey < 1 ||
				l.MaxHeaderBytes < minMaxHeaderBytes || l.MaxConnections < 1 {
				t.Errorf("limits out of range: %+v", l)
			}
			for _, w := range cfg.Webhooks {
				if w.ID == "" || len(w.Events) == 0 {
					t.Errorf("webhook without id or events: %+v", w)
				}
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("Load error is %T, want config.Errors: %v", err, err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !lineRE.MatchString(line) {
				t.Errorf("error line %q does not start with %s:LINE:COL: ", line, path)
			}
		}
	})
}
