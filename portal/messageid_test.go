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

// TestPrivateMessageID: a private message with an occupant is keyed by the
// nick too, so two occupants' equal ids do not collide; the id the sender
// gave reads back from new and legacy IDs alike.
func TestPrivateMessageID(t *testing.T) {
	room := "room@muc.example.org"
	me := jid.MustParse("alice@example.org")
	for _, tc := range []struct {
		name             string
		occupant, sender string
		id               string
		want             networkid.MessageID
	}{
		{"occupant's", room + "/bob", room, "m1", "room@muc.example.org/room@muc.example.org/pm:bob/m1"},
		{"ours", room + "/bob", me.String(), "m1", "room@muc.example.org/alice@example.org/pm:bob/m1"},
		{"nick with a slash", room + "/a/b", room, "x", "room@muc.example.org/room@muc.example.org/pm:a%2Fb/x"},
		{"nick with a percent", room + "/a%2Fb", room, "x", "room@muc.example.org/room@muc.example.org/pm:a%252Fb/x"},
		{"id with a slash", room + "/a", room, "b/x", "room@muc.example.org/room@muc.example.org/pm:a/b/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PrivateMessageID(jid.MustParse(tc.occupant), jid.MustParse(tc.sender), tc.id)
			if got != tc.want {
				t.Fatalf("PrivateMessageID = %q, want %q", got, tc.want)
			}
			for _, id := range []networkid.MessageID{got, LegacyPrivateMessageID(jid.MustParse(tc.occupant), jid.MustParse(tc.sender), tc.id)} {
				p, err := ParseMessageID(id)
				if err != nil || p.PrivateGivenID() != tc.id {
					t.Errorf("PrivateGivenID of %q = %q (%v), want %q", id, p.PrivateGivenID(), err, tc.id)
				}
			}
		})
	}
	a := PrivateMessageID(jid.MustParse(room+"/bob"), jid.MustParse(room), "1")
	b := PrivateMessageID(jid.MustParse(room+"/carol"), jid.MustParse(room), "1")
	c := PrivateMessageID(jid.MustParse(room+"/a/b"), jid.MustParse(room), "x")
	d := PrivateMessageID(jid.MustParse(room+"/a"), jid.MustParse(room), "b/x")
	if a == b || c == d {
		t.Errorf("private message IDs of two occupants collide: %q %q, %q %q", a, b, c, d)
	}
}
