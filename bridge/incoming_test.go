package bridge

import (
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
)

// TestInboxIncoming: a message decrypted before a restart comes back out of
// the inbox as the one incoming type, 1:1 or group chat, with the IDs,
// sender and portal it had when it was first received.
func TestInboxIncoming(t *testing.T) {
	alice := jid.MustParse("alice@example.org")
	bob := jid.MustParse("bob@example.org")
	room := jid.MustParse(testRoom)
	c := &Client{account: alice, login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "alice@example.org"}}}
	ts := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	roomID := portal.RoomMessageID(room, "S1", "bob", "x1")
	for _, tc := range []struct {
		name       string
		e          inboxEntry
		wantRoom   bool
		wantID     networkid.MessageID
		wantSender networkid.UserID
		wantFromMe bool
		wantKey    networkid.PortalKey
		wantBody   string
		wantFailed bool
	}{
		{"1:1 from the contact", inboxEntry{MessageID: "m", Peer: bob.String(), XMPPID: "x1", Kind: inboxText, Body: "hi", Trusted: true, Timestamp: ts},
			false, portal.MakeMessageID(bob, bob, "x1"), puppet.UserID(bob), false, portal.DMKey(bob, c.login.ID), "hi", false},
		{"1:1 from our other client", inboxEntry{MessageID: "m", Peer: bob.String(), XMPPID: "x2", FromMe: true, Kind: inboxText, Body: "yo", Timestamp: ts},
			false, portal.MakeMessageID(bob, alice, "x2"), puppet.UserID(alice), true, portal.DMKey(bob, c.login.ID), "yo", false},
		{"1:1 undecryptable", inboxEntry{MessageID: "m", Peer: bob.String(), XMPPID: "x3", Kind: inboxFailed, Body: "notice", Timestamp: ts},
			false, portal.MakeMessageID(bob, bob, "x3"), puppet.UserID(bob), false, portal.DMKey(bob, c.login.ID), "notice", true},
		{"room from an occupant", inboxEntry{MessageID: string(roomID), Peer: room.String(), Sender: bob.String(), XMPPID: "S1", Kind: inboxText, Body: "hello room", Timestamp: ts},
			true, roomID, puppet.UserID(bob), false, c.mucKey(room), "hello room", false},
		{"room from our other client", inboxEntry{MessageID: string(roomID), Peer: room.String(), Sender: alice.String(), FromMe: true, XMPPID: "S1", Kind: inboxText, Body: "mine", Timestamp: ts},
			true, roomID, puppet.UserID(alice), true, c.mucKey(room), "mine", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := c.inboxIncoming(&tc.e)
			if err != nil {
				t.Fatal(err)
			}
			sender, _ := c.sender(in)
			if (in.Room != nil) != tc.wantRoom || c.messageID(in) != tc.wantID || sender.Sender != tc.wantSender ||
				sender.IsFromMe != tc.wantFromMe || c.portalKey(in) != tc.wantKey {
				t.Errorf("room=%v id=%q sender=%+v key=%v", in.Room != nil, c.messageID(in), sender, c.portalKey(in))
			}
			if in.Body != tc.wantBody || in.OMEMO == nil || in.OMEMO.Failed != tc.wantFailed || !in.Timestamp.Equal(ts) {
				t.Errorf("body=%q OMEMO=%+v ts=%v", in.Body, in.OMEMO, in.Timestamp)
			}
			if tc.wantRoom && in.StanzaID != tc.e.XMPPID {
				t.Errorf("room message stanza-id %q, want %q", in.StanzaID, tc.e.XMPPID)
			}
		})
	}
	if _, err := c.inboxIncoming(&inboxEntry{Peer: "@@bad"}); err == nil {
		t.Error("a row with a bad peer was read")
	}
}
