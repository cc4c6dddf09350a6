package config

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder reads values out of one file's YAML nodes. It expands every
// scalar it reads and records each problem, with its position, in errs, so
// that one pass reports everything wrong with the file.
type decoder struct {
	file string  // the path as the user gave it, for positions
	dir  string  // relative paths in values are relative to this folder
	errs *Errors // shared by every file of one Load
}

func (d *decoder) pos(n *yaml.Node) Pos {
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

// errorf records a problem at n. path names the setting, such as
// webhooks[2].url; it prefixes the message unless empty.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	*d.errs = append(*d.errs, &Error{Pos: d.pos(n), Msg: msg})
}

// resolvePath makes a relative path from a value relative to the folder of
// the file that holds it, so the file means the same from any working
// directory.
func (d *decoder) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}

// join appends a key to a setting path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index appends a list index to a setting path.
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// deref follows YAML aliases (*name) to the node they point at.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// describe names a node's kind for messages such as "must be a list, got a
// mapping".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// mapping is a YAML mapping whose keys have been checked against the keys
// its setting allows.
type mapping struct {
	node *yaml.Node
	keys map[string]*yaml.Node // key nodes, for "not allowed here" problems
	vals map[string]*yaml.Node // value nodes; null values are left out
}

// get returns the value of key, or nil when it is absent or null.
func (m mapping) get(key string) *yaml.Node { return m.vals[key] }

// mapping checks that n is a mapping holding only known keys, each once.
// Every unknown key is a problem (with a suggestion when it looks like a
// typo); ok is false only when n is not a mapping at all.
func (d *decoder) mapping(n *yaml.Node, path string, known ...string) (m mapping, ok bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of key: value lines, got %s", describe(n))
		return mapping{}, false
	}
	m = mapping{node: n, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	for _, kv := range d.pairs(n, path) {
		if !slices.Contains(known, kv.key.Value) {
			d.errorf(kv.key, path, "unknown key %q%s", kv.key.Value, suggestKey(kv.key.Value, known))
			continue
		}
		m.keys[kv.key.Value] = kv.key
		if !isNull(kv.val) {
			m.vals[kv.key.Value] = kv.val
		}
	}
	return m, true
}

// pair is one key: value of a mapping.
type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n in file order, reporting keys that
// are not plain strings, merge keys and repeated keys (the first one wins).
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var out []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errorf(k, path, "keys must be plain text, got %s", describe(k))
		case k.Tag == "!!merge":
			d.errorf(k, path, "YAML merge keys (<<) are not supported; write the settings out")
		case seen[k.Value] != nil:
			d.errorf(k, path, "duplicate key %q (first at line %d)", k.Value, seen[k.Value].Line)
		default:
			seen[k.Value] = k
			out = append(out, pair{key: k, val: v})
		}
	}
	return out
}

// suggestKey returns ` (did you mean "x"?)` for the known key closest to
// an unknown one, or "" when none is close.
func suggestKey(unknown string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := levenshtein(strings.ToLower(unknown), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// text returns the expanded value of scalar n; expanded reports whether
// any ${...} was replaced. ok is false when n is not a scalar or expansion
// failed (the problem is recorded).
func (d *decoder) text(n *yaml.Node, path string) (s string, expanded, ok bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be a single value, got %s", describe(n))
		return "", false, false
	}
	s, expanded, err := expand(n.Value, d.dir)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return "", false, false
	}
	return s, expanded, true
}

// str returns the expanded value of scalar n.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	s, _, ok := d.text(n, path)
	return s, ok
}

// path returns the expanded value of scalar n as a file path, made
// relative to the file's folder when it is relative.
func (d *decoder) path(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	return d.resolvePath(s), ok
}

// bool reads a YAML 1.2 boolean: only true and false.
func (d *decoder) bool(n *yaml.Node, path string) (bool, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return false, false
	}
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	switch strings.ToLower(s) {
	case "yes", "no", "on", "off", "y", "n":
		d.errorf(n, path, "must be true or false (got %q; YAML 1.2 reads it as text, not a boolean)", n.Value)
	default:
		d.errorf(n, path, "must be true or false (got %q)", n.Value)
	}
	return false, false
}

// int reads a whole number.
func (d *decoder) int(n *yaml.Node, path string) (int, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		d.errorf(n, path, "must be a whole number (got %q)", n.Value)
		return 0, false
	}
	return i, true
}

// intRange reads a whole number between lo and hi inclusive.
func (d *decoder) intRange(n *yaml.Node, path string, lo, hi int) (int, bool) {
	i, ok := d.int(n, path)
	if !ok {
		return 0, false
	}
	if i < lo || i > hi {
		d.errorf(n, path, "must be between %d and %d (got %d)", lo, hi, i)
		return 0, false
	}
	return i, true
}

// duration reads a duration that must not be negative: Go syntax (500ms,
// 30s, 1m, 720h) or a bare number of seconds (30, 1.5).
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := parseDuration(s)
	switch {
	case err != nil:
		d.errorf(n, path, "%v (got %q)", err, n.Value)
		return 0, false
	case v < 0:
		d.errorf(n, path, "must not be negative (got %q)", n.Value)
		return 0, false
	}
	return v, true
}

// positive reads a duration that must be greater than zero.
func (d *decoder) positive(n *yaml.Node, path string) (time.Duration, bool) {
	v, ok := d.duration(n, path)
	if ok && v == 0 {
		d.errorf(n, path, "must be greater than 0 (got %q)", n.Value)
		return 0, false
	}
	return v, ok
}

// parseDuration parses Go duration syntax or a bare number of seconds.
func parseDuration(s string) (time.Duration, error) {
	if isDecimal(s) {
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(secs) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("is too large for a duration")
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		hint := ""
		if strings.HasSuffix(s, "d") {
			hint = "; there is no d unit, write days as hours (7d = 168h)"
		}
		return 0, fmt.Errorf("must be a duration like 500ms, 30s, 5m or 720h, or a number of seconds%s", hint)
	}
	return v, nil
}

// isDecimal reports whether s is a plain decimal number such as 30, -2 or
// 1.5 (no exponent, no hex, no inf).
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(s, ".")
	digits := func(t string) bool {
		return t != "" && strings.Trim(t, "0123456789") == ""
	}
	return digits(whole) && (!hasDot || digits(frac))
}

// size reads a byte count that must not be negative: a whole number of
// bytes (1048576) or one with a unit, decimal (KB, MB, GB, TB: powers of
// 1000) or binary (KiB, MiB, GiB, TiB: powers of 1024), in any case and
// with or without a space (512KB, 1MiB, 2 gib). B is bytes.
func (d *decoder) size(n *yaml.Node, path string) (int64, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := parseSize(s)
	if err != nil {
		d.errorf(n, path, "%v (got %q)", err, n.Value)
		return 0, false
	}
	return v, true
}

// sizeUnit returns the bytes in one of a size's units, lowercased.
func sizeUnit(u string) (int64, bool) {
	switch u {
	case "", "b":
		return 1, true
	case "kb":
		return 1e3, true
	case "mb":
		return 1e6, true
	case "gb":
		return 1e9, true
	case "tb":
		return 1e12, true
	case "kib":
		return 1 << 10, true
	case "mib":
		return 1 << 20, true
	case "gib":
		return 1 << 30, true
	case "tib":
		return 1 << 40, true
	}
	return 0, false
}

// parseSize parses a size as size describes it.
func parseSize(s string) (int64, error) {
	num := strings.TrimLeft(s, "0123456789")
	digits, unit := s[:len(s)-len(num)], strings.ToLower(strings.TrimSpace(num))
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must not be negative")
	}
	mult, known := sizeUnit(unit)
	if digits == "" || !known {
		return 0, fmt.Errorf("must be a size such as 1048576, 512KB or 1MiB (units B, KB, MB, GB, TB and KiB, MiB, GiB, TiB)")
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("is too large")
	}
	return v * mult, nil
}

// seq returns the items of list n.
func (d *decoder) seq(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, got %s", describe(n))
		return nil, false
	}
	return n.Content, true
}

// strList reads a list of single values; items with problems are left out
// and ok is false.
func (d *decoder) strList(n *yaml.Node, path string) (out []string, ok bool) {
	items, ok := d.seq(n, path)
	if !ok {
		return nil, false
	}
	for i, item := range items {
		s, itemOK := d.str(item, index(path, i))
		if !itemOK {
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}
