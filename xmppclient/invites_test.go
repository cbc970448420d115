package xmppclient

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
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
