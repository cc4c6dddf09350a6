package daemon

import (
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons an event is rejected, as sidehook_events_rejected_total labels
// them.
const (
	rejectMalformed    = "malformed"
	rejectUnknownEvent = "unknown_event"
	rejectTooLarge     = "too_large"
	rejectMediaType    = "unsupported_media_type"
	rejectStorage      = "storage"
)

// daemonMetrics are the daemon's own collectors; the engine registers
// its own (events accepted, deliveries, attempts, queue depth).
type daemonMetrics struct {
	rejected   *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	lastReload prometheus.Gauge
}

func newDaemonMetrics(d *Daemon) *daemonMetrics {
	m := &daemonMetrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_events_rejected_total",
			Help: "Event requests refused, by reason (malformed, unknown_event, too_large, unsupported_media_type, storage).",
		}, []string{"reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_config_reloads_total",
			Help: "Configuration reloads, by result (ok, error).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sidehook_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded, in Unix seconds.",
		}),
	}
	for _, r := range []string{rejectMalformed, rejectUnknownEvent, rejectTooLarge, rejectMediaType, rejectStorage} {
		m.rejected.WithLabelValues(r)
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("error")
	m.lastReload.SetToCurrentTime()
	d.reg.MustRegister(m.rejected, m.reloads, m.lastReload,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sidehook_config_stale",
			Help: "1 when the config file on disk was refused and the previous config runs instead.",
		}, func() float64 {
			if d.configErr.Load() != nil {
				return 1
			}
			return 0
		}),
		&engineCollector{d: d},
	)
	return m
}

// reject counts a refused event request.
func (m *daemonMetrics) reject(reason string) {
	if m != nil {
		m.rejected.WithLabelValues(reason).Inc()
	}
}

// reloaded counts a reload.
func (m *daemonMetrics) reloaded(ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.lastReload.SetToCurrentTime()
}

// engineCollector reads the engine at scrape time: queue depth and age of
// the oldest due delivery per configured webhook, and the store's size.
type engineCollector struct{ d *Daemon }

var (
	webhookQueueDesc = prometheus.NewDesc("sidehook_webhook_queue_depth",
		"Queued deliveries of a webhook (delay, batch window, retry or paused).", []string{"webhook"}, nil)
	oldestDueDesc = prometheus.NewDesc("sidehook_webhook_oldest_due_age_seconds",
		"How long the earliest queued delivery of a webhook has been due; 0 when none is due yet.", []string{"webhook"}, nil)
	storeSizeDesc = prometheus.NewDesc("sidehook_store_size_bytes",
		"Bytes the store's files take on disk (tables and value log).", nil, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- webhookQueueDesc
	ch <- oldestDueDesc
	ch <- storeSizeDesc
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.d.engine
	now := time.Now()
	for _, wh := range c.d.cfg.Load().Webhooks {
		ch <- prometheus.MustNewConstMetric(webhookQueueDesc, prometheus.GaugeValue, float64(e.Counts(wh.ID).InQueue), wh.ID)
		age := 0.0
		if due, ok := e.OldestDue(wh.ID); ok && due.Before(now) {
			age = now.Sub(due).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(oldestDueDesc, prometheus.GaugeValue, age, wh.ID)
	}
	ch <- prometheus.MustNewConstMetric(storeSizeDesc, prometheus.GaugeValue, float64(dirSize(c.d.dataDirPath)))
}

// dirSize sums the disk space the files under dir take, as du counts it
// (Badger's tables and logs, and the journal's segments). Badger's own
// figure is refreshed only every minute, and its value log and memtable
// files are preallocated sparse files whose length says little.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil // gone meanwhile (compacted, collected) or not a file
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
		return nil
	})
	return n
}
