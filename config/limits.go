package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Limits bound what a client of the API controls. Every one is answered
// with a 4xx naming the limit and its key. MaxBody, MaxEvents, MaxDepth
// and MaxKey follow a reload; MaxHeaderBytes and MaxConnections are read
// when the listeners are bound, so they change at the next start.
type Limits struct {
	// MaxBody bounds the bytes of one POST /v1/events body (413).
	MaxBody int64
	// MaxEvents bounds the events of one atomic array (413).
	MaxEvents int
	// MaxDepth bounds how deeply an event's data nests objects and
	// arrays (400).
	MaxDepth int
	// MaxKey bounds the bytes of an idempotency key (400).
	MaxKey int
	// MaxHeaderBytes bounds a request's line and headers (431).
	MaxHeaderBytes int
	// MaxConnections bounds the open connections of each listener; one
	// more is answered 429 and closed.
	MaxConnections int
}

// Defaults of the limits: block.
const (
	DefaultMaxBody        = 1 << 20
	DefaultMaxEvents      = 1000
	DefaultMaxDepth       = 64
	DefaultMaxKey         = 256
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxConnections = 1024
)

// DefaultLimits returns the limits in force when the file sets none.
func DefaultLimits() Limits {
	return Limits{
		MaxBody:        DefaultMaxBody,
		MaxEvents:      DefaultMaxEvents,
		MaxDepth:       DefaultMaxDepth,
		MaxKey:         DefaultMaxKey,
		MaxHeaderBytes: DefaultMaxHeaderBytes,
		MaxConnections: DefaultMaxConnections,
	}
}

// Bounds of the limits themselves: low enough to keep a daemon usable,
// high enough for any sane use.
const (
	minMaxBody        = 1 << 10
	maxMaxBody        = 1 << 30
	maxMaxEvents      = 100_000
	maxMaxDepth       = 10_000 // encoding/json refuses deeper values anyway
	maxMaxKey         = 4096
	minMaxHeaderBytes = 1 << 10
	maxMaxHeaderBytes = 16 << 20
	maxMaxConnections = 1 << 20
)

// limits reads the limits: block over the defaults.
func (d *decoder) limits(n *yaml.Node, path string) Limits {
	l := DefaultLimits()
	m, ok := d.mapping(n, path, "max_body", "max_events", "max_depth", "max_key", "max_header_bytes", "max_connections")
	if !ok {
		return l
	}
	if v := m.get("max_body"); v != nil {
		if s, ok := d.sizeRange(v, join(path, "max_body"), minMaxBody, maxMaxBody); ok {
			l.MaxBody = s
		}
	}
	ints := []struct {
		key    string
		to     *int
		lo, hi int
	}{
		{"max_events", &l.MaxEvents, 1, maxMaxEvents},
		{"max_depth", &l.MaxDepth, 1, maxMaxDepth},
		{"max_key", &l.MaxKey, 1, maxMaxKey},
		{"max_connections", &l.MaxConnections, 1, maxMaxConnections},
	}
	for _, s := range ints {
		if v := m.get(s.key); v != nil {
			if i, ok := d.intRange(v, join(path, s.key), s.lo, s.hi); ok {
				*s.to = i
			}
		}
	}
	if v := m.get("max_header_bytes"); v != nil {
		if s, ok := d.sizeRange(v, join(path, "max_header_bytes"), minMaxHeaderBytes, maxMaxHeaderBytes); ok {
			l.MaxHeaderBytes = int(s)
		}
	}
	return l
}

// sizeRange reads a size (see size) between lo and hi bytes inclusive.
func (d *decoder) sizeRange(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	s, ok := d.size(n, path)
	if !ok {
		return 0, false
	}
	if s < lo || s > hi {
		d.errorf(n, path, "must be between %s and %s (got %q)", formatSize(lo), formatSize(hi), n.Value)
		return 0, false
	}
	return s, true
}

// formatSize writes a byte count in the largest binary unit that divides
// it, as a person would write it in the file.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.name)
		}
	}
	return fmt.Sprintf("%d", n)
}
