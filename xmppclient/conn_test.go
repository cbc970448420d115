package xmppclient

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

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

// serveHooks records what a served session reports.
type serveHooks struct {
	recordingHooks
	setupErr  error
	connected chan struct{}
	lost      chan error
	events    []string
}

func (h *serveHooks) Setup(context.Context, *xmpp.Session) error {
	h.mu.Lock()
	h.events = append(h.events, "setup")
	h.mu.Unlock()
	return h.setupErr
}
func (h *serveHooks) Connected(context.Context, *xmpp.Session) {
	h.mu.Lock()
	h.events = append(h.events, "connected")
	h.mu.Unlock()
	close(h.connected)
}
func (h *serveHooks) Ended() { h.mu.Lock(); h.events = append(h.events, "ended"); h.mu.Unlock() }
func (h *serveHooks) Lost(err error, _ time.Duration) {
	h.mu.Lock()
	h.events = append(h.events, "lost")
	h.mu.Unlock()
	h.lost <- err
}

// pipeSession is a session already negotiated over an in-memory pipe; the
// returned conn is the server's end.
func pipeSession(t *testing.T, account jid.JID) (*xmpp.Session, net.Conn) {
	t.Helper()
	client, server := net.Pipe()
	ready := func(context.Context, *stream.Info, *stream.Info, *xmpp.Session, any) (xmpp.SessionState, io.ReadWriter, any, error) {
		return xmpp.Ready, nil, nil, nil
	}
	s, err := xmpp.NewSession(context.Background(), account.Domain(), account, client, 0, ready)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, server) }()
	return s, server
}

// TestConnServe: a handed-off session is set up, reported connected, and
// served on the connection goroutine until the server drops it (Ended,
// then Lost); a session whose setup fails is dropped with setup's error;
// cancelling the context ends the loop.
func TestConnServe(t *testing.T) {
	account := jid.MustParse("alice@example.org")
	for _, tc := range []struct {
		name     string
		setupErr error
		want     []string
	}{
		{"server drops", nil, []string{"setup", "connected", "ended", "lost"}},
		{"setup fails", errors.New("no roster"), []string{"setup", "ended", "lost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hooks := &serveHooks{setupErr: tc.setupErr, connected: make(chan struct{}), lost: make(chan error, 4)}
			c := NewConn(account, ConnConfig{
				Settings: func() xconn.Config {
					return xconn.Config{JID: account, Password: "x", Host: "127.0.0.1", Port: 1}
				},
				MaxReconnectDelay: time.Hour,
				PingInterval:      time.Hour,
				Handler:           func(context.Context) xmpp.Handler { return nil },
			}, hooks)
			s, server := pipeSession(t, account)
			c.HandOff(&LoginSession{Session: s})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { c.Run(ctx); close(done) }()
			if tc.setupErr == nil {
				select {
				case <-hooks.connected:
				case <-time.After(10 * time.Second):
					t.Fatal("not connected in 10 s")
				}
				if c.Session() != s {
					t.Error("Session() is not the served session")
				}
				_ = server.Close()
			}
			select {
			case err := <-hooks.lost:
				if tc.setupErr != nil && !errors.Is(err, tc.setupErr) {
					t.Errorf("lost with %v, want the setup error", err)
				}
				if err == nil {
					t.Error("lost without an error")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the session's end not reported in 10 s")
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not end with its context")
			}
			hooks.mu.Lock()
			defer hooks.mu.Unlock()
			if !slices.Equal(hooks.events, tc.want) {
				t.Errorf("hooks called %v, want %v", hooks.events, tc.want)
			}
			if c.Session() != nil {
				t.Error("a session is still set after the loop ended")
			}
		})
	}
}

// TestConnServeCancel: cancelling the context while a session is served
// closes it and ends the loop without a Lost.
func TestConnServeCancel(t *testing.T) {
	account := jid.MustParse("alice@example.org")
	hooks := &serveHooks{connected: make(chan struct{}), lost: make(chan error, 4)}
	c := NewConn(account, ConnConfig{
		Settings:          func() xconn.Config { return xconn.Config{JID: account} },
		MaxReconnectDelay: time.Hour,
		Handler:           func(context.Context) xmpp.Handler { return nil },
	}, hooks)
	s, _ := pipeSession(t, account)
	c.HandOff(&LoginSession{Session: s})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	select {
	case <-hooks.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("not connected in 10 s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end with its context")
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if want := []string{"setup", "connected", "ended"}; !slices.Equal(hooks.events, want) {
		t.Errorf("hooks called %v, want %v", hooks.events, want)
	}
}
