//go:build !linux

package sm

import (
	"net"
	"sync/atomic"
	"syscall"
)

var quickAckOn atomic.Bool

// rawTCP is nil: TCP_QUICKACK is Linux's.
func rawTCP(net.Conn) syscall.RawConn { return nil }

func quickAck(syscall.RawConn) error { return nil }
