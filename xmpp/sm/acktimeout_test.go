//go:build integration

package sm_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
)

// TestAckTimeout: with no XEP-0199 ping, a stream that stops answering is
// found when something is sent on it: the request for an acknowledgement
// goes unanswered for AckTimeout, and the session's Serve ends with
// ErrAckTimeout (the owner then redials and resumes). A live stream that
// answers is never closed by it, however long it is served.
func TestAckTimeout(t *testing.T) {
	srv := testenv.SharedProsody(t)
	a := jid.MustParse(srv.CreateAccount(t, "smtimeout", "pw-a"))
	b := jid.MustParse(srv.CreateAccount(t, "smtimeoutpeer", "pw-b"))
	proxy := newCutProxy(t, net.JoinHostPort(srv.Host(), strconv.Itoa(srv.Port())))
	const timeout = 2 * time.Second
	m := sm.New(sm.Options{AckEvery: 1, AckInterval: 300 * time.Millisecond, AckTimeout: timeout})
	cfg := conn.Config{JID: a, Password: "pw-a", Host: "127.0.0.1", Port: proxy.port(), InsecureTLSHosts: []string{srv.Domain()}, Timeout: 20 * time.Second, SM: m}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := conn.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := serve(t, s, m.Handler(newInbox().handler()))
	m.Start(ctx, s)
	if err := s.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "<enabled/>", func() bool { return m.Stats().Enabled == 1 })

	// Answered: messages are acknowledged and the stream lives on past
	// the timeout.
	for i := range 3 {
		send(t, s, b, "answered-"+strconv.Itoa(i))
	}
	waitFor(t, "the server's ack", func() bool { return m.Stats().Unacked == 0 })
	select {
	case err := <-done:
		t.Fatalf("a stream that answers ended: %v", err)
	case <-time.After(2 * timeout):
	}

	// Unanswered: the link goes silent with a message written into it.
	proxy.blackhole()
	start := time.Now()
	send(t, s, b, "unanswered")
	select {
	case err := <-done:
		if !errors.Is(err, sm.ErrAckTimeout) {
			t.Errorf("Serve ended with %v, want ErrAckTimeout", err)
		}
		if d := time.Since(start); d < timeout {
			t.Errorf("closed after %v, before the timeout %v", d, timeout)
		}
		t.Logf("closed %v after the write: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("the silent stream was never closed")
	}
	if got := m.Stats().Unacked; got != 1 {
		t.Errorf("%d stanzas kept for resending, want the one written into the silent link", got)
	}
}
