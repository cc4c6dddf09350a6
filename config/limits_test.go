package config

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1048576, true},
		{"1MiB", 1 << 20, true},
		{"1 MiB", 1 << 20, true},
		{"512KB", 512000, true},
		{"512kb", 512000, true},
		{"64KiB", 64 << 10, true},
		{"2 gib", 2 << 30, true},
		{"1TB", 1e12, true},
		{"10B", 10, true},
		{"0", 0, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"1.5MiB", 0, false},
		{"-1", 0, false},
		{"1 MiBs", 0, false},
		{"1M", 0, false},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"8388608TiB", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestLoad_Limits(t *testing.T) {
	cfg := mustLoad(t, "webhooks: []\n")
	if got, want := cfg.Limits, DefaultLimits(); got != want {
		t.Errorf("default limits: got %+v, want %+v", got, want)
	}
	if got := cfg.Limits; got.MaxBody != 1<<20 || got.MaxEvents != 1000 || got.MaxDepth != 64 || got.MaxKey != 256 || got.MaxHeaderBytes != 64<<10 || got.MaxConnections != 1024 {
		t.Errorf("defaults changed: %+v", got)
	}
	cfg = mustLoad(t, `
limits:
  max_body: 512KB
  max_events: 10
  max_depth: 8
  max_key: 64
  max_header_bytes: 16KiB
  max_connections: 32
`)
	want := Limits{MaxBody: 512000, MaxEvents: 10, MaxDepth: 8, MaxKey: 64, MaxHeaderBytes: 16 << 10, MaxConnections: 32}
	if cfg.Limits != want {
		t.Errorf("limits: got %+v, want %+v", cfg.Limits, want)
	}
	// A partial block keeps the other defaults.
	cfg = mustLoad(t, "limits: {max_body: 2097152}\n")
	want = DefaultLimits()
	want.MaxBody = 2 << 20
	if cfg.Limits != want {
		t.Errorf("partial limits: got %+v, want %+v", cfg.Limits, want)
	}
}

func TestLoad_FileValueBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := Load(writeConfig(t, `
webhooks:
  - id: a
    events: [Lead Creation]
    url: http://127.0.0.1:9/a
    headers: {X-Token: "${file:/dev/zero}"}
`))
	if err == nil || !strings.Contains(err.Error(), "webhooks[0].headers.X-Token: read ${file:/dev/zero}: /dev/zero is larger than 1 MiB") {
		t.Errorf("Load with ${file:/dev/zero}: %v, want a bounded read refused", err)
	}
}

func TestCatalog_LongUnknownName(t *testing.T) {
	c := NewCatalog()
	name := strings.Repeat("Lead Creaton", 100_000) // 1.2 MB, as a client may post
	// The work is measured in bytes allocated, which a loaded machine does
	// not change: comparing the whole name with each of the catalog's
	// names would allocate its runes (4.8 MB) for every one of them.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	msg := c.UnknownEventError(name)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
		t.Errorf("the message for a 1.2 MB name allocated %d MiB; a name that long is no misspelling of any event and needs no comparing", n>>20)
	}
	if want := `unknown event "Lead CreatonLead Creaton`; !strings.HasPrefix(msg, want) || len(msg) > 200 || !strings.Contains(msg, "... (1200000 bytes) (see: sidehook events)") {
		t.Errorf("message = %.300s, want it cut short with the name's size", msg)
	}
	if got, want := c.UnknownEventError("Lead Creaton"), `unknown event "Lead Creaton" (did you mean "Lead Creation"? see: sidehook events)`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestLoad_SharedAliases(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-headers: &h {X-Team: crm, X-Env: prod, X-A: a, X-B: b, X-C: c}\nwebhooks:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  - {id: w%d, events: [Lead Creation], url: \"http://127.0.0.1:9/\", headers: *h}\n", i)
	}
	_, err := Load(writeConfig(t, b.String()))
	if err == nil || strings.Contains(err.Error(), "aliases") || !strings.Contains(err.Error(), `unknown key "x-headers"`) {
		t.Errorf("a block of headers shared by 300 webhooks: %v, want only the unknown key", err)
	}
}
