package xmppclient

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucinvite"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// TestPrivateOccupant: a 1:1 message is a private message with an occupant
// when its peer is a full JID of a known room or it carries the muc#user
// marker as a child of its own; a contact's message is not, whatever it
// nests deeper.
func TestPrivateOccupant(t *testing.T) {
	rooms := NewRooms()
	rooms.StartJoin(jid.MustParse("known@muc.example.org"), "me", mucroom.Info{}, mucadmin.RoomInfo{})
	const marker = `<x xmlns="http://jabber.org/protocol/muc#user"/>`
	for _, tc := range []struct {
		name   string
		stanza string
		fromMe bool
		want   string
	}{
		{"contact", `<message` + nsC + ` from="bob@example.org/phone" type="chat"><body>hi</body></message>`, false, ""},
		{"contact, marker nested deeper", `<message` + nsC + ` from="bob@example.org/phone" type="chat"><encrypted xmlns="urn:xmpp:omemo:2">` + marker + `</encrypted></message>`, false, ""},
		{"occupant with marker", `<message` + nsC + ` from="room@muc.example.org/nick" type="chat"><body>hi</body>` + marker + `</message>`, false, "room@muc.example.org/nick"},
		{"occupant of a known room", `<message` + nsC + ` from="known@muc.example.org/nick" type="chat"><body>hi</body></message>`, false, "known@muc.example.org/nick"},
		{"ours to an occupant", `<message` + nsC + ` to="room@muc.example.org/nick" type="chat"><body>hi</body>` + marker + `</message>`, true, "room@muc.example.org/nick"},
		{"bare JID", `<message` + nsC + ` from="room@muc.example.org" type="chat"><body>hi</body>` + marker + `</message>`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			occ, ok := PrivateOccupant(tokens(t, tc.stanza), tc.fromMe, rooms)
			if ok != (tc.want != "") || (ok && occ.String() != tc.want) {
				t.Errorf("PrivateOccupant = %v, %v; want %q", occ, ok, tc.want)
			}
		})
	}
}

// TestParseInvite: direct and mediated invitations are read, a message
// without one (or with its element nested deeper) is ErrNoInvite.
func TestParseInvite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stanza string
		room   string // "" for ErrNoInvite
		kind   mucinvite.Kind
	}{
		{"chat", `<message` + nsC + ` from="bob@example.org/phone" type="chat"><body>hi</body></message>`, "", 0},
		{"nested deeper", `<message` + nsC + ` from="bob@example.org/phone"><encrypted xmlns="urn:xmpp:omemo:2"><x xmlns="jabber:x:conference" jid="room@muc.example.org"/></encrypted></message>`, "", 0},
		{"direct", `<message` + nsC + ` from="bob@example.org/phone"><x xmlns="jabber:x:conference" jid="room@muc.example.org"/></message>`, "room@muc.example.org", mucinvite.Direct},
		{"mediated", `<message` + nsC + ` from="room@muc.example.org"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="bob@example.org/phone"/></x></message>`, "room@muc.example.org", mucinvite.Mediated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := ParseInvite(tokens(t, tc.stanza))
			if tc.room == "" {
				if !errors.Is(err, mucinvite.ErrNoInvite) {
					t.Errorf("ParseInvite = %+v, %v; want ErrNoInvite", inv, err)
				}
				return
			}
			if err != nil || inv.Room.String() != tc.room || inv.Kind != tc.kind {
				t.Errorf("ParseInvite = %+v, %v; want a %v invitation to %s", inv, err, tc.kind, tc.room)
			}
		})
	}
}
