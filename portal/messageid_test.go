package portal

import (
	"errors"
	"testing"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"
)

func TestMessageID(t *testing.T) {
	for _, tc := range []struct {
		chat, sender, id string
		want             networkid.MessageID
	}{
		{"bob@example.org", "bob@example.org/phone", "abc", "bob@example.org/bob@example.org/abc"},
		{"bob@example.org", "alice@example.org", "x/y z", "bob@example.org/alice@example.org/x/y z"},
		{"room@muc.example.org", "", "s1", "room@muc.example.org//s1"},
	} {
		var sender jid.JID
		if tc.sender != "" {
			sender = jid.MustParse(tc.sender)
		}
		got := MakeMessageID(jid.MustParse(tc.chat), sender, tc.id)
		if got != tc.want {
			t.Errorf("MakeMessageID = %q, want %q", got, tc.want)
			continue
		}
		p, err := ParseMessageID(got)
		if err != nil || p.Chat != jid.MustParse(tc.chat).Bare().String() || p.ID != tc.id {
			t.Errorf("ParseMessageID(%q) = %+v, %v", got, p, err)
		}
	}
	// The same id from two chats or two senders must not collide.
	a := MakeMessageID(jid.MustParse("bob@example.org"), jid.MustParse("bob@example.org"), "1")
	b := MakeMessageID(jid.MustParse("carol@example.org"), jid.MustParse("carol@example.org"), "1")
	c := MakeMessageID(jid.MustParse("bob@example.org"), jid.MustParse("alice@example.org"), "1")
	if a == b || a == c {
		t.Error("message IDs collide")
	}
	for _, bad := range []networkid.MessageID{"", "x", "a/b", "a/b/", "/b/c"} {
		if _, err := ParseMessageID(bad); !errors.Is(err, ErrBadMessageID) {
			t.Errorf("ParseMessageID(%q) err = %v", bad, err)
		}
	}
}

// TestRoomMessageID: a group chat message is keyed by the room's
// stanza-id, else by nick and the sender's id; both read back.
func TestRoomMessageID(t *testing.T) {
	room := jid.MustParse("room@muc.example.org")
	for _, tc := range []struct {
		name                   string
		stanzaID, nick, id     string
		want                   networkid.MessageID
		wantStanza, wantSender string
	}{
		{"stanza-id", "S1", "bob", "m1", "room@muc.example.org//sid:S1", "S1", ""},
		{"nick and id", "", "bob", "m1", "room@muc.example.org//nick:bob/m1", "", "m1"},
		{"id with a slash", "", "bob", "a/b", "room@muc.example.org//nick:bob/a/b", "", "a/b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RoomMessageID(room, tc.stanzaID, tc.nick, tc.id)
			if got != tc.want {
				t.Fatalf("RoomMessageID = %q, want %q", got, tc.want)
			}
			p, err := ParseMessageID(got)
			if err != nil {
				t.Fatal(err)
			}
			if p.StanzaID() != tc.wantStanza || p.SenderGivenID() != tc.wantSender {
				t.Errorf("StanzaID = %q, SenderGivenID = %q; want %q, %q", p.StanzaID(), p.SenderGivenID(), tc.wantStanza, tc.wantSender)
			}
		})
	}
}
