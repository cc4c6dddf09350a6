package delivery

import (
	"context"
	"time"
)

// Due times are wall-clock instants, stored in the due index, while the
// dispatchers' timers run on the monotonic clock. When the wall clock is
// set (by hand, or stepped by NTP), a timer armed for an instant reached
// under the old setting fires at the wrong one: after a step forward the
// work that is now due would wait for it, after a step back it would wake
// early and find nothing due. So a watcher compares the two clocks and,
// on a step, wakes every dispatcher to rescan its due index from where it
// stands. No entry is lost or taken twice by this: the index and the
// dispatchers' claims do not depend on the clock.

// clockStep is the smallest disagreement between the wall and monotonic
// clocks that counts as the wall clock being set.
const clockStep = time.Second

// clock reads the wall clock and a monotonic one, as nanoseconds.
type clock struct {
	wall func() int64
	mono func() int64
}

// systemClock is the wall clock now and Go's monotonic clock.
func systemClock(now func() time.Time) clock {
	start := time.Now()
	return clock{
		wall: func() int64 { return now().UnixNano() },
		mono: func() int64 { return int64(time.Since(start)) },
	}
}

// watchClock calls onStep with the size of each step of the wall clock
// (positive: set forward) it sees, checking every interval, until ctx is
// done.
func watchClock(ctx context.Context, c clock, interval time.Duration, onStep func(time.Duration)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	wall, mono := c.wall(), c.mono()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w, m := c.wall(), c.mono()
		if step := time.Duration((w - wall) - (m - mono)); step >= clockStep || step <= -clockStep {
			onStep(step)
		}
		wall, mono = w, m
	}
}

// clockStepped wakes every dispatcher after the wall clock was set.
func (s *scheduler) clockStepped(step time.Duration) {
	s.e.log.Warn("the wall clock was set; rescanning the due deliveries", "step", step.Round(time.Millisecond).String())
	s.pokeAll()
}
