package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// TestMatrixToXMPPDelivery checks the Matrix → XMPP direction across crashes on the real stack
// (Prosody, Dendrite, the bridge binary), for a plaintext contact and an OMEMO 2 contact (our
// omemoxmpp client): the bridge is SIGKILLed right after a burst of Matrix messages (still
// queued in it), messages are sent while it is down (Dendrite flushes them as soon as the
// appservice answers, before the XMPP login and the OMEMO device are up), and it is SIGKILLed
// again just after it started sending a batch. Every Matrix message must reach the contact
// exactly once and in order. Last, the bridge starts while the XMPP server is down, is killed
// with the flushed messages waiting for the login, and starts again: they arrive once the
// server is back.
func TestMatrixToXMPPDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody, Dendrite and the bridge")
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testMatrixToXMPPDelivery(t, backend) })
	}
}

// m2xChat is one portal and the contact's end of it.
type m2xChat struct {
	name string
	room id.RoomID
	peer *harness.Peer
	// xc decrypts for the OMEMO contact; nil for the plaintext one.
	xc *omemoxmpp.Client
	// sent are the bodies sent from Matrix, in order, and events their event IDs.
	sent   []string
	events []id.EventID
	// got are the bodies received from the bridge, in order, and seen how
	// far the peer's received messages were read.
	got  []string
	ids  map[string]string
	seen int
}

func testMatrixToXMPPDelivery(t *testing.T, backend string) {
	s := newStack(t, backend, func(c *harness.BridgeConfig) { c.LogLevel = "debug" })
	alice, alicePW := s.account(t, "dalice")
	bob, bobPW := s.account(t, "dbob")
	carol, carolPW := s.account(t, "dcarol")
	u := s.matrixUser(t, "mxdeliver")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	bobC := s.peer(t, bob, bobPW, "d")
	hi := uniq("hi from bob")
	if err := bobC.SendChat(ctx, alice, "", "", hi); err != nil {
		t.Fatal(err)
	}
	bobRoom := findPortal(ctx, t, s, u, mgmt, bob, hi)

	carolC := s.peer(t, carol, carolPW, "d")
	xc := omemoPeer(ctx, t, carolC, carol, alice)
	hi = uniq("hi from carol")
	out, err := xc.Encrypt(ctx, alice, hi)
	if err != nil {
		t.Fatal(err)
	}
	r, err := omemoxmpp.BuildMessage(stanza.Message{To: alice, Type: stanza.ChatMessage}, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := carolC.Session.Send(ctx, r); err != nil {
		t.Fatal(err)
	}
	carolRoom := findPortal(ctx, t, s, u, mgmt, carol, hi)

	chats := []*m2xChat{
		{name: "plain", room: bobRoom, peer: bobC, seen: bobC.Cursor(), ids: map[string]string{}},
		{name: "omemo", room: carolRoom, peer: carolC, xc: xc, seen: carolC.Cursor(), ids: map[string]string{}},
	}
	sendBatch := func(label string, n int) {
		t.Helper()
		for i := range n {
			for _, c := range chats {
				body := fmt.Sprintf("%s %s %03d", c.name, label, i)
				resp, err := u.Client.SendText(ctx, c.room, body)
				if err != nil {
					t.Fatalf("sending %q: %v", body, err)
				}
				c.sent = append(c.sent, body)
				c.events = append(c.events, resp.EventID)
			}
		}
	}
	start := func() {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, time.Minute)
		defer scancel()
		if err := s.bridge.Start(sctx); err != nil {
			t.Fatal(err)
		}
	}

	// Killed while a burst is queued in the bridge.
	sendBatch("burst", 15)
	killBridgeNow(t, s.bridge)
	// Sent while the bridge is down: flushed by Dendrite before the login is up.
	sendBatch("down", 10)
	start()
	// Killed just after it started sending a batch.
	sendBatch("live", 10)
	waitM2X(ctx, t, chats, alice, func(c *m2xChat) bool { return len(c.got) > len(c.sent)-10 })
	killBridgeNow(t, s.bridge)
	start()
	// Started while the XMPP server is down: the flushed messages wait for the login, stored;
	// killed there and started again, they are replayed and wait again until the server is back.
	waitM2X(ctx, t, chats, alice, func(c *m2xChat) bool { return len(c.got) >= len(c.sent) })
	killBridgeNow(t, s.bridge)
	s.prosody.Stop()
	sendBatch("xmppdown", 8)
	start()
	waitIntakePending(ctx, t, s, 2*8)
	killBridgeNow(t, s.bridge)
	start()
	s.prosody.Restart(t)
	// The contacts' connections died with the server; what the bridge sends now waits for them
	// in the server's offline storage.
	for _, c := range chats {
		c.peer = s.peer(t, c.peer.JID.Bare(), map[string]string{"plain": bobPW, "omemo": carolPW}[c.name], "d2")
		c.seen = 0
	}
	// A crash between the XMPP send and its record, made by hand on the stopped bridge's
	// database: an event already delivered goes back to "sending" (and out of bridgev2's message
	// table), and a new one is stored as "sending" before it was ever sent. On start the bridge
	// looks in the account's archive: the first is there and is not sent again, the second is
	// not and is sent.
	waitM2X(ctx, t, chats, alice, func(c *m2xChat) bool { return len(c.got) >= len(c.sent) })
	killBridgeNow(t, s.bridge)
	for _, c := range chats {
		interruptedSend(ctx, t, s, u, c, c.events[len(c.events)-1], false)
		body := fmt.Sprintf("%s interrupted 000", c.name)
		resp, err := u.Client.SendText(ctx, c.room, body)
		if err != nil {
			t.Fatal(err)
		}
		c.sent = append(c.sent, body)
		c.events = append(c.events, resp.EventID)
		interruptedSend(ctx, t, s, u, c, resp.EventID, true)
	}
	start()
	// A last message per chat: anything replayed comes before it, as order is kept.
	sendBatch("last", 1)
	waitM2X(ctx, t, chats, alice, func(c *m2xChat) bool {
		return len(c.got) > 0 && c.got[len(c.got)-1] == c.sent[len(c.sent)-1]
	})

	for _, c := range chats {
		lost, dup, disorder := countDelivery(c.sent, c.got)
		t.Logf("%s (%s): sent %d, received %d, lost %d, duplicated %d, out of order %d",
			c.name, backend, len(c.sent), len(c.got), lost, dup, disorder)
		if lost+dup+disorder > 0 {
			t.Errorf("%s: %d lost, %d duplicated, %d out of order; received %s", c.name, lost, dup, disorder, shortList(c.got))
		}
		for body, xmppID := range c.ids {
			if !strings.HasPrefix(xmppID, "mxb-") {
				t.Errorf("%s: %q came with id %q, not the bridge's id for its event", c.name, body, xmppID)
			}
		}
	}
	// At least the interrupted sends made by hand; a kill can make more.
	if n := s.bridge.CountLog("was sent to XMPP before a crash (found in the archive)"); n < len(chats) {
		t.Errorf("%d interrupted sends found in the archive, want at least %d", n, len(chats))
	}
	if n := s.bridge.CountLog("Matrix event interrupted before it reached the server"); n < len(chats) {
		t.Errorf("%d interrupted sends not in the archive, want at least %d", n, len(chats))
	}
	if n := s.bridge.CountLog("Replaying Matrix events stored before the last stop"); n == 0 {
		t.Error("no replay of stored Matrix events after the kills: the test did not exercise the intake")
	}
}

// findPortal waits until the user is joined, on the server, to a room with contact's ghost that
// holds body, and returns it. It asks the server rather than the user's /sync: the portal's first
// message can come before the user's join, and the sync of a newly joined room may not show it.
func findPortal(ctx context.Context, t *testing.T, s *stack, u *harness.MatrixUser, mgmt id.RoomID, contact jid.JID, body string) id.RoomID {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		joined, err := u.Client.JoinedRooms(ctx)
		if err == nil {
			for _, room := range joined.JoinedRooms {
				if room == mgmt {
					continue
				}
				members, err := u.Client.JoinedMembers(ctx, room)
				if err != nil {
					continue
				}
				if _, ok := members.Joined[s.ghost(contact)]; !ok {
					continue
				}
				msgs, err := u.RoomMessages(ctx, room)
				if err != nil {
					continue
				}
				for _, evt := range msgs {
					if harness.Body(evt) == body {
						return room
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no portal with %s holding %q: %v", contact, body, err)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// interruptedSend puts evt into the state a crash between its XMPP send and the record of it
// leaves: "sending" in the bridge's intake, not in bridgev2's message table. With insert the
// row is new (the event reached the homeserver while the bridge was down).
func interruptedSend(ctx context.Context, t *testing.T, s *stack, u *harness.MatrixUser, c *m2xChat, evt id.EventID, insert bool) {
	t.Helper()
	full, err := getEventWhenReadable(ctx, u, c.room, evt)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		db, q := s.openDB(t, false, q)
		defer db.Close()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if insert {
		exec(`INSERT INTO matrix_intake (event_id, room_id, seq, event_json, state, xmpp_id, received)
			SELECT ?, ?, MAX(seq)+1, ?, 1, '', ? FROM matrix_intake`, evt.String(), c.room.String(), string(js), time.Now().UnixMilli())
		return
	}
	exec(`UPDATE matrix_intake SET state=1, event_json=? WHERE event_id=?`, string(js), evt.String())
	exec(`DELETE FROM message WHERE mxid=?`, evt.String())
}

// getEventWhenReadable is GET /event for an event just sent: Dendrite answers the send before
// the event can be read back (M_NOT_FOUND for a moment), so a 404 is asked again for up to 10 s;
// any other error is returned at once.
func getEventWhenReadable(ctx context.Context, u *harness.MatrixUser, room id.RoomID, evt id.EventID) (*event.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		full, err := u.Client.GetEvent(ctx, room, evt)
		if err == nil || !errors.Is(err, mautrix.MNotFound) {
			return full, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("event %s still not readable: %w", evt, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitIntakePending waits until the bridge has stored at least n Matrix events it has not
// handled yet.
func waitIntakePending(ctx context.Context, t *testing.T, s *stack, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		got := s.query(t, `SELECT COUNT(*) FROM matrix_intake WHERE state<3`)
		if len(got) == 1 {
			if k, err := strconv.Atoi(got[0]); err == nil && k >= n {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the bridge did not store %d pending Matrix events (has %v)", n, got)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// killBridgeNow SIGKILLs the bridge's process group (a crash at whatever point it is) and
// reaps it.
func killBridgeNow(t *testing.T, b *harness.Bridge) {
	t.Helper()
	if pid := b.PID(); pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	_ = b.Stop()
}

// waitM2X reads what the contacts received from the bridge until done holds for every chat.
func waitM2X(ctx context.Context, t *testing.T, chats []*m2xChat, account jid.JID, done func(*m2xChat) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	for {
		all := true
		for _, c := range chats {
			readM2X(ctx, t, c, account)
			if !done(c) {
				all = false
			}
		}
		if all {
			return
		}
		select {
		case <-ctx.Done():
			for _, c := range chats {
				t.Logf("%s: sent %d, received %d: %s", c.name, len(c.sent), len(c.got), shortList(c.got))
			}
			t.Fatal("the contacts did not receive the Matrix messages in time")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readM2X appends the bodies of the messages c's contact received from the bridge since the
// last call, decrypting OMEMO ones in order (once each: the ratchet moves on).
func readM2X(ctx context.Context, t *testing.T, c *m2xChat, account jid.JID) {
	t.Helper()
	msgs := c.peer.Received()
	for ; c.seen < len(msgs); c.seen++ {
		m := msgs[c.seen]
		if m.Carbon || !strings.HasPrefix(m.From, account.String()+"/") {
			continue
		}
		body := m.Body
		if c.xc != nil {
			if m.OMEMO == nil && m.Body != "" {
				t.Errorf("%s: the OMEMO contact got a plaintext message: %q", c.name, m.Body)
				continue
			}
			if m.OMEMO == nil || m.OMEMO.Payload == nil {
				// Heartbeats and key transports carry no message.
				continue
			}
			from := jid.MustParse(m.From)
			dec, err := c.xc.Decrypt(ctx, from, &omemoxmpp.Received{From: from, Elements: []*omemo.Encrypted{m.OMEMO}})
			if err != nil {
				t.Fatalf("%s: decrypting a message from the bridge: %v", c.name, err)
			}
			body = dec.Body
		} else if m.OMEMO != nil {
			t.Fatalf("%s: the plaintext contact got an OMEMO message", c.name)
		}
		if body == "" {
			continue
		}
		c.got = append(c.got, body)
		id := m.OriginID
		if id == "" {
			id = m.ID
		}
		c.ids[body] = id
	}
}

// countDelivery compares what was sent with what arrived: bodies never received, bodies received
// more than once, and bodies received before one sent earlier.
func countDelivery(sent, got []string) (lost, dup, disorder int) {
	index := make(map[string]int, len(sent))
	for i, b := range sent {
		index[b] = i
	}
	count := map[string]int{}
	last := -1
	for _, b := range got {
		i, ok := index[b]
		if !ok {
			continue
		}
		count[b]++
		if count[b] > 1 {
			dup++
			continue
		}
		if i < last {
			disorder++
		}
		last = max(last, i)
	}
	for _, b := range sent {
		if count[b] == 0 {
			lost++
		}
	}
	return lost, dup, disorder
}
