package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestNewLogger_Levels(t *testing.T) {
	tests := []struct {
		level     string
		wantDebug bool
		wantInfo  bool
		wantWarn  bool
	}{
		{"debug", true, true, true},
		{"", false, true, true},
		{"info", false, true, true},
		{"WARN", false, false, true},
		{"error", false, false, false},
	}
	for _, tt := range tests {
		t.Run("level="+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewLogger(&buf, tt.level, "json")
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			out := buf.String()
			for msg, want := range map[string]bool{`"msg":"d"`: tt.wantDebug, `"msg":"i"`: tt.wantInfo, `"msg":"w"`: tt.wantWarn} {
				if got := strings.Contains(out, msg); got != want {
					t.Errorf("output has %s = %v, want %v; output:\n%s", msg, got, want, out)
				}
			}
		})
	}
}

func TestNewLogger_Errors(t *testing.T) {
	tests := []struct {
		level, format, want string
	}{
		{"verbose", "json", `unknown log level "verbose" (use one of: debug, info, warn, error)`},
		{"info", "text", `unknown log format "text" (use one of: auto, pretty, json)`},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			_, err := NewLogger(&bytes.Buffer{}, tt.level, tt.format)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewLogger_Formats(t *testing.T) {
	t.Run("json has time and attrs", func(t *testing.T) {
		var buf bytes.Buffer
		log, err := NewLogger(&buf, "info", "json")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("delivery sent", "webhook", "crm-new-lead")
		rec := decodeLine(t, buf.Bytes())
		if rec["time"] == nil || rec["msg"] != "delivery sent" || rec["webhook"] != "crm-new-lead" {
			t.Errorf("got %v, want time, msg and webhook", rec)
		}
	})
	t.Run("auto on a pipe is json", func(t *testing.T) {
		var buf bytes.Buffer
		log, err := NewLogger(&buf, "", "auto")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("started")
		decodeLine(t, buf.Bytes())
	})
	t.Run("pretty without a terminal has no colour", func(t *testing.T) {
		var buf bytes.Buffer
		log, err := NewLogger(&buf, "", "pretty")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("started", "webhook", "crm-new-lead")
		got := buf.String()
		if !strings.Contains(got, "INF started webhook=crm-new-lead") || strings.Contains(got, "\x1b[") {
			t.Errorf("got %q, want a plain tint line", got)
		}
	})
}

func TestNewLogger_Journal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)

	tests := []struct {
		name     string
		stream   string
		wantTime bool
	}{
		{"journal stream drops time", stream, false},
		{"other stream keeps time", "1:2", true},
		{"no journal keeps time", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string {
				if k == "JOURNAL_STREAM" {
					return tt.stream
				}
				return ""
			}
			log, err := newLogger(f, "info", "auto", getenv)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("started")
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			rec := decodeLine(t, b)
			if _, got := rec["time"]; got != tt.wantTime {
				t.Errorf("time present = %v, want %v; line: %s", got, tt.wantTime, b)
			}
		})
	}
}

func decodeLine(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, b)
	}
	return rec
}
