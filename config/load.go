package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DropInDir is the folder, next to the main file, whose *.yaml files each
// add a webhooks: list to the configuration.
const DropInDir = "webhooks.d"

// Load reads the configuration at path and the webhooks.d/*.yaml files
// next to it, expands ${VAR} and ${file:PATH} references, applies the
// defaults and checks everything.
//
// A file that cannot be read is reported as a plain error. Every problem
// in the files' contents is reported at once, as an Errors sorted by file,
// line and column. Relative paths in values (socket, data_dir, workdir,
// ${file:...}, a command with a slash) are relative to the folder of the
// file that holds them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err)
	}
	l := &loader{
		cfg:   &Config{File: path, HistoryRetention: DefaultHistoryRetention, Limits: DefaultLimits(), Catalog: NewCatalog()},
		files: []string{path},
		ids:   map[string]Pos{},
	}
	d := &decoder{file: path, dir: filepath.Dir(path), errs: &l.errs}
	if root := d.parse(data); root != nil {
		l.main(d, root)
	}
	l.dropIns(filepath.Join(filepath.Dir(path), DropInDir))
	if len(l.errs) > 0 {
		sortErrors(l.errs, l.files)
		return nil, l.errs
	}
	return l.cfg, nil
}

// readError wraps a failure to read the main file with what to do.
func readError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read config %s: %w (create it, starting from webhooks.example.yaml, or point --config or SIDEHOOK_CONFIG at your file)", path, err)
	}
	return fmt.Errorf("read config %s: %w", path, err)
}

// loader holds the state of one Load across the main file and drop-ins.
type loader struct {
	cfg        *Config
	errs       Errors
	files      []string       // files read, in order, for sorting errors
	ids        map[string]Pos // where each webhook id was first defined
	haveNotify bool
}

// main reads the top level of the main file.
func (l *loader) main(d *decoder, root *yaml.Node) {
	m, ok := d.mapping(root, "", "socket", "listen", "data_dir", "history_retention", "min_free_space", "notify", "events", "webhooks",
		"socket_group", "listen_public", "api_token", "network", "limits", "pprof")
	if !ok {
		return
	}
	c := l.cfg
	if v := m.get("socket"); v != nil {
		c.Socket, _ = d.socket(v, "socket")
	}
	if v := m.get("listen"); v != nil {
		c.Listen, _ = d.listen(v, "listen")
	}
	if v := m.get("data_dir"); v != nil {
		c.DataDir, _ = d.path(v, "data_dir")
	}
	d.security(m, c)
	if v := m.get("history_retention"); v != nil {
		if t, ok := d.positive(v, "history_retention"); ok {
			c.HistoryRetention = t
		}
	}
	if v := m.get("min_free_space"); v != nil {
		if n, ok := d.sizeRange(v, "min_free_space", 0, 1<<40); ok {
			c.MinFreeSpace = n
		}
	}
	if v := m.get("pprof"); v != nil {
		c.Pprof, _ = d.bool(v, "pprof")
	}
	if v := m.get("notify"); v != nil {
		c.Notify = d.notify(v, "notify")
		l.haveNotify = true
	}
	if v := m.get("events"); v != nil {
		c.Catalog = NewCatalog(d.customEvents(v, "events")...)
	}
	if v := m.get("limits"); v != nil {
		c.Limits = d.limits(v, "limits")
	}
	if v := m.get("webhooks"); v != nil {
		l.webhooks(d, v)
	}
}

// webhooks reads a webhooks: list and adds its webhooks to the config.
func (l *loader) webhooks(d *decoder, n *yaml.Node) {
	items, ok := d.seq(n, "webhooks")
	if !ok {
		return
	}
	for i, item := range items {
		path := index("webhooks", i)
		w := d.webhook(item, path, l.cfg.Catalog, l.haveNotify)
		if w == nil {
			continue
		}
		if w.ID != "" {
			if first, dup := l.ids[w.ID]; dup {
				d.errorf(valueOf(item, "id"), join(path, "id"), "duplicate id %q (first defined at %s); ids must be unique across the main file and %s/", w.ID, first, DropInDir)
			} else {
				l.ids[w.ID] = w.Pos
			}
		}
		l.cfg.Webhooks = append(l.cfg.Webhooks, w)
	}
}

// dropIns merges every dir/*.yaml, in name order, when dir exists. Hidden
// files (such as editor locks and Kubernetes' ..data) are skipped.
func (l *loader) dropIns(dir string) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		l.errs = append(l.errs, &Error{Pos: Pos{File: dir}, Msg: fmt.Sprintf("read %s folder: %v", DropInDir, unwrapPathError(err))})
		return
	}
	for _, e := range entries {
		name := e.Name()
		file := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, ".") || e.IsDir():
			continue
		case strings.HasSuffix(name, ".yml"):
			l.files = append(l.files, file)
			l.errs = append(l.errs, &Error{Pos: Pos{File: file}, Msg: fmt.Sprintf("%s files must end in .yaml; rename it to %s", DropInDir, strings.TrimSuffix(name, ".yml")+".yaml")})
			continue
		case !strings.HasSuffix(name, ".yaml"):
			continue
		}
		l.files = append(l.files, file)
		data, err := os.ReadFile(file)
		if err != nil {
			l.errs = append(l.errs, &Error{Pos: Pos{File: file}, Msg: fmt.Sprintf("read: %v", unwrapPathError(err))})
			continue
		}
		d := &decoder{file: file, dir: dir, errs: &l.errs}
		root := d.parse(data)
		if root == nil {
			continue
		}
		if root.Kind != yaml.MappingNode {
			d.errorf(root, "", "must be a mapping holding a webhooks: list, got %s", describe(root))
			continue
		}
		for _, kv := range d.pairs(root, "") {
			if kv.key.Value != "webhooks" {
				d.errorf(kv.key, "", "unknown key %q (a %s file holds only a webhooks: list; other settings belong in the main file)", kv.key.Value, DropInDir)
				continue
			}
			if !isNull(kv.val) {
				l.webhooks(d, kv.val)
			}
		}
	}
}

// parse returns the root node of the file's YAML document, or nil when the
// file is empty or not valid YAML (recorded as a problem).
func (d *decoder) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.errorf(&next, "", "a second YAML document (after ---); keep one document per file")
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil
	}
	memo := map[*yaml.Node]int{}
	if n := expandedSize(doc.Content[0], memo); n > len(memo)+maxAliased {
		d.errorf(doc.Content[0], "", "aliases (*name) add over %d values to the file once followed; write the settings out instead", maxAliased)
		return nil
	}
	return deref(doc.Content[0])
}

// maxAliased bounds the values aliases add to a file once followed: a few
// lines of aliases of aliases can stand for millions of values (the
// "billion laughs"), each read and checked in turn. Sharing a block of
// headers among many webhooks stays far below it.
const maxAliased = 10_000

// expandedSize counts the nodes under n with aliases followed, stopping
// early once far past the bound. It visits each node once: sizes are kept
// in memo (-1 while a node is being counted, so a cycle counts once), so
// len(memo) is the number of nodes in the file.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int) int {
	if size, ok := memo[n]; ok {
		return max(size, 1)
	}
	memo[n] = -1
	size := 1
	switch {
	case n.Kind == yaml.AliasNode && n.Alias != nil:
		size = expandedSize(n.Alias, memo)
	default:
		for _, c := range n.Content {
			if size += expandedSize(c, memo); size > 100*maxAliased {
				break
			}
		}
	}
	memo[n] = size
	return size
}

// syntaxError records a YAML parse error, at its line when it names one.
// The parser gives no column, so the column is 1.
func (d *decoder) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := Pos{File: d.file}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				if zeroBasedLine(text) {
					line++
				}
				pos.Line, pos.Col, msg = line, 1, text
			}
		}
	}
	*d.errs = append(*d.errs, &Error{Pos: pos, Msg: "invalid YAML: " + msg})
}

// zeroBasedLine reports whether yaml.v3 counts lines from 0 in a message:
// it does for its parser's problems (as opposed to its scanner's), which
// point at the start of the enclosing block or list.
func zeroBasedLine(problem string) bool {
	switch problem {
	case "did not find expected <stream-start>",
		"did not find expected <document start>",
		"did not find expected node content",
		"did not find expected '-' indicator",
		"did not find expected key",
		"did not find expected ',' or ']'",
		"did not find expected ',' or '}'",
		"found undefined tag handle",
		"found duplicate %YAML directive",
		"found duplicate %TAG directive",
		"found incompatible YAML document":
		return true
	}
	return false
}

// valueOf returns the value of key in mapping n, or n itself when n has no
// such key, so a problem about the key can still be placed.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return n
}
