//go:build linux

package sm

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestQuickAckSocket: the quick ACK finds the TCP socket under the
// connection the manager wraps (TLS over TCP in every real session) and
// the kernel takes the option; a connection without a socket has none.
func TestQuickAckSocket(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	pipe, other := net.Pipe()
	defer pipe.Close()
	defer other.Close()
	for _, tc := range []struct {
		name   string
		conn   func(t *testing.T) net.Conn
		socket bool
	}{
		{"tcp", dial, true},
		{"tls over tcp", func(t *testing.T) net.Conn {
			c := tls.Client(dial(t), &tls.Config{InsecureSkipVerify: true})
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			return c
		}, true},
		{"pipe", func(*testing.T) net.Conn { return pipe }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := rawTCP(tc.conn(t))
			if (raw != nil) != tc.socket {
				t.Fatalf("socket found: %v, want %v", raw != nil, tc.socket)
			}
			if err := quickAck(raw); err != nil {
				t.Fatalf("quickAck: %v", err)
			}
		})
	}
}
