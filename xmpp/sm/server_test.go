//go:build integration

package sm_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// cutProxy forwards TCP connections to a server until cut: then it stops
// forwarding in both directions (what is in flight is lost, as on a dead
// link) and closes the connections without a stream close.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    atomic.Bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); p.drop() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
	return p
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.cut.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// blackhole stops forwarding; drop closes every connection and forwards
// again for new ones.
func (p *cutProxy) blackhole() { p.cut.Store(true) }

func (p *cutProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a polite close
		}
		_ = c.Close()
	}
	p.conns = nil
	p.cut.Store(false)
}

func (p *cutProxy) port() uint16 {
	return uint16(p.ln.Addr().(*net.TCPAddr).Port)
}

// inbox collects message bodies by id.
type inbox struct {
	mu   sync.Mutex
	seen map[string]int
	ch   chan string
}

func newInbox() *inbox { return &inbox{seen: map[string]int{}, ch: make(chan string, 1000)} }

func (b *inbox) handler() xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "message" {
			return nil
		}
		var msg struct {
			stanza.Message
			Body string `xml:"body"`
		}
		if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)).Decode(&msg); err != nil {
			return err
		}
		if msg.Body == "" {
			return nil
		}
		b.mu.Lock()
		b.seen[msg.Body]++
		b.mu.Unlock()
		b.ch <- msg.Body
		return nil
	})
}

func (b *inbox) wait(t *testing.T, bodies []string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		b.mu.Lock()
		missing := 0
		for _, body := range bodies {
			if b.seen[body] == 0 {
				missing++
			}
		}
		b.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-b.ch:
		case <-deadline:
			t.Fatalf("%d of %d messages never arrived", missing, len(bodies))
		}
	}
}

func (b *inbox) duplicates() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var d []string
	for body, n := range b.seen {
		if n > 1 {
			d = append(d, fmt.Sprintf("%s×%d", body, n))
		}
	}
	return d
}

func send(t testing.TB, s *xmpp.Session, to jid.JID, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := stanza.Message{To: to, Type: stanza.ChatMessage, ID: "id-" + body}
	err := s.Send(ctx, msg.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}})))
	if err != nil {
		t.Fatalf("send %s: %v", body, err)
	}
}

func serve(t testing.TB, s *xmpp.Session, h xmpp.Handler) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Serve(h) }()
	return done
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type server interface {
	CreateAccount(t testenv.TB, localpart, password string) string
	Host() string
	Port() int
	Domain() string
}

// A stream dropped while both sides send is resumed: each side gets every
// message once, the stanzas the server never got are written again, and a
// refused resumption falls back to a fresh bind with the unacknowledged
// stanzas handed back.
func TestResumeRealServers(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  func(t *testing.T) server
	}{
		{"prosody", func(t *testing.T) server { return testenv.SharedProsody(t) }},
		{"ejabberd", func(t *testing.T) server { return testenv.SharedEjabberd(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srv(t)
			a := jid.MustParse(srv.CreateAccount(t, "smuser", "pw-a"))
			b := jid.MustParse(srv.CreateAccount(t, "smpeer", "pw-b"))
			proxy := newCutProxy(t, net.JoinHostPort(srv.Host(), strconv.Itoa(srv.Port())))
			insecure := []string{srv.Domain()}
			m := sm.New(sm.Options{AckEvery: 1000, AckInterval: time.Hour}) // acks only when the test asks
			cfgA := conn.Config{JID: a, Password: "pw-a", Host: "127.0.0.1", Port: proxy.port(), InsecureTLSHosts: insecure, Timeout: 20 * time.Second, SM: m}
			cfgB := conn.Config{JID: b, Password: "pw-b", Host: srv.Host(), Port: uint16(srv.Port()), InsecureTLSHosts: insecure, Timeout: 20 * time.Second}
			ctx := context.Background()

			inA, inB := newInbox(), newInbox()
			sb, err := conn.Dial(ctx, cfgB)
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Close()
			serve(t, sb, inB.handler())
			if err := sb.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
				t.Fatal(err)
			}

			sa, err := conn.Dial(ctx, cfgA)
			if err != nil {
				t.Fatal(err)
			}
			if r := m.LastResult(); !r.Offered || !r.Enabled || r.Resumed {
				t.Fatalf("first connection: %+v", r)
			}
			doneA := serve(t, sa, m.Handler(inA.handler()))
			if err := sa.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "<enabled/>", func() bool { return m.Stats().Enabled == 1 })
			full := sa.LocalAddr()

			// Both ways while connected, then an acknowledgement.
			var toB, toA []string
			for i := 0; i < 5; i++ {
				body := fmt.Sprintf("a2b-live-%d", i)
				toB = append(toB, body)
				send(t, sa, b, body)
				body = fmt.Sprintf("b2a-live-%d", i)
				toA = append(toA, body)
				send(t, sb, full, body)
			}
			inB.wait(t, toB)
			inA.wait(t, toA)
			if err := sa.Send(ctx, sm.Req{}.TokenReader()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the server's ack", func() bool { return m.Stats().Unacked == 0 })

			// The link dies: nothing more gets through either way, and both
			// sides keep sending.
			proxy.blackhole()
			for i := 0; i < 4; i++ {
				body := fmt.Sprintf("a2b-cut-%d", i)
				toB = append(toB, body)
				send(t, sa, b, body)
				body = fmt.Sprintf("b2a-cut-%d", i)
				toA = append(toA, body)
				send(t, sb, full, body)
			}
			if got := m.Stats().Unacked; got < 4 {
				t.Fatalf("%d stanzas wait for an ack, want at least the 4 written into the dead link", got)
			}
			proxy.drop()
			select {
			case <-doneA:
			case <-time.After(30 * time.Second):
				t.Fatal("session did not end after the drop")
			}

			sa2, err := conn.Dial(ctx, cfgA)
			if err != nil {
				t.Fatal(err)
			}
			r := m.LastResult()
			t.Logf("resumption: %+v, stats %+v", r, m.Stats())
			if !r.Resumed || r.Resent < 4 {
				t.Fatalf("after the drop: %+v, want resumed with the 4 lost stanzas written again", r)
			}
			if !sa2.LocalAddr().Equal(full) {
				t.Errorf("resumed as %s, want %s", sa2.LocalAddr(), full)
			}
			doneA2 := serve(t, sa2, m.Handler(inA.handler()))
			inB.wait(t, toB)
			inA.wait(t, toA)
			if err := sa2.Send(ctx, sm.Req{}.TokenReader()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the server's ack after resuming", func() bool { return m.Stats().Unacked == 0 })
			if d := append(inA.duplicates(), inB.duplicates()...); len(d) > 0 {
				t.Errorf("duplicated: %v", d)
			}
			if errs := m.AckErrors(); len(errs) > 0 {
				t.Errorf("acks not matching: %v", errs)
			}

			// A refused resumption: fresh bind, stream management enabled
			// again, the unacknowledged stanzas handed back.
			proxy.blackhole()
			send(t, sa2, b, "a2b-refused-0")
			proxy.drop()
			<-doneA2
			m.SetStreamID("no-such-stream")
			sa3, err := conn.Dial(ctx, cfgA)
			if err != nil {
				t.Fatal(err)
			}
			defer sa3.Close()
			r = m.LastResult()
			if !r.ResumeFailed || r.Resumed || !r.Enabled {
				t.Fatalf("refused resumption: %+v", r)
			}
			lost := m.TakeLost()
			if len(lost) != 1 || lost[0].ID != "id-a2b-refused-0" || lost[0].Name != "message" || lost[0].To != b.String() {
				t.Fatalf("handed back %+v, want the one message written into the dead link", lost)
			}
			t.Logf("refused: %+v; handed back %s", r, lost[0].Raw)
		})
	}
}
