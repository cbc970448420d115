//go:build integration

package xmpptap_test

import (
	"context"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/xmpptap"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
)

// TestTapWithStreamManagement drives the bridge's own connection stack (xmpp/conn with xmpp/sm)
// through the tap to a real Prosody: stanzas injected reach the client in order between the
// server's, stanzas captured never reach the server, and both ends' XEP-0198 counts stay true:
// the client's wait for acknowledgements of captured stanzas ends, no acknowledgement is refused
// by the client, and Prosody never hears of more stanzas handled than it sent.
func TestTapWithStreamManagement(t *testing.T) {
	prosody := testenv.StartProsody(t, testenv.ProsodyOptions{})
	alice := jid.MustParse(prosody.CreateAccount(t, "tapalice", "pw-a"))
	bob := jid.MustParse(prosody.CreateAccount(t, "tapbob", "pw-b"))
	pem, err := os.ReadFile(prosody.CertFile())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tap, err := xmpptap.Start(prosody.DirectTLSAddr(), "localhost", roots)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	host, port, _ := net.SplitHostPort(strings.TrimPrefix(tap.Addr(), "tls://"))
	p, _ := strconv.Atoi(port)
	m := sm.New(sm.Options{AckEvery: 1, AckInterval: 200 * time.Millisecond})
	s, err := xconn.Dial(ctx, xconn.Config{JID: alice, Password: "pw-a", Host: host, Port: uint16(p), DirectTLS: true,
		InsecureTLSHosts: []string{"localhost"}, SM: m, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("through the tap: %v", err)
	}
	defer s.Close()
	got := &bodies{}
	go func() { _ = s.Serve(m.Handler(got.handler())) }()
	m.Start(ctx, s)
	// bob, straight to Prosody, whose messages make Prosody ask alice for acknowledgements.
	b, err := xconn.Dial(ctx, xconn.Config{JID: bob, Password: "pw-b", Host: prosody.Host(), Port: uint16(prosody.Port()),
		InsecureTLSHosts: []string{"localhost"}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bobGot := &bodies{}
	go func() { _ = b.Serve(bobGot.handler()) }()
	waitFor(t, "the bound JID", func() bool { return tap.BoundJID() != "" })
	// Available, so that Prosody delivers messages to the bare JIDs.
	for _, sess := range []*xmpp.Session{s, b} {
		if err := sess.Send(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "presence"}})); err != nil {
			t.Fatal(err)
		}
	}

	send := func(s *xmpp.Session, to jid.JID, body string) {
		t.Helper()
		err := s.Encode(ctx, struct {
			stanza.Message
			Body string `xml:"body"`
		}{stanza.Message{To: to, Type: stanza.ChatMessage}, body})
		if err != nil {
			t.Fatal(err)
		}
	}
	var captured []string
	var mu sync.Mutex
	for round := range 3 {
		// From the server, injected, from the server: alice reads them in that order.
		send(b, alice, fmt.Sprintf("real %d a", round))
		waitFor(t, "a real message", func() bool { return got.has(fmt.Sprintf("real %d a", round)) })
		for i := range 5 {
			raw := fmt.Sprintf(`<message from=%q to=%q type="chat" id="inj-%d-%d"><body>injected %d %d</body></message>`,
				bob.String()+"/x", alice.String(), round, i, round, i)
			if err := tap.Inject([]byte(raw)); err != nil {
				t.Fatal(err)
			}
		}
		send(b, alice, fmt.Sprintf("real %d b", round))
		// alice to bob: captured while the capture is on, so bob never gets those.
		tap.Capture(func(raw []byte) bool { return strings.Contains(string(raw), "captured") }, func(raw []byte, _ time.Time) {
			mu.Lock()
			captured = append(captured, string(raw))
			mu.Unlock()
		})
		for i := range 4 {
			send(s, bob, fmt.Sprintf("captured %d %d", round, i))
		}
		send(s, bob, fmt.Sprintf("forwarded %d", round))
		mk, ok := m.Written()
		if !ok {
			t.Fatal("stream management is not on through the tap")
		}
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		if err := m.WaitAcked(wctx, mk); err != nil {
			t.Fatalf("round %d: the client's stanzas were not all acknowledged: %v", round, err)
		}
		wcancel()
		tap.Capture(nil, nil)
		waitFor(t, "bob's forwarded message", func() bool { return bobGot.has(fmt.Sprintf("forwarded %d", round)) })
	}
	waitFor(t, "the last real message", func() bool { return got.has("real 2 b") })
	// Prosody asks for acknowledgements of what it sent; give the last answer time to arrive.
	waitFor(t, "alice's acknowledgement of everything", func() bool { return m.Stats().InH >= uint32(len(got.all())) })
	time.Sleep(time.Second)

	var want []string
	for round := range 3 {
		want = append(want, fmt.Sprintf("real %d a", round))
		for i := range 5 {
			want = append(want, fmt.Sprintf("injected %d %d", round, i))
		}
		want = append(want, fmt.Sprintf("real %d b", round))
	}
	if g := got.all(); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Errorf("alice read\n%q\nwant\n%q", g, want)
	}
	if len(captured) != 12 {
		t.Errorf("captured %d stanzas, want 12", len(captured))
	}
	for _, body := range bobGot.all() {
		if strings.HasPrefix(body, "captured") {
			t.Errorf("bob got a captured message: %q", body)
		}
	}
	if st := m.Stats(); st.BadAcks != 0 || st.Unacked != 0 {
		t.Errorf("client: %d acknowledgements refused, %d stanzas unacknowledged", st.BadAcks, st.Unacked)
	}
	if errs := m.AckErrors(); len(errs) > 0 {
		t.Errorf("client: %v", errs)
	}
	toServer, toBridge := tap.Translated()
	if toServer == 0 || toBridge == 0 {
		t.Errorf("acknowledgements translated: %d to Prosody, %d to the client; want some each way", toServer, toBridge)
	}
	if strings.Contains(prosody.Log(), "new stanzas, but we sent") {
		t.Error("Prosody heard of more stanzas handled than it sent")
	}
	if err := tap.Err(); err != nil || tap.Connections() != 1 {
		t.Errorf("tap: %v, %d connections", err, tap.Connections())
	}
}

// bodies keeps the bodies of the chat messages a session reads, in order.
type bodies struct {
	mu sync.Mutex
	b  []string
}

func (r *bodies) handler() xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "message" {
			return nil
		}
		var m struct {
			Body string `xml:"body"`
		}
		if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)).Decode(&m); err != nil || m.Body == "" {
			return nil
		}
		r.mu.Lock()
		r.b = append(r.b, m.Body)
		r.mu.Unlock()
		return nil
	})
}

func (r *bodies) has(body string) bool {
	for _, b := range r.all() {
		if b == body {
			return true
		}
	}
	return false
}

func (r *bodies) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.b...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
