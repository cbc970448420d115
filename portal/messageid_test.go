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
