package xmppclient

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
)

type recordingHooks struct {
	mu       sync.Mutex
	dials    int
	failures []bool // permanent, per failed dial
	setups   int
}

func (h *recordingHooks) Connecting() { h.mu.Lock(); h.dials++; h.mu.Unlock() }
func (h *recordingHooks) ConnectFailed(_ error, permanent bool, _ time.Duration) {
	h.mu.Lock()
	h.failures = append(h.failures, permanent)
	h.mu.Unlock()
}
func (h *recordingHooks) Setup(context.Context, *xmpp.Session) error {
	h.mu.Lock()
	h.setups++
	h.mu.Unlock()
	return nil
}
func (h *recordingHooks) Connected(context.Context, *xmpp.Session)     {}
func (h *recordingHooks) Ended()                                       {}
func (h *recordingHooks) Lost(error, time.Duration)                    {}
func (h *recordingHooks) StreamStarted(context.Context, StreamStart)   {}
func (h *recordingHooks) UnackedChecked(context.Context, UnackedCheck) {}

// TestConnRedialsUntilCancelled: a server that refuses the TCP connection
// is a transient failure; the loop reports it, waits, dials again, and
// ends when its context does, without a session.
func TestConnRedialsUntilCancelled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close() // nothing listens there now
	account := jid.MustParse("alice@example.org")
	hooks := &recordingHooks{}
	c := NewConn(account, ConnConfig{
		Settings: func() xconn.Config {
			return xconn.Config{JID: account, Password: "x", Host: "127.0.0.1", Port: uint16(port)}
		},
		MaxReconnectDelay: 10 * time.Millisecond,
		Handler:           func(context.Context) xmpp.Handler { return nil },
	}, hooks)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hooks.mu.Lock()
		n := len(hooks.failures)
		hooks.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d failed dials reported in 30 s, want 2", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end with its context")
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	for i, permanent := range hooks.failures {
		if permanent {
			t.Errorf("dial %d: a refused TCP connection reported as permanent", i)
		}
	}
	if hooks.setups != 0 || c.Session() != nil {
		t.Errorf("%d setups, session %v: want none", hooks.setups, c.Session())
	}
	if hooks.dials < 2 {
		t.Errorf("%d dials reported", hooks.dials)
	}
}
