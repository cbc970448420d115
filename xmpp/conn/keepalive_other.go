//go:build !linux

package conn

import (
	"syscall"
	"time"
)

// userTimeout is Linux only; elsewhere keepalive alone finds dead
// connections.
func userTimeout(time.Duration) func(network, address string, rc syscall.RawConn) error {
	return nil
}
