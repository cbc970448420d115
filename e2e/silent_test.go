package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // XEP-0114's handshake is defined with SHA-1
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// silentDomain is the second XMPP domain of TestSilentServerContact: Prosody's XEP-0114
// component port, served by silentServer.
const silentDomain = "component.localhost"

// silentServer is a server for a whole XMPP domain that accepts the connection and the stanzas
// routed to it and never answers any of them. It counts the IQs it swallowed.
type silentServer struct {
	conn net.Conn
	mu   sync.Mutex
	iqs  []string // the to of each IQ received
}

// startSilentServer connects to Prosody as the component for silentDomain.
func startSilentServer(t *testing.T, addr, secret string) *silentServer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(stepTimeout))
	if _, err := fmt.Fprintf(c, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>`, silentDomain); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bufio.NewReader(c))
	var streamID string
	for streamID == "" {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("component stream: %v", err)
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "stream" {
			for _, a := range s.Attr {
				if a.Name.Local == "id" {
					streamID = a.Value
				}
			}
		}
	}
	sum := sha1.Sum([]byte(streamID + secret)) //nolint:gosec
	if _, err := fmt.Fprintf(c, "<handshake>%s</handshake>", hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("component handshake: %v", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			if s.Name.Local != "handshake" {
				t.Fatalf("component handshake refused: <%s/>", s.Name.Local)
			}
			break
		}
	}
	_ = c.SetDeadline(time.Time{})
	s := &silentServer{conn: c}
	go s.swallow(d)
	return s
}

// swallow reads every stanza and answers none.
func (s *silentServer) swallow(d *xml.Decoder) {
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		st, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if st.Name.Local == "iq" {
			to := ""
			for _, a := range st.Attr {
				if a.Name.Local == "to" {
					to = a.Value
				}
			}
			s.mu.Lock()
			s.iqs = append(s.iqs, to)
			s.mu.Unlock()
		}
		if err := d.Skip(); err != nil && err != io.EOF {
			return
		}
	}
}

// iqsTo is how many IQs to j the server swallowed.
func (s *silentServer) iqsTo(j string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, to := range s.iqs {
		if strings.HasPrefix(to, j) {
			n++
		}
	}
	return n
}

// sendOMEMOFromUnknownDevice sends, from mallory on the silent domain, an OMEMO 2 message for the
// bridge's device from a device the bridge has no session with (not a key exchange), so that
// the bridge wants mallory's bundle for a session reset.
func (s *silentServer) sendOMEMOFromUnknownDevice(t *testing.T, from string, to jid.JID, rid string) {
	t.Helper()
	junk := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	msg := fmt.Sprintf(`<message xmlns='jabber:component:accept' from='%s/evil' to='%s' type='chat' id='%s'>`+
		`<encrypted xmlns='urn:xmpp:omemo:2'><header sid='31337'><keys jid='%s'><key rid='%s'>%s</key></keys></header>`+
		`<payload>%s</payload></encrypted><body>I sent you an OMEMO encrypted message</body></message>`,
		from, to, uniq("silent"), to, rid, junk(64), junk(32))
	if _, err := io.WriteString(s.conn, msg); err != nil {
		t.Fatal(err)
	}
}

// TestSilentServerContact: a contact on a second XMPP domain whose server accepts the connection
// but never answers IQs sends an OMEMO message from a device the bridge has no session with. The
// bridge wants that device's bundle (a session reset) and the request is never answered; messages
// from another contact keep reaching Matrix within seconds, and the user's answers reach that
// contact, while the request is pending.
func TestSilentServerContact(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody, Dendrite and the bridge")
	}
	const secret = "silent-component-secret"
	s := newStackWith(t, "sqlite", testenv.ProsodyOptions{ComponentSecret: secret})
	alice, alicePW := s.account(t, "salice")
	bob, bobPW := s.account(t, "sbob")
	bobC := s.peer(t, bob, bobPW, "laptop")
	u := s.matrixUser(t, "msilent")
	ctx, cancel := context.WithTimeout(context.Background(), 4*loginTimeout)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	// The bridge's OMEMO device id, once it is set up.
	var rid string
	deadline := time.Now().Add(loginTimeout)
	for rid == "" && time.Now().Before(deadline) {
		if ids := s.query(t, `SELECT CAST(device_id AS TEXT) FROM omemo_identity`); len(ids) == 1 {
			rid = ids[0]
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if rid == "" {
		t.Fatal("the bridge set up no OMEMO device")
	}

	// Messages sent before the bridge's initial presence wait in the server's offline store;
	// start when the login is connected.
	if _, _, err := u.WaitEvent(ctx, mgmt, 0, harness.IsMessage("", "CONNECTED")); err != nil {
		t.Fatalf("the login never connected: %v", err)
	}

	// Bob's chat exists and works before the silent contact shows up.
	first := uniq("bob before the silent contact")
	if err := bobC.SendChat(ctx, alice, "", "", first); err != nil {
		t.Fatal(err)
	}
	bobRoom := portalRoom(ctx, t, s, u, bob)
	if err := waitRoomBody(ctx, u, bobRoom, first); err != nil {
		t.Fatalf("bob's first message: %v", err)
	}

	silent := startSilentServer(t, s.prosody.ComponentAddr(), secret)
	mallory := "mallory@" + silentDomain
	silent.sendOMEMOFromUnknownDevice(t, mallory, alice, rid)
	// The bridge asks mallory's server for the bundle, which never answers.
	waitUntil(t, stepTimeout, "the bridge asked the silent server for mallory's bundle", func() bool { return silent.iqsTo(mallory) > 0 })
	asked := time.Now()

	// While that request is pending (it times out after 30 s): three rounds both ways with bob.
	for i := range 3 {
		body := uniq(fmt.Sprintf("bob %d while mallory's server is silent", i))
		start := time.Now()
		if err := bobC.SendChat(ctx, alice, "", "", body); err != nil {
			t.Fatal(err)
		}
		stepCtx, stepCancel := context.WithTimeout(ctx, 10*time.Second)
		err := waitRoomBody(stepCtx, u, bobRoom, body)
		stepCancel()
		if err != nil {
			t.Fatalf("round %d: bob's message did not reach Matrix within 10 s (%v since the silent request): %v", i, time.Since(asked), err)
		}
		in := time.Since(start)

		reply := uniq(fmt.Sprintf("reply %d to bob", i))
		start = time.Now()
		bcur := bobC.Cursor()
		if _, err := u.Client.SendText(ctx, bobRoom, reply); err != nil {
			t.Fatal(err)
		}
		stepCtx, stepCancel = context.WithTimeout(ctx, 10*time.Second)
		_, _, err = bobC.WaitMessage(stepCtx, bcur, bodyIs(reply))
		stepCancel()
		if err != nil {
			t.Fatalf("round %d: the reply did not reach bob within 10 s: %v", i, err)
		}
		t.Logf("round %d: XMPP→Matrix %v, Matrix→XMPP %v (%v after the unanswered request)", i,
			in.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), time.Since(asked).Round(time.Millisecond))
	}
	if elapsed := time.Since(asked); elapsed >= 30*time.Second {
		t.Logf("the rounds took %v: the bundle request may have timed out meanwhile", elapsed)
	}
	// Mallory's message itself became a notice in its own portal.
	malloryRoom := portalRoom(ctx, t, s, u, jid.MustParse(mallory))
	if err := waitRoomBody(ctx, u, malloryRoom, "Could not decrypt an OMEMO message from"); err != nil {
		t.Fatalf("no notice for mallory's message: %v", err)
	}
}

// portalRoom is the Matrix room of the login's DM portal with contact, read from the bridge's
// database (the harness's sync has been seen to miss the user's own join), joined by u.
func portalRoom(ctx context.Context, t *testing.T, s *stack, u *harness.MatrixUser, contact jid.JID) id.RoomID {
	t.Helper()
	var room string
	waitUntil(t, stepTimeout, "the portal of "+contact.String(), func() bool {
		rooms := s.query(t, `SELECT mxid FROM portal WHERE id=? AND mxid IS NOT NULL AND mxid<>''`, contact.Bare().String())
		if len(rooms) == 1 {
			room = rooms[0]
		}
		return room != ""
	})
	// Idempotent (the harness joins on invite too); refused until the bridge's invite is in.
	var err error
	waitUntil(t, stepTimeout, "joining the portal of "+contact.String(), func() bool {
		_, err = u.Client.JoinRoomByID(ctx, id.RoomID(room))
		return err == nil
	})
	return id.RoomID(room)
}

// waitRoomBody polls the room's messages on the server until one contains text.
func waitRoomBody(ctx context.Context, u *harness.MatrixUser, room id.RoomID, text string) error {
	for {
		if msgs, err := u.RoomMessages(ctx, room); err == nil {
			for _, evt := range msgs {
				if strings.Contains(harness.Body(evt), text) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no message containing %q in %s: %w", text, room, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
