package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxConcurrency caps a webhook's concurrency setting.
const MaxConcurrency = 1024

// webhookKeys lists the keys a webhook may have. It is a function so the
// list cannot be changed by accident from elsewhere.
func webhookKeys() []string {
	return []string{
		"id", "description", "type", "events", "event", "url", "content_type",
		"delay", "headers", "secret", "secrets", "notify_on_failure", "timeout",
		"concurrency", "success_status", "retry", "batch", "enabled", "command",
		"env", "workdir", "handshake", "circuit", "tls",
	}
}

// webhook reads and checks one webhook definition. It returns nil when n
// is not a mapping; otherwise a webhook with defaults applied, whatever
// problems it had (they are recorded).
func (d *decoder) webhook(n *yaml.Node, path string, cat *Catalog, haveNotify bool) *Webhook {
	m, ok := d.mapping(n, path, webhookKeys()...)
	if !ok {
		return nil
	}
	w := &Webhook{
		Type:        TypeHTTP,
		ContentType: ContentJSON,
		Timeout:     DefaultTimeout,
		Concurrency: DefaultConcurrency,
		Retry:       Retry{Attempts: DefaultRetryAttempts, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff},
		Enabled:     true,
		Pos:         d.pos(m.node),
	}
	at := func(key string) string { return join(path, key) }

	if v := m.get("id"); v == nil {
		d.errorf(m.node, path, "id is missing; give the webhook a stable id such as crm-new-lead")
	} else if s, ok := d.str(v, at("id")); ok {
		if msg := checkID(s); msg != "" {
			d.errorf(v, at("id"), "%s", msg)
		} else {
			w.ID = s
		}
	}
	if v := m.get("description"); v != nil {
		w.Description, _ = d.str(v, at("description"))
	}
	if v := m.get("type"); v != nil {
		if s, ok := d.str(v, at("type")); ok {
			if s == TypeHTTP || s == TypeCommand {
				w.Type = s
			} else {
				d.errorf(v, at("type"), "must be http or command (got %q)", v.Value)
			}
		}
	}
	w.Events = d.webhookEvents(m, path, cat)
	if v := m.get("content_type"); v != nil {
		if s, ok := d.str(v, at("content_type")); ok {
			if ct, ok := contentType(s); ok {
				w.ContentType = ct
			} else {
				d.errorf(v, at("content_type"), "must be %s, %s or %s (got %q)", ContentJSON, ContentForm, ContentText, v.Value)
			}
		}
	}
	if v := m.get("delay"); v != nil {
		w.Delay, _ = d.duration(v, at("delay"))
	}
	if v := m.get("headers"); v != nil {
		w.Headers = d.headers(v, at("headers"))
	}
	w.Secrets = d.secrets(m, path)
	if v := m.get("notify_on_failure"); v != nil {
		w.NotifyOnFailure, _ = d.bool(v, at("notify_on_failure"))
		if w.NotifyOnFailure && !haveNotify {
			d.errorf(v, at("notify_on_failure"), "no notify: block is configured; add notify.url (or notify.command) at the top level, or set this to false")
		}
	}
	if v := m.get("timeout"); v != nil {
		if t, ok := d.positive(v, at("timeout")); ok {
			w.Timeout = t
		}
	}
	if v := m.get("concurrency"); v != nil {
		if c, ok := d.intRange(v, at("concurrency"), 1, MaxConcurrency); ok {
			w.Concurrency = c
		}
	}
	if v := m.get("success_status"); v != nil {
		w.SuccessStatus = d.statuses(v, at("success_status"))
	}
	if v := m.get("retry"); v != nil {
		d.retry(v, at("retry"), &w.Retry)
	}
	if v := m.get("batch"); v != nil {
		d.batch(v, at("batch"), w)
	}
	if v := m.get("enabled"); v != nil {
		if b, ok := d.bool(v, at("enabled")); ok {
			w.Enabled = b
		}
	}
	if v := m.get("circuit"); v != nil {
		w.Circuit = d.circuit(v, at("circuit"))
	}
	if v := m.get("tls"); v != nil {
		w.TLS = d.tls(v, at("tls"))
	}
	if v := m.get("handshake"); v != nil {
		w.Handshake, _ = d.bool(v, at("handshake"))
	}
	if v := m.get("command"); v != nil {
		w.Command = d.command(v, at("command"))
	}
	if v := m.get("env"); v != nil {
		w.Env = d.env(v, at("env"))
	}
	if v := m.get("workdir"); v != nil {
		w.Workdir = d.workdir(v, at("workdir"))
	}

	if w.Type == TypeCommand {
		d.commandOnly(m, path)
	} else {
		d.httpOnly(m, path, w)
	}
	if w.Batch != nil && w.ContentType != ContentJSON {
		d.errorf(m.get("batch"), at("batch"), "batching needs content_type %s (this webhook sends %s); remove batch or set batch: off", ContentJSON, w.ContentType)
	}
	return w
}

// httpOnly checks the settings of a type http webhook.
func (d *decoder) httpOnly(m mapping, path string, w *Webhook) {
	if v := m.get("url"); v == nil {
		d.errorf(m.node, path, "url is missing; set the receiver's http:// or https:// URL (or type: command to run a program)")
	} else {
		w.URL, _ = d.url(v, join(path, "url"))
	}
	for _, key := range []string{"command", "env", "workdir"} {
		if k := m.keys[key]; k != nil {
			d.errorf(k, join(path, key), "only for type: command; add type: command to run a program, or remove %s", key)
		}
	}
}

// commandOnly checks the settings of a type command webhook.
func (d *decoder) commandOnly(m mapping, path string) {
	if m.get("command") == nil {
		d.errorf(m.node, path, "command is missing; type: command needs the program's argv, as in command: [/usr/local/bin/crm-sync, --mode, lead]")
	}
	for _, key := range []string{"url", "headers", "success_status", "handshake", "tls"} {
		if k := m.keys[key]; k != nil {
			d.errorf(k, join(path, key), "only for type: http; a command webhook runs its program instead, so remove %s", key)
		}
	}
}

// checkID returns why id is not a valid webhook id, or "".
func checkID(id string) string {
	if strings.HasPrefix(id, "_") {
		return fmt.Sprintf("ids starting with _ are reserved for sidehook (got %q)", id)
	}
	for i, r := range id {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
		case i > 0 && (r == '-' || r == '_'):
		default:
			return fmt.Sprintf("must be lowercase letters, digits, - and _, starting with a letter or digit, such as crm-new-lead (got %q)", id)
		}
	}
	if id == "" {
		return "must not be empty; give the webhook a stable id such as crm-new-lead"
	}
	return ""
}

// webhookEvents reads events (a list) or event (one), resolving names to
// codes, without repeats, in the order given.
func (d *decoder) webhookEvents(m mapping, path string, cat *Catalog) []string {
	var items []*yaml.Node
	itemPath := func(i int) string { return index(join(path, "events"), i) }
	one, list := m.get("event"), m.get("events")
	switch {
	case one != nil && list != nil:
		d.errorf(m.keys["event"], join(path, "event"), "use either event or events, not both")
		return nil
	case one != nil:
		items = []*yaml.Node{one}
		itemPath = func(int) string { return join(path, "event") }
	case list != nil:
		var ok bool
		if items, ok = d.seq(list, join(path, "events")); !ok {
			return nil
		}
		if len(items) == 0 {
			d.errorf(list, join(path, "events"), "is empty; list at least one event, such as [Lead Creation] (see: sidehook events)")
			return nil
		}
	default:
		d.errorf(m.node, path, "no events; add events: [Lead Creation] or event: Lead Creation (see: sidehook events)")
		return nil
	}
	var codes []string
	for i, item := range items {
		name, ok := d.str(item, itemPath(i))
		if !ok {
			continue
		}
		et, found := cat.Lookup(name)
		if !found {
			d.errorf(item, itemPath(i), "%s", cat.UnknownEventError(name))
			continue
		}
		if !slices.Contains(codes, et.Code) {
			codes = append(codes, et.Code)
		}
	}
	return codes
}

// contentType returns the canonical form of a supported content type.
func contentType(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case ContentJSON, ContentForm, ContentText:
		return s, true
	}
	return "", false
}

// url reads an http or https URL with a host.
func (d *decoder) url(n *yaml.Node, path string) (string, bool) {
	s, expanded, ok := d.text(n, path)
	if !ok {
		return "", false
	}
	u, err := url.Parse(s)
	switch {
	case err != nil && expanded:
		// The parser's message quotes the expanded text, which may hold
		// a secret such as a token in the query.
		d.errorf(n, path, "not a valid URL once ${...} is expanded (got %q)", n.Value)
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		d.errorf(n, path, "not a valid URL: %v (got %q)", err, n.Value)
	case u.Scheme != "http" && u.Scheme != "https":
		d.errorf(n, path, "must be http or https (got %q)", n.Value)
	case u.Host == "":
		d.errorf(n, path, "has no host; write it as http://host[:port]/path (got %q)", n.Value)
	default:
		return s, true
	}
	return "", false
}

// headers reads a mapping of header names to values, keeping file order.
func (d *decoder) headers(n *yaml.Node, path string) []Header {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of Header-Name: value lines, got %s", describe(n))
		return nil
	}
	var out []Header
	seen := map[string]*yaml.Node{}
	for _, kv := range d.pairs(n, path) {
		name := kv.key.Value
		at := join(path, name)
		lower := strings.ToLower(name)
		switch {
		case !validHeaderName(name):
			d.errorf(kv.key, path, "%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)", name)
			continue
		case seen[lower] != nil:
			d.errorf(kv.key, path, "duplicate header %q (first at line %d; header names ignore case)", name, seen[lower].Line)
			continue
		case reservedHeader(lower) != "":
			d.errorf(kv.key, at, "%s", reservedHeader(lower))
			continue
		}
		seen[lower] = kv.key
		value, expanded, ok := d.text(kv.val, at)
		if !ok {
			continue
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			d.errorf(kv.val, at, "header values must not contain line breaks")
			continue
		}
		out = append(out, Header{Name: name, Value: value, Secret: expanded || secretHeader(name)})
	}
	return out
}

// reservedHeader returns why a header may not be set by hand, or "".
func reservedHeader(lower string) string {
	switch lower {
	case "content-type":
		return "set by sidehook from content_type; set content_type instead"
	case "content-length", "host", "transfer-encoding", "connection":
		return "set by sidehook's HTTP client; remove it"
	case "webhook-id", "webhook-timestamp", "webhook-signature":
		return "set by sidehook when secret is set; remove it"
	}
	return ""
}

// secretHeader reports whether a header's name says it carries a
// credential, so its value is redacted in history.
func secretHeader(name string) bool {
	lower := strings.ToLower(name)
	for _, word := range []string{"authorization", "auth", "key", "token", "secret", "password", "signature", "cookie"} {
		if strings.Contains(lower, word) {
			return true
		}
	}
	return false
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// secrets reads secret (one key) or secrets (a list for rotation, each a
// key or {secret, not_after}).
func (d *decoder) secrets(m mapping, path string) []Secret {
	one, list := m.get("secret"), m.get("secrets")
	switch {
	case one != nil && list != nil:
		d.errorf(m.keys["secrets"], join(path, "secrets"), "use either secret or secrets, not both")
	case one != nil:
		if key, ok := d.secretKey(one, join(path, "secret")); ok {
			return []Secret{{Key: key}}
		}
	case list != nil:
		items, ok := d.seq(list, join(path, "secrets"))
		if !ok {
			return nil
		}
		var out []Secret
		for i, item := range items {
			if s, ok := d.secretItem(item, index(join(path, "secrets"), i)); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// secretItem reads one entry of a secrets list.
func (d *decoder) secretItem(n *yaml.Node, path string) (Secret, bool) {
	if deref(n).Kind == yaml.ScalarNode {
		key, ok := d.secretKey(n, path)
		return Secret{Key: key}, ok
	}
	m, ok := d.mapping(n, path, "secret", "not_after")
	if !ok {
		return Secret{}, false
	}
	var s Secret
	v := m.get("secret")
	if v == nil {
		d.errorf(m.node, path, "secret is missing; each entry needs secret: whsec_... and may have not_after: RFC3339 time")
		ok = false
	} else {
		s.Key, ok = d.secretKey(v, join(path, "secret"))
	}
	if v := m.get("not_after"); v != nil {
		text, textOK := d.str(v, join(path, "not_after"))
		if !textOK {
			return s, false
		}
		t, err := time.Parse(time.RFC3339, text)
		if err != nil {
			d.errorf(v, join(path, "not_after"), "must be an RFC3339 time such as 2026-01-31T00:00:00Z (got %q)", v.Value)
			return s, false
		}
		s.NotAfter = t
	}
	return s, ok
}

// secretKey decodes a whsec_<base64> signing secret. Messages never
// repeat the value.
func (d *decoder) secretKey(n *yaml.Node, path string) ([]byte, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return nil, false
	}
	b64, found := strings.CutPrefix(s, "whsec_")
	if !found {
		d.errorf(n, path, "must start with whsec_ followed by a base64 key (generate one with: echo whsec_$(openssl rand -base64 32))")
		return nil, false
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		d.errorf(n, path, "the part after whsec_ must be a non-empty standard base64 key (generate one with: echo whsec_$(openssl rand -base64 32))")
		return nil, false
	}
	return key, true
}

// statuses reads success_status: a list of HTTP status codes.
func (d *decoder) statuses(n *yaml.Node, path string) []int {
	items, ok := d.seq(n, path)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, path, "is empty; list the codes that count as success, such as [200], or remove it to accept any 2xx")
		return nil
	}
	var out []int
	for i, item := range items {
		if code, ok := d.intRange(item, index(path, i), 100, 599); ok {
			out = append(out, code)
		}
	}
	return out
}

// retry reads a retry policy over the defaults in r.
func (d *decoder) retry(n *yaml.Node, path string, r *Retry) {
	m, ok := d.mapping(n, path, "attempts", "backoff", "max_backoff")
	if !ok {
		return
	}
	if v := m.get("attempts"); v != nil {
		if a, ok := d.int(v, join(path, "attempts")); ok {
			if a < 1 {
				d.errorf(v, join(path, "attempts"), "must be at least 1, the first try (got %d)", a)
			} else {
				r.Attempts = a
			}
		}
	}
	backoffOK, maxOK := true, true
	if v := m.get("backoff"); v != nil {
		r.Backoff, backoffOK = d.duration(v, join(path, "backoff"))
	}
	if v := m.get("max_backoff"); v != nil {
		r.MaxBackoff, maxOK = d.duration(v, join(path, "max_backoff"))
	}
	switch {
	case !backoffOK || !maxOK || r.MaxBackoff >= r.Backoff:
	case m.get("max_backoff") != nil:
		d.errorf(m.get("max_backoff"), join(path, "max_backoff"), "must not be less than backoff (got %s, backoff is %s)", short(r.MaxBackoff), short(r.Backoff))
	default:
		d.errorf(m.get("backoff"), join(path, "backoff"), "is more than the default max_backoff %s; lower it or set max_backoff (got %s)", short(r.MaxBackoff), short(r.Backoff))
	}
}

// circuit reads a webhook's circuit breaker: {failures, probe}.
func (d *decoder) circuit(n *yaml.Node, path string) *Circuit {
	m, ok := d.mapping(n, path, "failures", "probe")
	if !ok {
		return nil
	}
	c := &Circuit{Failures: DefaultCircuitFailures, Probe: DefaultCircuitProbe}
	if v := m.get("failures"); v != nil {
		if f, ok := d.int(v, join(path, "failures")); ok {
			if f < 1 {
				d.errorf(v, join(path, "failures"), "must be at least 1 (got %d); leave circuit out to turn it off", f)
			} else {
				c.Failures = f
			}
		}
	}
	if v := m.get("probe"); v != nil {
		if t, ok := d.positive(v, join(path, "probe")); ok {
			c.Probe = t
		}
	}
	return c
}

// short formats a duration without zero units: 1h, not 1h0m0s.
func short(t time.Duration) string {
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// batch reads batch: off or batch: {window, max}.
func (d *decoder) batch(n *yaml.Node, path string, w *Webhook) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		s, ok := d.str(n, path)
		if !ok {
			return
		}
		if s != "off" {
			d.errorf(n, path, "must be off or a mapping such as {window: 1m, max: 100} (got %q)", n.Value)
			return
		}
		w.BatchOff = true
		return
	}
	m, ok := d.mapping(n, path, "window", "max")
	if !ok {
		return
	}
	b := &Batch{Window: DefaultBatchWindow, Max: DefaultBatchMax}
	if v := m.get("window"); v != nil {
		if t, ok := d.positive(v, join(path, "window")); ok {
			b.Window = t
		}
	}
	if v := m.get("max"); v != nil {
		if x, ok := d.int(v, join(path, "max")); ok {
			if x < 1 {
				d.errorf(v, join(path, "max"), "must be at least 1 (got %d)", x)
			} else {
				b.Max = x
			}
		}
	}
	w.Batch = b
}

// command reads an argv list and checks that its program can be run. A
// program without a slash is looked up in PATH; a relative path with a
// slash is relative to the file's folder and is returned made so.
func (d *decoder) command(n *yaml.Node, path string) []string {
	if deref(n).Kind == yaml.ScalarNode {
		d.errorf(n, path, "must be a list (argv, never a shell string), such as [/usr/local/bin/crm-sync, --mode, lead]")
		return nil
	}
	argv, ok := d.strList(n, path)
	if !ok {
		return nil
	}
	if len(argv) == 0 || argv[0] == "" {
		d.errorf(n, path, "is empty; give the program and its arguments, such as [/usr/local/bin/crm-sync, --mode, lead]")
		return nil
	}
	prog := deref(n).Content[0]
	if !strings.ContainsRune(argv[0], '/') {
		if _, err := exec.LookPath(argv[0]); err != nil {
			d.errorf(prog, index(path, 0), "program %q is not in PATH; give its absolute path", argv[0])
		}
		return argv
	}
	// Absolute, so that the program is the one validated: a path relative
	// to a config file named relatively ("./crm-sync" beside webhooks.yaml
	// becomes "crm-sync") would otherwise be looked up in PATH, and a
	// relative path is taken from workdir when the program is started.
	argv[0] = d.resolvePath(argv[0])
	if abs, err := filepath.Abs(argv[0]); err == nil {
		argv[0] = abs
	}
	if msg := checkProgram(argv[0]); msg != "" {
		d.errorf(prog, index(path, 0), "%s", msg)
	}
	return argv
}

// checkProgram returns why the file at p cannot be run, or "".
func checkProgram(p string) string {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("program %s does not exist; install it or fix the path", p)
	case err != nil:
		return fmt.Sprintf("program %s cannot be checked: %v", p, err)
	case fi.IsDir():
		return fmt.Sprintf("program %s is a folder, not a program", p)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Sprintf("program %s is not executable; run chmod +x %s", p, p)
	}
	return ""
}

// env reads a command's environment: NAME: value pairs.
func (d *decoder) env(n *yaml.Node, path string) map[string]string {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of NAME: value lines, got %s", describe(n))
		return nil
	}
	out := map[string]string{}
	for _, kv := range d.pairs(n, path) {
		name := kv.key.Value
		switch {
		case !validEnvName(name):
			d.errorf(kv.key, path, "%q is not a valid variable name (letters, digits and _, not starting with a digit)", name)
			continue
		case strings.HasPrefix(name, "SIDEHOOK_"):
			d.errorf(kv.key, path, "%q: names starting with SIDEHOOK_ are set by sidehook; choose another name", name)
			continue
		}
		if v, ok := d.str(kv.val, join(path, name)); ok {
			out[name] = v
		}
	}
	return out
}

// workdir reads a command's working folder, which must exist.
func (d *decoder) workdir(n *yaml.Node, path string) string {
	dir, ok := d.path(n, path)
	if !ok {
		return ""
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		d.errorf(n, path, "folder %s cannot be used: %v", dir, unwrapPathError(err))
	case !fi.IsDir():
		d.errorf(n, path, "%s is not a folder", dir)
	}
	return dir
}

// unwrapPathError drops the operation and path from an *fs.PathError,
// which the message already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// notify reads the top-level notify block.
func (d *decoder) notify(n *yaml.Node, path string) *Notify {
	m, ok := d.mapping(n, path, "url", "headers", "secret", "secrets", "command", "timeout", "window")
	if !ok {
		return nil
	}
	no := &Notify{Timeout: DefaultTimeout, Window: DefaultNoticeWindow}
	u, c := m.get("url"), m.get("command")
	switch {
	case u != nil && c != nil:
		d.errorf(m.keys["command"], join(path, "command"), "use either url or command, not both")
	case u == nil && c == nil:
		d.errorf(m.node, path, "needs url (where failure notices are posted) or command (a program that gets them on stdin)")
	case u != nil:
		no.URL, _ = d.url(u, join(path, "url"))
	default:
		no.Command = d.command(c, join(path, "command"))
	}
	if v := m.get("headers"); v != nil {
		no.Headers = d.headers(v, join(path, "headers"))
	}
	no.Secrets = d.secrets(m, path)
	if v := m.get("timeout"); v != nil {
		if t, ok := d.positive(v, join(path, "timeout")); ok {
			no.Timeout = t
		}
	}
	if v := m.get("window"); v != nil {
		if t, ok := d.positive(v, join(path, "window")); ok {
			no.Window = t
		}
	}
	return no
}

// customEvents reads the top-level events list of custom event types.
func (d *decoder) customEvents(n *yaml.Node, path string) []EventType {
	items, ok := d.seq(n, path)
	if !ok {
		return nil
	}
	var out []EventType
	for i, item := range items {
		at := index(path, i)
		m, ok := d.mapping(item, at, "name", "code", "batched")
		if !ok {
			continue
		}
		var et EventType
		nameNode, codeNode := m.get("name"), m.get("code")
		if nameNode == nil || codeNode == nil {
			d.errorf(m.node, at, "a custom event needs both name and code, such as {name: Invoice Paid, code: Invoice_Post_Paid}")
			continue
		}
		name, nameOK := d.str(nameNode, join(at, "name"))
		code, codeOK := d.str(codeNode, join(at, "code"))
		if v := m.get("batched"); v != nil {
			et.Batched, _ = d.bool(v, join(at, "batched"))
		}
		if !nameOK || !codeOK {
			continue
		}
		known := NewCatalog(out...)
		switch {
		case strings.TrimSpace(name) == "":
			d.errorf(nameNode, join(at, "name"), "must not be empty")
		case !validCode(code):
			d.errorf(codeNode, join(at, "code"), "must be letters, digits and _, such as Invoice_Post_Paid (got %q)", codeNode.Value)
		case isKnown(known, name):
			d.errorf(nameNode, join(at, "name"), "%q is already an event (see: sidehook events); choose another name", name)
		case isKnown(known, code):
			d.errorf(codeNode, join(at, "code"), "%q is already an event (see: sidehook events); choose another code", code)
		default:
			et.Name, et.Code = name, code
			out = append(out, et)
		}
	}
	return out
}

// isKnown reports whether s is a name (any case) or code in cat.
func isKnown(cat *Catalog, s string) bool {
	_, ok := cat.Lookup(s)
	return ok
}

// validCode reports whether s is a usable event code.
func validCode(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
}

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path
// holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// socket reads the Unix socket path.
func (d *decoder) socket(n *yaml.Node, path string) (string, bool) {
	p, ok := d.path(n, path)
	if ok && len(p) > maxSocketPath {
		d.errorf(n, path, "%s is %d bytes long; Unix socket paths must be at most %d, so choose a shorter one", p, len(p), maxSocketPath)
		return "", false
	}
	return p, ok
}

// listen checks a host:port address.
func (d *decoder) listen(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok || s == "" {
		return "", ok
	}
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		if p, perr := strconv.Atoi(port); perr != nil || p < 0 || p > 65535 {
			err = fmt.Errorf("bad port")
		}
	}
	if err != nil {
		d.errorf(n, path, "must be host:port such as 127.0.0.1:8787, or \"\" for no TCP listener (got %q)", n.Value)
		return "", false
	}
	return s, true
}
