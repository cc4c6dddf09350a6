package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Settings are the top-level settings a command needs to reach the daemon
// and its store.
type Settings struct {
	Socket  string // socket; "" when the file does not set it
	Listen  string // listen; "" when none
	DataDir string // data_dir; "" when the file does not set it
}

// Peek reads only socket, listen and data_dir from the configuration at
// path, expanded and with relative paths resolved as Load does, ignoring
// problems anywhere else in the file. The CLI uses it to find the daemon
// while the file is being edited and is broken. When the file is not even
// valid YAML, Peek falls back to reading top-level "key: value" lines.
//
// It returns an error when the file cannot be read, or an Errors for
// problems in these three settings, along with the settings it could read.
func Peek(path string) (Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Settings{}, readError(path, err)
	}
	var errs Errors
	d := &decoder{file: path, dir: filepath.Dir(path), errs: &errs}
	vals := peekYAML(data)
	if vals == nil {
		vals = peekLines(data)
	}
	var s Settings
	if v := vals["socket"]; v != nil {
		s.Socket, _ = d.path(v, "socket")
	}
	if v := vals["listen"]; v != nil {
		s.Listen, _ = d.str(v, "listen")
	}
	if v := vals["data_dir"]; v != nil {
		s.DataDir, _ = d.path(v, "data_dir")
	}
	if len(errs) > 0 {
		sortErrors(errs, []string{path})
		return s, errs
	}
	return s, nil
}

// peekYAML returns the top-level scalar values of a YAML file, or nil when
// it is not valid YAML.
func peekYAML(data []byte) map[string]*yaml.Node {
	var quiet Errors
	d := &decoder{errs: &quiet}
	root := d.parse(data)
	if len(quiet) > 0 {
		return nil
	}
	vals := map[string]*yaml.Node{}
	if root == nil || root.Kind != yaml.MappingNode {
		return vals
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], deref(root.Content[i+1])
		if _, seen := vals[k.Value]; !seen && v.Kind == yaml.ScalarNode && !isNull(v) {
			vals[k.Value] = v
		}
	}
	return vals
}

// peekLines reads unindented "key: value" lines of a file that YAML cannot
// parse: a plain, "double" or 'single' quoted value, with an optional
// trailing # comment.
func peekLines(data []byte) map[string]*yaml.Node {
	vals := map[string]*yaml.Node{}
	for i, line := range strings.Split(string(data), "\n") {
		key, rest, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if !ok || key == "" || strings.ContainsAny(key[:1], " \t#-") {
			continue
		}
		col := len(key) + 2 + len(rest) - len(strings.TrimLeft(rest, " \t"))
		value, ok := peekValue(strings.TrimSpace(rest))
		if _, seen := vals[key]; ok && !seen {
			vals[key] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Line: i + 1, Column: col}
		}
	}
	return vals
}

// peekValue unquotes one scalar written on a line; ok is false when there
// is none.
func peekValue(s string) (string, bool) {
	switch {
	case strings.HasPrefix(s, `"`):
		if end := strings.LastIndex(s, `"`); end > 0 {
			v, err := strconv.Unquote(s[:end+1])
			return v, err == nil
		}
		return "", false
	case strings.HasPrefix(s, "'"):
		if end := strings.LastIndex(s, "'"); end > 0 {
			return strings.ReplaceAll(s[1:end], "''", "'"), true
		}
		return "", false
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s, s != "" && !strings.HasPrefix(s, "#")
}
