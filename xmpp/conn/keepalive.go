package conn

import (
	"net"
	"time"
)

// Dead connections are found by TCP keepalive, timed by the kernel: no
// goroutine of the process wakes for it, however many connections there
// are. After Keepalive of silence the kernel probes every
// keepaliveInterval, and keepaliveProbes unanswered probes close the
// connection (a read then fails, and the login redials). Data written and
// never acknowledged by the peer is not covered by keepalive (the kernel
// retransmits it for ≈ 15 minutes); TCP_USER_TIMEOUT (Linux) closes the
// connection after the same time as the probes would. A server that still
// acknowledges TCP but no longer reads the stream is found when something
// is sent: stream management's acknowledgement timeout (xmpp/sm).

// DefaultKeepalive is the silence before the first probe when
// Config.Keepalive is 0.
const DefaultKeepalive = 60 * time.Second

const (
	keepaliveInterval = 15 * time.Second
	keepaliveProbes   = 4
)

// netDialer is the TCP dialer of c, with its keepalive.
func (c Config) netDialer() net.Dialer {
	idle := c.Keepalive
	if idle <= 0 {
		idle = DefaultKeepalive
	}
	return net.Dialer{
		Resolver:        c.Resolver,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: idle, Interval: keepaliveInterval, Count: keepaliveProbes},
		Control:         userTimeout(idle + keepaliveInterval*keepaliveProbes),
	}
}
