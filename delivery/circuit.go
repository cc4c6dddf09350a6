package delivery

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sidehook/sidehook/config"
)

// maxProbeWait caps the wait between probes of an open circuit.
const maxProbeWait = time.Hour

// circuitState is a webhook's circuit breaker, kept by its dispatcher. It
// lives in memory: after a restart the circuit starts closed and opens
// again after the same run of failures.
type circuitState struct {
	fails     int
	open      bool
	since     time.Time
	probeAt   time.Time
	probeWait time.Duration
}

// CircuitInfo is a webhook's circuit state as the API shows it.
type CircuitInfo struct {
	State    string     `json:"state"` // "closed", "open" or "off"
	Since    *time.Time `json:"since,omitempty"`
	Failures int        `json:"consecutive_failures"`
	ProbeAt  *time.Time `json:"next_probe_at,omitempty"`
}

// observe feeds an attempt's outcome to the circuit breaker: a run of
// failed attempts (or a 410 Gone) opens it, the first success closes it.
// probe is true for an attempt the open circuit let through as its probe;
// the failures of others (attempts in flight when it opened, manual
// retries) leave the wait for the next probe as it is.
func (d *dispatcher) observe(wh *config.Webhook, oc outcome, probe bool) {
	if wh == nil || d.s == nil {
		return
	}
	d.mu.Lock()
	c := &d.circuit
	if wh.Circuit == nil || oc.ok {
		wasOpen := c.open
		*c = circuitState{}
		d.mu.Unlock()
		if wasOpen {
			d.s.e.log.Info("circuit closed: webhook resumed", "webhook", wh.ID)
			d.s.e.metrics.circuitOpen.WithLabelValues(wh.ID).Set(0)
			d.poke() // the queue waited for a probe: send it now
		}
		return
	}
	c.fails++
	gone := oc.attempt.Response != nil && oc.attempt.Response.Status == http.StatusGone
	if !gone && c.fails < wh.Circuit.Failures {
		d.mu.Unlock()
		return
	}
	now := d.s.e.store.now()
	opened := !c.open
	switch {
	case opened:
		c.open, c.since, c.probeWait = true, now, wh.Circuit.Probe
	case !probe:
		d.mu.Unlock()
		return
	default:
		c.probeWait = min(2*c.probeWait, maxProbeWait)
	}
	c.probeAt = now.Add(c.probeWait)
	fails, wait := c.fails, c.probeWait
	d.mu.Unlock()
	if !opened {
		return
	}
	reason := fmt.Sprintf("%d consecutive failed attempts", fails)
	if gone {
		reason = "the receiver answered 410 Gone"
	}
	d.s.e.log.Warn("circuit open: webhook paused", "webhook", wh.ID, "reason", reason, "probe_in", wait.String())
	d.s.e.metrics.circuitOpen.WithLabelValues(wh.ID).Set(1)
	d.s.e.noticeCircuit(wh, fmt.Sprintf("circuit open: %s; deliveries stay queued, one probe every %s until one succeeds (last error: %s)", reason, wait, oc.attempt.Error))
}

// Circuit returns a webhook's circuit breaker state.
func (e *Engine) Circuit(wh *config.Webhook) CircuitInfo {
	if wh.Circuit == nil {
		return CircuitInfo{State: "off"}
	}
	d := e.sched.dispatcher(wh.ID)
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.circuit
	info := CircuitInfo{State: "closed", Failures: c.fails}
	if c.open {
		info.State = "open"
		info.Since, info.ProbeAt = &c.since, &c.probeAt
	}
	return info
}

// noticeCircuit sends a notice that a webhook's circuit opened, when the
// webhook notifies on failure.
func (e *Engine) noticeCircuit(wh *config.Webhook, msg string) {
	if !wh.NotifyOnFailure || e.notify.Load() == nil {
		return
	}
	err := e.store.do(e.sched.run, false, func(w *wtx) error {
		return e.stageNoticeFor(w, Failure{Webhook: wh.ID, LastError: msg, History: "sidehook webhooks", FailedAt: w.now, EventIDs: []string{}})
	})
	if err != nil {
		e.log.Error("queue circuit notice", "webhook", wh.ID, "err", err)
	}
}
