package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// listenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// activationListeners returns the listening sockets systemd passed by
// socket activation: LISTEN_FDS descriptors from first on, when
// LISTEN_PID names this process. It unsets the variables, so that child
// processes (command webhooks) do not take the sockets for theirs.
func activationListeners(getenv func(string) string, pid, first int) ([]net.Listener, error) {
	if getenv("LISTEN_PID") != strconv.Itoa(pid) {
		return nil, nil
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, nil
	}
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	names := strings.Split(getenv("LISTEN_FDNAMES"), ":")
	var ls []net.Listener
	for i := range n {
		fd := first + i
		unix.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		f := os.NewFile(uintptr(fd), name)
		l, err := net.FileListener(f) // dups the descriptor
		f.Close()
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("socket activation: descriptor %d (%s) is not a listening socket: %w", fd, name, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}
