package conn

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestKeepaliveSocketOptions: the dialed socket carries the keepalive
// timing and the user timeout, so that the kernel, not a goroutine of
// ours, finds a dead connection.
func TestKeepaliveSocketOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name      string
		keepalive time.Duration
		idle      int // seconds
	}{
		{"default", 0, 60},
		{"set", 30 * time.Second, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Host: "127.0.0.1", Port: uint16(port), Keepalive: tc.keepalive}
			nc, err := c.dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			rc, err := nc.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][3]int{ // level, option, value
				"SO_KEEPALIVE":     {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
				"TCP_KEEPIDLE":     {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, tc.idle},
				"TCP_KEEPINTVL":    {syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
				"TCP_KEEPCNT":      {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 4},
				"TCP_USER_TIMEOUT": {syscall.IPPROTO_TCP, tcpUserTimeout, (tc.idle + 60) * 1000},
			}
			for name, w := range want {
				var got int
				var gerr error
				if err := rc.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), w[0], w[1]) }); err != nil {
					t.Fatal(err)
				}
				if gerr != nil {
					t.Fatalf("%s: %v", name, gerr)
				}
				if got != w[2] {
					t.Errorf("%s = %d, want %d", name, got, w[2])
				}
			}
		})
	}
}
