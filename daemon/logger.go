package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/lmittmann/tint"
)

// Log levels and formats NewLogger accepts, as error messages list them.
const (
	logLevels  = "debug, info, warn, error"
	logFormats = "auto, pretty, json"
)

// NewLogger returns the daemon's logger writing to w at the given level
// ("debug", "info", "warn" or "error"; "" means info) in the given format:
//
//   - "pretty": coloured, human-readable lines (tint); colour only when w is
//     a terminal;
//   - "json": one JSON object per line;
//   - "auto" or "": pretty on a terminal, JSON otherwise. When w is the
//     systemd journal (JOURNAL_STREAM names it), the JSON leaves out the
//     time, which journald records itself.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	return newLogger(w, level, format, os.Getenv)
}

func newLogger(w io.Writer, level, format string, getenv func(string) string) (*slog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	switch format {
	case "", "auto":
		switch {
		case isTerminal(w):
			return prettyLogger(w, lvl), nil
		case isJournal(w, getenv("JOURNAL_STREAM")):
			return jsonLogger(w, lvl, false), nil
		}
		return jsonLogger(w, lvl, true), nil
	case "pretty":
		return prettyLogger(w, lvl), nil
	case "json":
		return jsonLogger(w, lvl, true), nil
	}
	return nil, fmt.Errorf("unknown log format %q (use one of: %s)", format, logFormats)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (use one of: %s)", s, logLevels)
}

func prettyLogger(w io.Writer, lvl slog.Level) *slog.Logger {
	return slog.New(tint.NewTextHandler(w, &tint.Options{
		Level:      lvl,
		TimeFormat: "15:04:05.000",
		NoColor:    !isTerminal(w),
	}))
}

func jsonLogger(w io.Writer, lvl slog.Level, withTime bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lvl}
	if !withTime {
		opts.ReplaceAttr = dropTime
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// dropTime removes the record's time; journald stamps every line itself.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// isJournal reports whether w is the stream systemd connected to the
// journal. systemd sets JOURNAL_STREAM to "DEVICE:INODE" of that stream, so
// a child whose output was redirected elsewhere is not fooled by an
// inherited variable.
func isJournal(w io.Writer, journalStream string) bool {
	dev, ino, ok := strings.Cut(journalStream, ":")
	if !ok {
		return false
	}
	f, isFile := w.(*os.File)
	if !isFile {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return dev == strconv.FormatUint(uint64(st.Dev), 10) &&
		ino == strconv.FormatUint(st.Ino, 10)
}
