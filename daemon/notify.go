package daemon

import (
	"net"
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
