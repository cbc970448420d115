package xmpptap

import (
	"crypto/tls"
	"net"
	"syscall"
)

// quickAck sends the ACK of what was just read from c's TCP socket now, as
// the bridge's own connection does after a read (xmpp/sm): Prosody keeps
// Nagle's algorithm on and holds its next stanza until that ACK arrives, so
// without it the tap's delayed ACKs (up to 40 ms) would show in the
// latency rows that pass through the tap.
func quickAck(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
