package sm

import (
	"net"
	"sync/atomic"
	"syscall"
)

// quickAckOn is off only in BenchmarkStanzaAfterAck's comparison.
var quickAckOn atomic.Bool

func init() { quickAckOn.Store(true) }

// rawTCP is the TCP socket under c (through TLS), or nil.
func rawTCP(c net.Conn) syscall.RawConn {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// quickAck sends the ACK of what was read from raw now instead of after
// the delayed-ACK timer (TCP_QUICKACK; nothing is sent when no ACK is
// pending). Its error is only for the tests: the ACK goes out later anyway.
func quickAck(raw syscall.RawConn) error {
	if raw == nil || !quickAckOn.Load() {
		return nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	}); err != nil {
		return err
	}
	return serr
}
