package daemon

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// notifier speaks systemd's notify protocol: one datagram per state change
// to $NOTIFY_SOCKET. Without that variable it does nothing.
type notifier struct {
	addr *net.UnixAddr
}

func newNotifier(socket string) *notifier {
	if socket == "" {
		return &notifier{}
	}
	if socket[0] == '@' { // abstract namespace
		socket = "\x00" + socket[1:]
	}
	return &notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}
}

// send delivers a state such as "READY=1"; errors are ignored, as systemd
// does: a daemon must run the same with or without a supervisor.
func (n *notifier) send(state string) {
	if n.addr == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(state))
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec*1e6 + ts.Nsec/1e3
}

// StatusInterval is how often the daemon refreshes its STATUS= line.
const StatusInterval = 10 * time.Second

// enabled reports whether there is a supervisor to tell anything.
func (n *notifier) enabled() bool { return n.addr != nil }

// watchdogInterval reads WATCHDOG_USEC (and WATCHDOG_PID, which must be
// this process when set) and returns how often to send WATCHDOG=1: half
// the timeout, as sd_watchdog_enabled advises. Zero means no watchdog.
func watchdogInterval(getenv func(string) string, pid int) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// startNotifyLoops refreshes STATUS= every StatusInterval and, when
// systemd asks for a watchdog, sends WATCHDOG=1 at half its timeout only
// while the engine is healthy and alive, until shutdown.
func (d *Daemon) startNotifyLoops() {
	if !d.notify.enabled() {
		return
	}
	interval := watchdogInterval(d.opts.Getenv, os.Getpid())
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		status := time.NewTicker(StatusInterval)
		defer status.Stop()
		var watchdog <-chan time.Time
		if interval > 0 {
			t := time.NewTicker(interval)
			defer t.Stop()
			watchdog = t.C
			d.feedWatchdog(interval)
		}
		for {
			select {
			case <-d.bgCtx.Done():
				return
			case <-status.C:
				d.notify.send("STATUS=" + d.status())
			case <-watchdog:
				d.feedWatchdog(interval)
			}
		}
	}()
}

// feedWatchdog sends WATCHDOG=1 if the store takes writes and the
// scheduler and the store's writer answer within the interval; otherwise
// it stays silent, and systemd restarts the service when the timeout
// passes.
func (d *Daemon) feedWatchdog(interval time.Duration) {
	err := d.engine.Healthy()
	if err == nil {
		ctx, cancel := context.WithTimeout(d.bgCtx, interval)
		err = d.engine.Alive(ctx)
		cancel()
	}
	if err != nil {
		if d.bgCtx.Err() == nil {
			d.log.Error("watchdog withheld: engine unhealthy", "err", err)
		}
		return
	}
	d.notify.send("WATCHDOG=1")
}
