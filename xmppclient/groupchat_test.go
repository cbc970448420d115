package xmppclient

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// TestClassifyGroupchat: what a groupchat message is, before the connector
// names its sender (bridge/muc_test.go tests that part).
func TestClassifyGroupchat(t *testing.T) {
	const room = "room@muc.example.org"
	type want struct {
		kind      GroupchatKind
		nick      string
		body      string
		subject   string
		encrypted bool
	}
	for _, tc := range []struct {
		name      string
		xml       string
		encrypted bool
		refs      Refs
		want      want
	}{
		{"text from an occupant", `<message` + nsC + ` from="` + room + `/bob" type="groupchat" id="b1"><body>hi</body></message>`,
			false, Refs{}, want{kind: GroupchatMessage, nick: "bob", body: "hi"}},
		{"OMEMO: the fallback body goes", `<message` + nsC + ` from="` + room + `/bob" type="groupchat" id="e1"><body>I sent you an OMEMO message</body></message>`,
			true, Refs{}, want{kind: GroupchatMessage, nick: "bob", encrypted: true}},
		{"retraction without body", `<message` + nsC + ` from="` + room + `/bob" type="groupchat" id="r1"/>`,
			false, Refs{Retract: "m1"}, want{kind: GroupchatMessage, nick: "bob"}},
		{"subject by an occupant", `<message` + nsC + ` from="` + room + `/bob" type="groupchat"><subject>Plans</subject></message>`,
			false, Refs{}, want{kind: GroupchatSubject, nick: "bob", subject: "Plans"}},
		{"room notice", `<message` + nsC + ` from="` + room + `" type="groupchat"><body>This room is now non-anonymous</body></message>`,
			false, Refs{}, want{kind: GroupchatIgnore, body: "This room is now non-anonymous"}},
		{"chat state only", `<message` + nsC + ` from="` + room + `/bob" type="groupchat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`,
			false, Refs{}, want{kind: GroupchatIgnore, nick: "bob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mucroom.ParseMessage(tokens(t, tc.xml).Reader())
			if err != nil {
				t.Fatal(err)
			}
			g := ClassifyGroupchat(m, jid.MustParse(room), tc.encrypted, tc.refs)
			got := want{kind: g.Kind, nick: g.Nick, body: g.Body, subject: g.Subject, encrypted: g.Encrypted}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if !g.Room.Equal(jid.MustParse(room)) {
				t.Errorf("room = %s", g.Room)
			}
		})
	}
}
