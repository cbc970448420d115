package conn

import (
	"fmt"
	"syscall"
	"time"
)

// tcpUserTimeout is TCP_USER_TIMEOUT of linux/tcp.h (not in syscall).
const tcpUserTimeout = 0x12

// userTimeout sets TCP_USER_TIMEOUT on a socket before it connects: data
// unacknowledged for d closes the connection.
func userTimeout(d time.Duration) func(network, address string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d.Milliseconds()))
		}); err != nil {
			return fmt.Errorf("failed to reach the socket: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("failed to set TCP_USER_TIMEOUT: %w", serr)
		}
		return nil
	}
}
