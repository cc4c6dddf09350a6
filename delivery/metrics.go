package delivery

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus collectors.
type metrics struct {
	eventsAccepted     *prometheus.CounterVec
	deliveriesFinished *prometheus.CounterVec
	attempts           *prometheus.CounterVec
	attemptSeconds     *prometheus.HistogramVec
	circuitOpen        *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, e *Engine) *metrics {
	m := &metrics{
		eventsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_events_accepted_total",
			Help: "Events accepted (acknowledged with 202), by event type.",
		}, []string{"event_type"}),
		deliveriesFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_deliveries_finished_total",
			Help: "Deliveries that reached a final status, by webhook and status.",
		}, []string{"webhook", "status"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_attempts_total",
			Help: "Delivery attempts, by webhook and outcome (2xx, 3xx, 4xx, 5xx, error).",
		}, []string{"webhook", "outcome"}),
		attemptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sidehook_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, by webhook.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"webhook"}),
	}
	m.circuitOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sidehook_circuit_open",
		Help: "1 while a webhook's circuit breaker holds its deliveries, else 0.",
	}, []string{"webhook"})
	reg.MustRegister(m.circuitOpen, m.eventsAccepted, m.deliveriesFinished, m.attempts, m.attemptSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sidehook_queue_depth",
			Help: "Deliveries waiting (delay, batch window or retry).",
		}, func() float64 { return float64(e.QueueDepth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sidehook_store_commits_total",
			Help: "Transactions committed to the store (each carries the changes that waited for it).",
		}, func() float64 { return float64(e.store.commits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sidehook_store_syncs_total",
			Help: "Syncs of the store's journal to disk (each makes every commit before it durable).",
		}, func() float64 { return float64(e.store.fsyncs.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sidehook_store_writes_total",
			Help: "Keys written or deleted in the store.",
		}, func() float64 { return float64(e.store.writes.Load()) }),
	)
	return m
}

func (m *metrics) accepted(eventType string) { m.eventsAccepted.WithLabelValues(eventType).Inc() }

func (m *metrics) finished(webhook string, st Status) {
	m.deliveriesFinished.WithLabelValues(webhook, string(st)).Inc()
}

func (m *metrics) attempted(webhook string, oc outcome) {
	class := "error"
	if r := oc.attempt.Response; r != nil {
		class = strconv.Itoa(r.Status/100) + "xx"
	}
	m.attempts.WithLabelValues(webhook, class).Inc()
	m.attemptSeconds.WithLabelValues(webhook).Observe(oc.attempt.DurationMS / 1000)
}
