package mucinvite

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, xml string
		want      Invite
		err       error
	}{
		{"direct", `<message xmlns="jabber:client" from="bob@example.org/phone" to="alice@example.org"><x xmlns="jabber:x:conference" jid="Room@Conf.example.org" password="pw" reason="come"/></message>`,
			Invite{Kind: Direct, Room: jid.MustParse("room@conf.example.org"), From: jid.MustParse("bob@example.org/phone"), Password: "pw", Reason: "come"}, nil},
		{"mediated", `<message xmlns="jabber:client" from="room@conf.example.org" to="alice@example.org"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="bob@example.org/laptop"><reason>join us</reason></invite><password>pw</password></x><body>fallback</body></message>`,
			Invite{Kind: Mediated, Room: jid.MustParse("room@conf.example.org"), From: jid.MustParse("bob@example.org/laptop"), Password: "pw", Reason: "join us"}, nil},
		{"declined", `<message xmlns="jabber:client" from="room@conf.example.org"><x xmlns="http://jabber.org/protocol/muc#user"><decline from="carol@example.org"><reason>busy</reason></decline></x></message>`,
			Invite{Kind: Declined, Room: jid.MustParse("room@conf.example.org"), From: jid.MustParse("carol@example.org"), Reason: "busy"}, nil},
		{"occupant PM marker", `<message xmlns="jabber:client" type="chat" from="room@conf.example.org/bob"><x xmlns="http://jabber.org/protocol/muc#user"/><body>hi</body></message>`, Invite{}, ErrNoInvite},
		{"plain", `<message xmlns="jabber:client" from="bob@example.org"><body>hi</body></message>`, Invite{}, ErrNoInvite},
		{"mediated from an occupant", `<message xmlns="jabber:client" from="room@conf.example.org/bob"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="bob@example.org"/></x></message>`, Invite{}, ErrMalformed},
		{"mediated from a server", `<message xmlns="jabber:client" from="conf.example.org"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="bob@example.org"/></x></message>`, Invite{}, ErrMalformed},
		{"direct to a server", `<message xmlns="jabber:client" from="bob@example.org"><x xmlns="jabber:x:conference" jid="conf.example.org"/></message>`, Invite{}, ErrMalformed},
		{"groupchat", `<message xmlns="jabber:client" type="groupchat" from="room@conf.example.org"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="bob@example.org"/></x></message>`, Invite{}, ErrNoInvite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(xml.NewDecoder(strings.NewReader(tc.xml)))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tc.want.Kind || !got.Room.Equal(tc.want.Room) || !got.From.Equal(tc.want.From) || got.Password != tc.want.Password || got.Reason != tc.want.Reason {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	enc := func(r xml.TokenReader) string {
		var b bytes.Buffer
		e := xml.NewEncoder(&b)
		if _, err := xmlstream.Copy(e, r); err != nil {
			t.Fatal(err)
		}
		_ = e.Flush()
		return b.String()
	}
	room, bob := jid.MustParse("room@conf.example.org"), jid.MustParse("bob@example.org/x")
	if got, want := enc(MediatedInvite(room, bob, "i1", "hi")), `<message type="normal" to="room@conf.example.org" id="i1"><x xmlns="http://jabber.org/protocol/muc#user"><invite to="bob@example.org"><reason>hi</reason></invite></x></message>`; got != want {
		t.Errorf("invite:\n got %s\nwant %s", got, want)
	}
	if got, want := enc(Decline(room, bob, "d1", "")), `<message type="normal" to="room@conf.example.org" id="d1"><x xmlns="http://jabber.org/protocol/muc#user"><decline to="bob@example.org/x"></decline></x></message>`; got != want {
		t.Errorf("decline:\n got %s\nwant %s", got, want)
	}
}
