package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// historyMsg is one message exchanged before the Matrix user logged in.
type historyMsg struct {
	body   string
	sender id.UserID
	sent   time.Time
	// notice is set for messages that must arrive as m.notice; notBody must not be in the portal.
	notice  bool
	notBody string
}

// TestBackfill: chats that happened before the login (in the account's archive on Prosody) appear
// in a new portal, in order, from the right ghosts, at their original times, each once, before
// the message that created the portal; a restart duplicates nothing. Once through start-chat (bob)
// and once through the contact's new message (carol). Dendrite has no batch send, so bridgev2
// sends the history as ordinary events with the appservice's timestamp override.
func TestBackfill(t *testing.T) {
	sc := &scenario{stack: newStack(t, "sqlite")}
	sc.alice, sc.alicePW = sc.account(t, "alice")
	var carolPW string
	sc.bob, sc.bobPW = sc.account(t, "bob")
	sc.carol, carolPW = sc.account(t, "carol")
	sc.phone = sc.peer(t, sc.alice, sc.alicePW, "phone")
	sc.bobC = sc.peer(t, sc.bob, sc.bobPW, "laptop")
	sc.carolC = sc.peer(t, sc.carol, carolPW, "laptop")

	bobHistory := sc.exchange(t, sc.bobC, sc.bob, "bob", 2)
	bobHistory = append(bobHistory, sc.omemoHistory(t))
	carolHistory := sc.exchange(t, sc.carolC, sc.carol, "carol", 1)

	sc.user = sc.matrixUser(t, "mxuser")
	sc.testLogin(t)
	if !sc.loggedIn {
		t.FailNow()
	}

	var bobRoom, carolRoom id.RoomID
	t.Run("StartChatShowsHistory", func(t *testing.T) {
		ctx, cancel := stepCtx()
		defer cancel()
		got, err := sc.user.Command(ctx, sc.mgmt, sc.bot, "start-chat "+sc.bob.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, "Created chat with") {
			t.Fatalf("start-chat answered %q", got)
		}
		bobRoom, err = sc.user.FindRoomWith(ctx, sc.ghost(sc.bob), sc.mgmt)
		if err != nil {
			t.Fatal(err)
		}
		newMsg := uniq("bob writes after the backfill")
		sc.waitHistory(t, bobRoom, bobHistory)
		if err := sc.bobC.SendChat(ctx, sc.alice, "", "", newMsg); err != nil {
			t.Fatal(err)
		}
		// Bob's history holds an OMEMO message (undecryptable here, a notice): the chat is
		// encrypted since, so his plaintext carries the "not encrypted" mark.
		sc.checkPortal(t, bobRoom, append(bobHistory, historyMsg{body: notEncryptedMark + newMsg, sender: sc.ghost(sc.bob), sent: time.Now()}))
		bobHistory = append(bobHistory, historyMsg{body: notEncryptedMark + newMsg, sender: sc.ghost(sc.bob)})
	})
	t.Run("IncomingMessageShowsHistory", func(t *testing.T) {
		ctx, cancel := stepCtx()
		defer cancel()
		newMsg := uniq("carol writes to the bridged account")
		sent := time.Now()
		if err := sc.carolC.SendChat(ctx, sc.alice, "", "", newMsg); err != nil {
			t.Fatal(err)
		}
		var err error
		carolRoom, err = sc.user.FindRoomWith(ctx, sc.ghost(sc.carol), sc.mgmt, bobRoom)
		if err != nil {
			t.Fatal(err)
		}
		carolHistory = append(carolHistory, historyMsg{body: newMsg, sender: sc.ghost(sc.carol), sent: sent})
		sc.waitHistory(t, carolRoom, carolHistory)
		sc.checkPortal(t, carolRoom, carolHistory)
	})
	t.Run("RestartDuplicatesNothing", func(t *testing.T) {
		if bobRoom == "" || carolRoom == "" {
			t.Fatal("needs both portals")
		}
		presCur := sc.phone.PresenceCursor()
		sc.restartBridge(t, nil)
		ctx, cancel := stepCtx()
		defer cancel()
		if _, err := sc.phone.WaitPresence(ctx, presCur, func(p harness.ReceivedPresence) bool {
			from, err := jid.Parse(p.From)
			return err == nil && p.Type == "" && from.Bare().Equal(sc.alice) && !from.Equal(sc.phone.JID)
		}); err != nil {
			t.Fatalf("the bridge did not reconnect after the restart: %v", err)
		}
		for _, c := range []struct {
			peer    *harness.Peer
			contact jid.JID
			room    id.RoomID
			history []historyMsg
			mark    string
		}{{sc.bobC, sc.bob, bobRoom, bobHistory, notEncryptedMark}, {sc.carolC, sc.carol, carolRoom, carolHistory, ""}} {
			barrier := uniq("barrier after restart")
			if err := c.peer.SendChat(ctx, sc.alice, "", "", barrier); err != nil {
				t.Fatal(err)
			}
			if _, _, err := sc.user.WaitEvent(ctx, c.room, 0, harness.IsMessage(sc.ghost(c.contact), barrier)); err != nil {
				t.Fatalf("barrier never reached the portal with %s: %v", c.contact, err)
			}
			sc.checkPortal(t, c.room, append(c.history, historyMsg{body: c.mark + barrier, sender: sc.ghost(c.contact)}))
		}
	})
}

// exchange sends rounds of messages contact → alice (received by her phone) and alice's phone →
// contact before the login, a little apart so that their times differ, and returns them in order.
func (sc *scenario) exchange(t *testing.T, peer *harness.Peer, contact jid.JID, name string, rounds int) []historyMsg {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	var out []historyMsg
	for i := range rounds {
		in := uniq(fmt.Sprintf("history %d from %s", i, name))
		cur := sc.phone.Cursor()
		id := ""
		if i%2 == 1 {
			id = fmt.Sprintf("hist-%s-%d-%d", name, i, time.Now().UnixNano())
		}
		sent := time.Now()
		if err := peer.SendChat(ctx, sc.alice, id, "", in); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sc.phone.WaitMessage(ctx, cur, bodyIs(in)); err != nil {
			t.Fatalf("alice's phone did not get %q: %v", in, err)
		}
		out = append(out, historyMsg{body: in, sender: sc.ghost(contact), sent: sent})
		time.Sleep(1100 * time.Millisecond)
		answer := uniq(fmt.Sprintf("history %d from alice to %s", i, name))
		cur = peer.Cursor()
		sent = time.Now()
		if err := sc.phone.SendChat(ctx, contact, "", "", answer); err != nil {
			t.Fatal(err)
		}
		if _, _, err := peer.WaitMessage(ctx, cur, bodyIs(answer)); err != nil {
			t.Fatalf("%s did not get %q: %v", contact, answer, err)
		}
		out = append(out, historyMsg{body: answer, sender: sc.ghost(sc.alice), sent: sent})
		time.Sleep(1100 * time.Millisecond)
	}
	return out
}

// omemoHistoryNotice is what the portal shows for an archived OMEMO message the bridge's device
// cannot read (bridge/backfill.go).
const omemoHistoryNotice = "[OMEMO message from before the bridge's device existed (not encrypted for it), its text cannot be shown]"

// omemoHistory has bob send an OMEMO 0.3 message to alice before the login: encrypted for a device
// of alice's phone, not for the bridge's (which does not exist yet). Backfill shows it as a notice,
// never its fallback body.
func (sc *scenario) omemoHistory(t *testing.T) historyMsg {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	fallback := uniq("I sent you an OMEMO encrypted message")
	cur := sc.phone.Cursor()
	sent := time.Now()
	raw := fmt.Sprintf(`<message xmlns='jabber:client' to='%s' type='chat' id='omemo-hist-%d'>`+
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='4242'><key rid='31337'>AAAAAAAA</key>`+
		`<iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAAAAAA</payload></encrypted>`+
		`<store xmlns='urn:xmpp:hints'/><body>%s</body></message>`, sc.alice, time.Now().UnixNano(), fallback)
	if err := sc.bobC.SendRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.phone.WaitMessage(ctx, cur, bodyIs(fallback)); err != nil {
		t.Fatalf("alice's phone did not get bob's OMEMO message: %v", err)
	}
	time.Sleep(1100 * time.Millisecond)
	return historyMsg{body: omemoHistoryNotice, sender: sc.ghost(sc.bob), sent: sent, notice: true, notBody: fallback}
}

// notEncryptedMark prefixes a contact's plaintext in a chat that is OMEMO-encrypted, which a
// chat is once the contact sent an OMEMO message, decryptable or not (bridge/trust.go).
const notEncryptedMark = "[not encrypted] "

// waitHistory waits until every message of want is in room.
func (sc *scenario) waitHistory(t *testing.T, room id.RoomID, want []historyMsg) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	for _, m := range want {
		if _, _, err := sc.user.WaitEvent(ctx, room, 0, harness.IsMessage("", m.body)); err != nil {
			t.Fatalf("%q never appeared in %s: %v", m.body, room, err)
		}
	}
}

// checkPortal reads room from the server (once the last message of want is there) and checks
// that want's messages are in it in order, each exactly once, from the right senders and (where
// want knows when they were sent) with their original times.
func (sc *scenario) checkPortal(t *testing.T, room id.RoomID, want []historyMsg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	last := want[len(want)-1]
	if _, _, err := sc.user.WaitEvent(ctx, room, 0, harness.IsMessage(last.sender, last.body)); err != nil {
		t.Fatalf("%q never appeared in %s: %v", last.body, room, err)
	}
	msgs := roomEvents(ctx, t, sc.user, room)
	byBody := map[string][]*event.Event{}
	var order []string
	for _, evt := range msgs {
		b := harness.Body(evt)
		byBody[b] = append(byBody[b], evt)
		order = append(order, b)
	}
	pos := -1
	for _, m := range want {
		evts := byBody[m.body]
		if len(evts) != 1 {
			t.Errorf("%q is in the portal %d times, want once", m.body, len(evts))
			continue
		}
		evt := evts[0]
		if evt.Sender != m.sender {
			t.Errorf("%q was sent by %s, want %s", m.body, evt.Sender, m.sender)
		}
		if !m.sent.IsZero() {
			ts := time.UnixMilli(evt.Timestamp)
			if d := ts.Sub(m.sent); d < -2*time.Second || d > 3*time.Second {
				t.Errorf("%q has origin_server_ts %s, sent at %s (off by %s)", m.body, ts.Format(time.RFC3339Nano), m.sent.Format(time.RFC3339Nano), d)
			}
		}
		if m.notice && evt.Content.AsMessage().MsgType != event.MsgNotice {
			t.Errorf("%q is a %s, want a notice", m.body, evt.Content.AsMessage().MsgType)
		}
		if m.notBody != "" && len(byBody[m.notBody]) > 0 {
			t.Errorf("the fallback body %q of an OMEMO message reached the portal", m.notBody)
		}
		i := indexOf(order, m.body)
		if i < pos {
			t.Errorf("%q is out of order in the portal: %s", m.body, shortList(order))
		}
		pos = i
	}
}

func indexOf(ss []string, s string) int {
	for i, v := range ss {
		if v == s {
			return i
		}
	}
	return -1
}
