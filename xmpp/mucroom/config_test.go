package mucroom_test

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

func TestConfigureIQ(t *testing.T) {
	room := jid.MustParse("coven@chat.shakespeare.lit/nick")
	for _, tc := range []struct {
		name   string
		fields []mucroom.ConfigField
		want   string
	}{{
		name: "no fields",
		want: `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field></x>`,
	}, {
		name:   "members-only, real JIDs, escaped name",
		fields: []mucroom.ConfigField{{Var: mucroom.FieldRoomName, Value: "a<b"}, {Var: mucroom.FieldMembersOnly, Value: "1"}, {Var: mucroom.FieldWhois, Value: "anyone"}},
		want: `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>` +
			`<field var="muc#roomconfig_roomname"><value>a&lt;b</value></field><field var="muc#roomconfig_membersonly"><value>1</value></field>` +
			`<field var="muc#roomconfig_whois"><value>anyone</value></field></x>`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := xmltest.Encode(mucroom.ConfigureIQ(room, tc.fields))
			want := `<iq type="set" to="coven@chat.shakespeare.lit"><query xmlns="http://jabber.org/protocol/muc#owner">` + tc.want + `</query></iq>`
			if err != nil || got != want {
				t.Errorf("wrong IQ:\nwant=%s\n got=%s (%v)", want, got, err)
			}
		})
	}
}
