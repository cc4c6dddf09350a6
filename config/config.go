// Package config defines sidehook's configuration: the YAML schema, its
// defaults, ${VAR} and ${file:...} expansion, validation with file:line:col
// positions, and the event catalog the webhooks subscribe to.
package config

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Webhook types.
const (
	TypeHTTP    = "http"
	TypeCommand = "command"
)

// Content types a webhook may send.
const (
	ContentJSON = "application/json"
	ContentForm = "application/x-www-form-urlencoded"
	ContentText = "text/plain"
)

// Defaults applied to every webhook that leaves a setting out.
const (
	DefaultSocket           = "/run/sidehook/sidehook.sock"
	DefaultDataDir          = "/var/lib/sidehook"
	DefaultConfigFile       = "/etc/sidehook/webhooks.yaml"
	DefaultHistoryRetention = 720 * time.Hour
	DefaultTimeout          = 10 * time.Second
	DefaultConcurrency      = 4
	DefaultRetryAttempts    = 3
	DefaultBackoff          = 10 * time.Second
	DefaultMaxBackoff       = time.Hour
	DefaultBatchWindow      = time.Minute
	DefaultBatchMax         = 100
	DefaultNoticeWindow     = time.Minute
	DefaultCircuitFailures  = 10
	DefaultCircuitProbe     = 30 * time.Second
)

// Config is one loaded, expanded and validated configuration. It is never
// modified after Load returns; a reload builds a new one.
type Config struct {
	// File is the path the configuration was read from.
	File string
	// Socket is the Unix socket for events and the API.
	Socket string
	// Listen is the optional TCP listener address; "" means none.
	Listen string
	// SocketGroup is the group the socket is given; "" keeps the daemon's.
	SocketGroup string
	// ListenPublic lets Listen be an address other than loopback; it
	// needs APIToken.
	ListenPublic bool
	// APIToken, when set, is the bearer token every request on the TCP
	// listener must carry. It is a secret: never shown.
	APIToken string `json:"-"`
	// Network is the outbound policy; nil applies the defaults.
	Network *Network
	// DataDir is where the store lives ("" when the file does not say).
	DataDir string
	// HistoryRetention is how long finished deliveries are kept.
	HistoryRetention time.Duration
	// MinFreeSpace is the disk space the store keeps in reserve; 0 means
	// the default (128 MiB).
	MinFreeSpace int64
	// Pprof serves Go's profiler at /debug/pprof/ on the Unix socket
	// (never on the TCP listener).
	Pprof bool
	// Notify is where failure notices go; nil when not configured.
	Notify *Notify
	// Limits bound what API clients send; defaults when the file has no
	// limits: block.
	Limits Limits
	// Catalog holds the built-in event types plus the file's custom ones.
	Catalog *Catalog
	// Webhooks in file order (the main file first, then webhooks.d/).
	Webhooks []*Webhook
}

// Webhook returns the webhook with the given id, or nil.
func (c *Config) Webhook(id string) *Webhook {
	for _, w := range c.Webhooks {
		if w.ID == id {
			return w
		}
	}
	return nil
}

// Notify is the target of failure notices.
type Notify struct {
	URL     string
	Headers []Header
	Secrets []Secret
	Command []string
	Timeout time.Duration
	// Window coalesces the notices of one webhook: the first failure
	// opens it, and one notice lists every failure until it closes.
	Window time.Duration
}

// Header is one custom request header. Secret is true when its value must
// never be shown: it came from ${...} expansion or names a credential.
type Header struct {
	Name   string
	Value  string
	Secret bool
}

// Secret is one signing key, decoded from its whsec_ form.
type Secret struct {
	Key      []byte
	NotAfter time.Time // zero: no expiry
}

// Retry is a webhook's retry policy. Attempts counts the first try.
type Retry struct {
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Circuit pauses a webhook after a run of failed attempts: its deliveries
// stay queued, one probe attempt is made every Probe (doubling up to an
// hour), and the first success resumes it.
type Circuit struct {
	Failures int
	Probe    time.Duration
}

// Batch groups events for one webhook into a single request.
type Batch struct {
	Window time.Duration
	Max    int
}

// Pos is a position in a configuration file.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats p as file:line:col.
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Webhook is one webhook definition with every default applied.
type Webhook struct {
	ID          string
	Description string
	Type        string
	// Events holds the subscribed event codes.
	Events      []string
	URL         string
	ContentType string
	Delay       time.Duration
	Headers     []Header
	Secrets     []Secret
	// NotifyOnFailure sends a notice when a delivery ends in failure.
	NotifyOnFailure bool
	Timeout         time.Duration
	Concurrency     int
	// SuccessStatus narrows success from any 2xx to these codes when set.
	SuccessStatus []int
	Retry         Retry
	// Batch is the explicit batch setting; nil with BatchOff false means
	// the default (batch activity events on JSON webhooks).
	Batch    *Batch
	BatchOff bool
	Enabled  bool
	// Circuit is the webhook's circuit breaker; nil means off.
	Circuit *Circuit
	// Handshake asks for LeadSquared's handshake when the webhook is
	// loaded: a HEAD request to URL, as sidehook ping sends, to check
	// that the receiver answers. Only for type http.
	Handshake bool
	// TLS holds the client TLS settings; nil means the defaults
	// (verification on, the system's roots, no client certificate).
	TLS *TLS
	// Command, Env and Workdir are set for type: command.
	Command []string
	Env     map[string]string
	Workdir string
	// Pos is where the webhook is defined.
	Pos Pos
}

// Subscribes reports whether the webhook receives events with this code.
func (w *Webhook) Subscribes(code string) bool {
	for _, e := range w.Events {
		if e == code {
			return true
		}
	}
	return false
}

// BatchFor returns the batching that applies to events of type et, and
// false when they are sent one by one.
func (w *Webhook) BatchFor(et EventType) (Batch, bool) {
	switch {
	case w.BatchOff:
		return Batch{}, false
	case w.Batch != nil:
		return *w.Batch, true
	case et.Batched && w.ContentType == ContentJSON:
		return Batch{Window: DefaultBatchWindow, Max: DefaultBatchMax}, true
	}
	return Batch{}, false
}

// IsSuccess reports whether an HTTP status counts as a successful attempt.
func (w *Webhook) IsSuccess(status int) bool {
	if len(w.SuccessStatus) > 0 {
		for _, s := range w.SuccessStatus {
			if s == status {
				return true
			}
		}
		return false
	}
	return status >= 200 && status <= 299
}

// EventType is one entry of the event catalog.
type EventType struct {
	Name    string `json:"name"`
	Code    string `json:"code"`
	Batched bool   `json:"batched"`
}

// Catalog maps event names (case-insensitively) and codes (exactly) to
// event types.
type Catalog struct {
	types  []EventType
	byName map[string]int
	byCode map[string]int
}

// NewCatalog returns the built-in catalog extended with custom types.
func NewCatalog(custom ...EventType) *Catalog {
	c := &Catalog{byName: map[string]int{}, byCode: map[string]int{}}
	for _, t := range append(append([]EventType(nil), builtin...), custom...) {
		c.types = append(c.types, t)
		c.byName[strings.ToLower(t.Name)] = len(c.types) - 1
		c.byCode[t.Code] = len(c.types) - 1
	}
	return c
}

// Types returns every event type in catalog order.
func (c *Catalog) Types() []EventType { return append([]EventType(nil), c.types...) }

// Lookup finds an event type by name (any case) or by code (exact).
func (c *Catalog) Lookup(nameOrCode string) (EventType, bool) {
	if i, ok := c.byCode[nameOrCode]; ok {
		return c.types[i], true
	}
	if i, ok := c.byName[strings.ToLower(nameOrCode)]; ok {
		return c.types[i], true
	}
	return EventType{}, false
}

// Suggest returns the catalog name closest to an unknown name, or "" when
// nothing is close enough to be a likely typo.
//
// Names whose length alone puts them too far from a candidate are not
// compared with it, so a long name (an API client may post one of a
// megabyte) costs one pass over it rather than an edit distance with
// every catalog entry.
func (c *Catalog) Suggest(unknown string) string {
	best, bestDist := "", -1
	limit := max(3, len(unknown)/3)
	u := strings.ToLower(unknown)
	ulen := utf8.RuneCountInString(u)
	for _, t := range c.types {
		for _, cand := range []string{t.Name, t.Code} {
			if diff := ulen - utf8.RuneCountInString(cand); diff > limit || -diff > limit {
				continue // the distance is at least diff
			}
			d := levenshtein(u, strings.ToLower(cand))
			if bestDist < 0 || d < bestDist {
				best, bestDist = cand, d
			}
		}
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// maxQuoted is the most of an unknown name a message repeats.
const maxQuoted = 100

// UnknownEventError is the message for an event name not in the catalog.
func (c *Catalog) UnknownEventError(name string) string {
	quoted := fmt.Sprintf("%q", name)
	if len(name) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		quoted = fmt.Sprintf("%q... (%d bytes)", name[:cut], len(name))
	}
	if s := c.Suggest(name); s != "" {
		return fmt.Sprintf("unknown event %s (did you mean %q? see: sidehook events)", quoted, s)
	}
	return fmt.Sprintf("unknown event %s (see: sidehook events)", quoted)
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

var builtin = []EventType{
	{"Account Activity Create", "AccountActivity_Post_Create", true},
	{"Account Activity Update", "AccountActivity_Post_Update", true},
	{"Account Create", "Account_Post_Create", false},
	{"Account Delete", "Account_Post_Delete", false},
	{"Account Update", "Account_Post_Update", false},
	{"Landing Page Submission", "LandingPage_Post_Submit", false},
	{"Lead Activity Creation", "LeadActivity_Post_Create", true},
	{"Lead Activity Update", "LeadActivity_Post_Update", true},
	{"Lead Creation", "Lead_Post_Create", false},
	{"Lead Delete", "Lead_Post_Delete", false},
	{"Lead Field Value Change", "Lead_Post_FieldValueChange", false},
	{"Lead Merge", "Lead_Post_Merge", false},
	{"Lead Ownership Change", "Lead_Post_OwnershipChange", false},
	{"Lead Score Change", "Lead_Post_ScoreChange", false},
	{"Lead Stage Change", "Lead_Post_StageChange", false},
	{"Lead Update", "Lead_Post_Update", false},
	{"Leave Create", "Leave_Post_Create", false},
	{"Leave Delete", "Leave_Post_Delete", false},
	{"Leave Update", "Leave_Post_Update", false},
	{"Opportunity Create", "Opportunity_Post_Create", false},
	{"Opportunity Delete", "Opportunity_Post_Delete", false},
	{"Opportunity Field Value Change", "Opportunity_Post_FieldValueChange", false},
	{"Opportunity Stage/Status Change", "Opportunity_Post_StatusChange", false},
	{"Opportunity Update", "Opportunity_Post_Update", false},
	{"Product Create", "Product_Post_Create", false},
	{"Product Delete", "Product_Post_Delete", false},
	{"Product Update", "Product_Post_Update", false},
	{"Sales Activity Create", "SalesActivity_Post_Create", true},
	{"Sales Activity Update", "SalesActivity_Post_Update", true},
	{"Sales Activity Cancel", "SalesActivity_Post_Cancel", true},
	{"Task Cancel", "Task_Post_Cancel", false},
	{"Task Complete", "Task_Post_Complete", false},
	{"Task Create", "Task_Post_Create", false},
	{"Task Reminder", "Task_Post_Reminder", false},
	{"Task Update", "Task_Post_Update", false},
	{"User Activate/Deactivate", "User_Post_StatusChange", false},
	{"User Availability Status Change", "User_Post_AvailabilityChange", false},
	{"User Create", "User_Post_Create", false},
	{"User Update", "User_Post_Update", false},
}
