package ui

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sidehook/sidehook/delivery"
)

// The bounds of a webhook's last-hour figures on the webhooks page: they
// are computed from the attempts, made in the last StatsWindow, of the
// webhook's deliveries created in that window, newest first and at most
// StatsMaxDeliveries of them, so that a busy webhook costs a bounded
// scan. A page that hit the bound says so.
const (
	StatsWindow        = time.Hour
	StatsMaxDeliveries = 1000
	// statsPage is how many deliveries one List call reads.
	statsPage = 100
	// statsTTL is how long figures are reused between page loads.
	statsTTL = 5 * time.Second
)

// Sparkline geometry: one bar per minute of the window.
const (
	sparkBars   = 60
	sparkStep   = 2.0
	sparkHeight = 24.0
)

// hourStats are a webhook's figures over the last hour.
type hourStats struct {
	// Deliveries counts the deliveries created in the window (scanned).
	Deliveries int
	Attempts   int
	OK         int
	// Rate is the share of attempts that succeeded, "" without attempts;
	// Level grades it: "good", "warn" or "bad".
	Rate  string
	Level string
	// P50 and P99 are attempt latencies, "" without attempts.
	P50, P99 string
	// Capped is set when the scan stopped at StatsMaxDeliveries.
	Capped bool
	Spark  spark
}

// spark is a sparkline of deliveries created per minute, each bar split
// by the deliveries' status.
type spark struct {
	Width, Height float64
	Bars          []sparkBar
	Max           int
	Label         string
}

// sparkBar is one minute: three stacked rectangles (success at the
// bottom, then failure, then in queue) and a tooltip.
type sparkBar struct {
	X, Full             float64
	Title               string
	Segs                []sparkSeg
	Total               int
	Success, Fail, Wait int
}

type sparkSeg struct {
	Class   string
	X, Y, H float64
}

// attemptOK reports whether an attempt succeeded: a response with no
// error for an HTTP webhook (the sender records an error for any status
// outside the webhook's success codes), exit status 0 for a command.
func attemptOK(a delivery.Attempt) bool {
	if a.Response == nil {
		return false
	}
	if a.Request != nil && len(a.Request.Command) > 0 {
		return a.Response.Status == 0
	}
	return a.Error == ""
}

// computeStats scans a webhook's newest deliveries for its last-hour
// figures, within the bounds above.
func (h *Handler) computeStats(webhook string, now time.Time) (hourStats, error) {
	from := now.Add(-StatsWindow)
	var (
		st      hourStats
		durs    []float64
		minutes [sparkBars]struct{ ok, fail, wait int }
		cursor  string
	)
scan:
	for {
		page, err := h.engine.List(delivery.Query{Webhook: webhook, Limit: statsPage, Cursor: cursor})
		if err != nil {
			return st, fmt.Errorf("list deliveries of %s: %w", webhook, err)
		}
		for _, d := range page.Deliveries {
			if d.CreatedAt.Before(from) {
				break scan
			}
			if st.Deliveries == StatsMaxDeliveries {
				st.Capped = true
				break scan
			}
			st.Deliveries++
			i := sparkBars - 1 - int(max(now.Sub(d.CreatedAt), 0)/time.Minute)
			if i >= 0 {
				switch d.Status {
				case delivery.StatusSuccess:
					minutes[i].ok++
				case delivery.StatusFailure:
					minutes[i].fail++
				default:
					minutes[i].wait++
				}
			}
			for _, a := range d.Attempts {
				if a.At.Before(from) {
					continue
				}
				st.Attempts++
				if attemptOK(a) {
					st.OK++
				}
				durs = append(durs, a.DurationMS)
			}
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if st.Attempts > 0 {
		rate := 100 * float64(st.OK) / float64(st.Attempts)
		st.Rate = formatRate(rate)
		switch {
		case rate >= 99:
			st.Level = "good"
		case rate >= 90:
			st.Level = "warn"
		default:
			st.Level = "bad"
		}
		slices.Sort(durs)
		st.P50 = formatMS(percentile(durs, 0.50))
		st.P99 = formatMS(percentile(durs, 0.99))
	}
	st.Spark = buildSpark(minutes[:], now)
	return st, nil
}

func buildSpark(minutes []struct{ ok, fail, wait int }, now time.Time) spark {
	sp := spark{Width: sparkBars * sparkStep, Height: sparkHeight}
	total := 0
	for _, m := range minutes {
		sp.Max = max(sp.Max, m.ok+m.fail+m.wait)
		total += m.ok + m.fail + m.wait
	}
	start := now.Truncate(time.Minute).Add(-(sparkBars - 1) * time.Minute)
	for i, m := range minutes {
		n := m.ok + m.fail + m.wait
		b := sparkBar{X: float64(i) * sparkStep, Full: sparkHeight, Total: n, Success: m.ok, Fail: m.fail, Wait: m.wait}
		at := start.Add(time.Duration(i) * time.Minute).UTC().Format("15:04")
		b.Title = fmt.Sprintf("%s UTC: %d %s", at, n, plural(n, "delivery", "deliveries"))
		if n > 0 {
			b.Title += fmt.Sprintf(" (%d success, %d failure, %d in queue)", m.ok, m.fail, m.wait)
		}
		y := sparkHeight
		for _, s := range []struct {
			class string
			n     int
		}{{"ok", m.ok}, {"fail", m.fail}, {"wait", m.wait}} {
			if s.n == 0 || sp.Max == 0 {
				continue
			}
			h := math.Max(1.5, sparkHeight*float64(s.n)/float64(sp.Max))
			y -= h
			b.Segs = append(b.Segs, sparkSeg{Class: s.class, X: b.X, Y: math.Max(y, 0), H: h})
		}
		sp.Bars = append(sp.Bars, b)
	}
	sp.Label = fmt.Sprintf("%d %s in the last hour, at most %d in a minute", total, plural(total, "delivery", "deliveries"), sp.Max)
	return sp
}

// percentile returns the nearest-rank p-quantile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func formatRate(r float64) string {
	if r >= 100 {
		return "100%"
	}
	if r > 99.9 {
		return "99.9%"
	}
	return fmt.Sprintf("%.1f%%", r)
}

// formatMS shows a duration in milliseconds at a useful precision.
func formatMS(ms float64) string {
	switch {
	case ms < 10:
		return fmt.Sprintf("%.1f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 60000:
		return fmt.Sprintf("%.2f s", ms/1000)
	}
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Second).String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
