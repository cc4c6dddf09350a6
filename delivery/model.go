package delivery

import (
	"encoding/json"
	"time"
)

// Status is where a delivery stands.
type Status string

// The three delivery statuses of the contract.
const (
	StatusInQueue Status = "in_queue"
	StatusSuccess Status = "success"
	StatusFailure Status = "failure"
)

// Valid reports whether s is one of the three statuses.
func (s Status) Valid() bool {
	return s == StatusInQueue || s == StatusSuccess || s == StatusFailure
}

func (s Status) byte() byte {
	switch s {
	case StatusSuccess:
		return 's'
	case StatusFailure:
		return 'f'
	}
	return 'q'
}

// Delivery is one message to one webhook: a single event, or a batch of
// events of one type. It is what the history shows.
type Delivery struct {
	ID        string    `json:"id"`
	Webhook   string    `json:"webhook"`
	EventType string    `json:"event_type"`
	EventIDs  []string  `json:"event_ids"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	DueAt     time.Time `json:"due_at"`
	// FinishedAt is when the delivery reached success or failure.
	FinishedAt *time.Time `json:"finished_at"`
	// LastAttemptAt and LastStatusCode summarise the newest attempt.
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatusCode int        `json:"last_status_code"`
	LastError      string     `json:"last_error,omitempty"`
	// AttemptCount counts every attempt, manual ones included.
	AttemptCount int `json:"attempt_count"`
	// Attempts is filled only when one delivery is read whole.
	Attempts []Attempt `json:"attempts"`
}

// record is a delivery as stored (see codec.go): the summary without its
// attempts or members, which live under their own keys.
type record struct {
	ID        string
	Webhook   string
	EventType string
	Status    Status
	CreatedAt time.Time
	DueAt     time.Time
	// Batch is true when other events may still join (until Sealed).
	Batch  bool
	Sealed bool
	// Event is the only member of a delivery that is not a batch, kept
	// here to spare a scan of the member keys on the hot path.
	Event string
	// Group further splits the batches of a webhook and event type: the
	// failure notices of each webhook are coalesced apart.
	Group      string
	FinishedAt *time.Time
	LastAt     *time.Time
	LastCode   int
	LastError  string
	// Tries counts every attempt; AutoTries only the scheduled ones,
	// which the retry budget limits.
	Tries     int
	AutoTries int
}

func (r *record) delivery() Delivery {
	return Delivery{
		ID:             r.ID,
		Webhook:        r.Webhook,
		EventType:      r.EventType,
		EventIDs:       []string{},
		Status:         r.Status,
		CreatedAt:      r.CreatedAt,
		DueAt:          r.DueAt,
		FinishedAt:     r.FinishedAt,
		LastAttemptAt:  r.LastAt,
		LastStatusCode: r.LastCode,
		LastError:      r.LastError,
		AttemptCount:   r.Tries,
		Attempts:       []Attempt{},
	}
}

// Attempt is one try at a delivery: what was sent and what came back.
type Attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	Manual     bool      `json:"manual"`
	Request    *Request  `json:"request"`
	Response   *Response `json:"response"`
	Error      string    `json:"error"`
	// RetryAt is when the next automatic attempt is due, if any.
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

// Request is the request of an attempt as recorded, secrets redacted.
type Request struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	// Command is the argv of a command webhook.
	Command []string `json:"command,omitempty"`
}

// Response is what the receiver answered. For a command webhook, Status is
// the exit status and Body its standard output.
type Response struct {
	Status    int               `json:"status"`
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
	Truncated bool              `json:"truncated"`
}

// event is an accepted event as stored (see codec.go): its metadata, then
// its data exactly as posted (encoding/json would compact it).
type event struct {
	Type       string          `json:"t"`
	ReceivedAt time.Time       `json:"r"`
	Data       json.RawMessage `json:"-"`
	// Deliveries lists the deliveries that carry the event; Refs counts
	// those not yet expired, so the event goes with the last of them.
	Deliveries []string `json:"ds"`
	Refs       int      `json:"rf"`
}

// openBatch is a batch delivery that more events may still join.
type openBatch struct {
	Delivery string    `json:"d"`
	Closes   time.Time `json:"c"`
	Count    int       `json:"n"`
	Max      int       `json:"m"`
	Due      time.Time `json:"du"`
}

// Counts holds how many deliveries a webhook has in each status.
type Counts struct {
	InQueue int64 `json:"in_queue"`
	Success int64 `json:"success"`
	Failure int64 `json:"failure"`
}

func (c *Counts) add(s Status, n int64) {
	switch s {
	case StatusInQueue:
		c.InQueue += n
	case StatusSuccess:
		c.Success += n
	case StatusFailure:
		c.Failure += n
	}
}
