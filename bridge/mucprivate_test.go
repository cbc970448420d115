package bridge

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestPrivateMessageIDs: private messages with occupants run the one
// pipeline with IDs and portals of their own: two occupants choosing the
// same message id are two messages in two portals, and ours to an occupant
// are named by the nick too.
func TestPrivateMessageIDs(t *testing.T) {
	c := &Client{login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "alice@example.org"}}, account: jid.MustParse("alice@example.org")}
	room := jid.MustParse("room@muc.example.org")
	pm := func(nick string, fromMe bool) *incoming {
		return &incoming{Message: xmppclient.Message{Peer: room, XMPPID: "same", FromMe: fromMe}, Occupant: jid.MustParse(room.String() + "/" + nick)}
	}
	for _, tc := range []struct {
		name       string
		in         *incoming
		wantID     networkid.MessageID
		wantKey    networkid.PortalKey
		wantSender networkid.UserID
	}{
		{"bob's", pm("bob", false), "room@muc.example.org/room@muc.example.org/pm:bob/same",
			portal.PMKey(jid.MustParse("room@muc.example.org/bob"), c.login.ID), puppet.OccupantUserID(jid.MustParse("room@muc.example.org/bob"))},
		{"carol's", pm("carol", false), "room@muc.example.org/room@muc.example.org/pm:carol/same",
			portal.PMKey(jid.MustParse("room@muc.example.org/carol"), c.login.ID), puppet.OccupantUserID(jid.MustParse("room@muc.example.org/carol"))},
		{"ours to bob", pm("bob", true), "room@muc.example.org/alice@example.org/pm:bob/same",
			portal.PMKey(jid.MustParse("room@muc.example.org/bob"), c.login.ID), puppet.UserID(c.account)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sender, _ := c.sender(tc.in)
			if id := c.messageID(tc.in); id != tc.wantID {
				t.Errorf("message ID %q, want %q", id, tc.wantID)
			}
			if key := c.portalKey(tc.in); key != tc.wantKey {
				t.Errorf("portal %v, want %v", key, tc.wantKey)
			}
			if sender.Sender != tc.wantSender || sender.IsFromMe != tc.in.FromMe {
				t.Errorf("sender %+v, want %q (from me %v)", sender, tc.wantSender, tc.in.FromMe)
			}
		})
	}
}

// TestPrivateLegacyIDs: messages bridged before the nick was part of the
// ID are still read: one seen again is not bridged twice, and a correction
// reaches it, but only from its own portal.
func TestPrivateLegacyIDs(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	room := jid.MustParse("room@muc.example.org")
	bob := jid.MustParse("room@muc.example.org/bob")
	key := portal.PMKey(bob, f.c.login.ID)
	bdb := f.c.main.Bridge.DB
	if err := bdb.Portal.Insert(ctx, &database.Portal{PortalKey: key, MXID: "!pm:localhost", Metadata: &portal.Metadata{}}); err != nil {
		t.Fatal(err)
	}
	ghost := puppet.OccupantUserID(bob)
	if err := bdb.Ghost.Insert(ctx, &database.Ghost{ID: ghost, Metadata: &puppet.Metadata{}}); err != nil {
		t.Fatal(err)
	}
	legacy := portal.LegacyPrivateMessageID(bob, room, "old")
	if err := bdb.Message.Insert(ctx, &database.Message{ID: legacy, MXID: "$old", Room: key, SenderID: ghost,
		Timestamp: time.Now(), Metadata: &portal.MessageMetadata{}}); err != nil {
		t.Fatal(err)
	}
	msg := func(id, replace string) *incoming {
		return &incoming{Message: xmppclient.Message{Peer: room, XMPPID: id, Refs: xmppclient.Refs{Replace: replace}}, Occupant: bob}
	}
	if !f.c.bridgedBefore(ctx, msg("old", "")) {
		t.Error("a message bridged under its legacy ID is bridged again")
	}
	if f.c.bridgedBefore(ctx, msg("new", "")) {
		t.Error("a new message is taken for one bridged before")
	}
	for _, tc := range []struct {
		name    string
		replace string
		want    networkid.MessageID
	}{
		{"of a legacy message", "old", legacy},
		{"of a new message", "new", portal.PrivateMessageID(bob, room, "new")},
	} {
		if got := f.c.editTarget(ctx, msg("fix", tc.replace)); got != tc.want {
			t.Errorf("correction %s: target %q, want %q", tc.name, got, tc.want)
		}
	}
	// A legacy ID names the room, not the nick: another occupant's
	// portal may not correct it.
	existing := []*database.Message{{ID: legacy, Room: key}}
	carol := &bridgev2.Portal{Portal: &database.Portal{PortalKey: portal.PMKey(jid.MustParse("room@muc.example.org/carol"), f.c.login.ID)}}
	if err := privateEditInPortal(carol, msg("fix", "old"), existing); err == nil {
		t.Error("a correction from carol's portal reached bob's message")
	}
	own := &bridgev2.Portal{Portal: &database.Portal{PortalKey: key}}
	if err := privateEditInPortal(own, msg("fix", "old"), existing); err != nil {
		t.Errorf("a correction in its own portal refused: %v", err)
	}
}
