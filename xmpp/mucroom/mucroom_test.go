package mucroom_test

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

var _ xmlstream.Marshaler = mucroom.Join{}

const (
	nsC    = ` xmlns="jabber:client"`
	nsUser = ` xmlns="http://jabber.org/protocol/muc#user"`
)

func TestJoinLeave(t *testing.T) {
	occ := jid.MustParse("coven@chat.shakespeare.lit/thirdwitch")
	for _, tc := range []struct {
		name string
		r    xml.TokenReader
		want string
	}{{
		name: "join without history",
		r:    mucroom.Join{Occupant: occ, ID: "j1", MaxStanzas: 0}.TokenReader(),
		want: `<presence to="coven@chat.shakespeare.lit/thirdwitch" id="j1"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"></history></x></presence>`,
	}, {
		name: "join with room default history and password",
		r:    mucroom.Join{Occupant: occ, ID: "j2", MaxStanzas: -1, Password: "cauldronburn"}.TokenReader(),
		want: `<presence to="coven@chat.shakespeare.lit/thirdwitch" id="j2"><x xmlns="http://jabber.org/protocol/muc"><password>cauldronburn</password></x></presence>`,
	}, {
		name: "join with history since a time",
		r:    mucroom.Join{Occupant: occ, ID: "j3", MaxStanzas: 50, Since: time.Date(2026, 12, 7, 6, 0, 0, 0, time.FixedZone("x", 3600))}.TokenReader(),
		want: `<presence to="coven@chat.shakespeare.lit/thirdwitch" id="j3"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="50" since="2026-12-07T05:00:00Z"></history></x></presence>`,
	}, {
		name: "no history whatever the time",
		r:    mucroom.Join{Occupant: occ, ID: "j4", MaxStanzas: 0, Since: time.Now()}.TokenReader(),
		want: `<presence to="coven@chat.shakespeare.lit/thirdwitch" id="j4"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"></history></x></presence>`,
	}, {
		name: "leave",
		r:    mucroom.Leave(occ, "l1", ""),
		want: `<presence type="unavailable" to="coven@chat.shakespeare.lit/thirdwitch" id="l1"></presence>`,
	}, {
		name: "leave with status",
		r:    mucroom.Leave(occ, "l2", "gone where the goblins go"),
		want: `<presence type="unavailable" to="coven@chat.shakespeare.lit/thirdwitch" id="l2"><status>gone where the goblins go</status></presence>`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := xmltest.Encode(tc.r)
			if err != nil || got != tc.want {
				t.Errorf("wrong stanza:\nwant=%s\n got=%s (%v)", tc.want, got, err)
			}
		})
	}
}

func TestJoinError(t *testing.T) {
	for _, tc := range []struct {
		cond stanza.Condition
		want error
	}{
		{stanza.Conflict, mucroom.ErrNickConflict},
		{stanza.ItemNotFound, mucroom.ErrNotFound},
		{stanza.RemoteServerNotFound, mucroom.ErrNotFound},
		{stanza.RegistrationRequired, mucroom.ErrMembersOnly},
		{stanza.Forbidden, mucroom.ErrBanned},
		{stanza.NotAuthorized, mucroom.ErrPassword},
		{stanza.ServiceUnavailable, mucroom.ErrFull},
		{stanza.NotAllowed, mucroom.ErrNoRoomCreation},
		{stanza.JIDMalformed, mucroom.ErrNickRejected},
		{stanza.NotAcceptable, mucroom.ErrNickRejected},
		{stanza.InternalServerError, mucroom.ErrJoinFailed},
	} {
		se := stanza.Error{Type: stanza.Cancel, Condition: tc.cond}
		err := mucroom.JoinError(se)
		if !errors.Is(err, tc.want) || !errors.Is(err, stanza.Error{Condition: tc.cond}) {
			t.Errorf("JoinError(%s) = %v, want %v wrapping the stanza error", tc.cond, err, tc.want)
		}
	}
}

func TestParsePresence(t *testing.T) {
	type want struct {
		from, nick, newNick string
		typ                 stanza.PresenceType
		self, hasUser       bool
		user                mucadmin.User
		cond                stanza.Condition
	}
	for _, tc := range []struct {
		name string
		in   string
		want want
		err  error
	}{{
		name: "occupant in a non-anonymous room",
		in: `<presence` + nsC + ` from="coven@chat.shakespeare.lit/firstwitch" id="p1"><x` + nsUser + `>` +
			`<item affiliation="owner" jid="crone1@shakespeare.lit/desktop" role="moderator"/></x></presence>`,
		want: want{from: "coven@chat.shakespeare.lit/firstwitch", nick: "firstwitch", hasUser: true,
			user: mucadmin.User{Item: mucadmin.Item{JID: jid.MustParse("crone1@shakespeare.lit/desktop"), Affiliation: mucadmin.Owner, Role: "moderator"}}},
	}, {
		name: "occupant in a semi-anonymous room",
		in:   `<presence` + nsC + ` from="coven@chat.shakespeare.lit/secondwitch"><x` + nsUser + `><item affiliation="admin" role="moderator"/></x></presence>`,
		want: want{from: "coven@chat.shakespeare.lit/secondwitch", nick: "secondwitch", hasUser: true,
			user: mucadmin.User{Item: mucadmin.Item{Affiliation: mucadmin.Admin, Role: "moderator"}}},
	}, {
		name: "self presence, non-anonymous, nick rewritten",
		in: `<presence` + nsC + ` from="coven@chat.shakespeare.lit/thirdwitch"><x` + nsUser + `><item affiliation="member" role="participant"/>` +
			`<status code="100"/><status code="110"/><status code="210"/></x></presence>`,
		want: want{from: "coven@chat.shakespeare.lit/thirdwitch", nick: "thirdwitch", self: true, hasUser: true,
			user: mucadmin.User{Item: mucadmin.Item{Affiliation: mucadmin.Member, Role: "participant"}, Status: []int{100, 110, 210}}},
	}, {
		name: "occupant leaves",
		in:   `<presence` + nsC + ` from="coven@chat.shakespeare.lit/secondwitch" type="unavailable"><x` + nsUser + `><item affiliation="none" role="none"/></x></presence>`,
		want: want{from: "coven@chat.shakespeare.lit/secondwitch", nick: "secondwitch", typ: stanza.UnavailablePresence, hasUser: true,
			user: mucadmin.User{Item: mucadmin.Item{Affiliation: mucadmin.None, Role: "none"}}},
	}, {
		name: "nick change",
		in: `<presence` + nsC + ` from="coven@chat.shakespeare.lit/thirdwitch" type="unavailable"><x` + nsUser + `>` +
			`<item affiliation="member" nick="oldhag" role="participant"/><status code="303"/></x></presence>`,
		want: want{from: "coven@chat.shakespeare.lit/thirdwitch", nick: "thirdwitch", newNick: "oldhag", typ: stanza.UnavailablePresence, hasUser: true,
			user: mucadmin.User{Item: mucadmin.Item{Nick: "oldhag", Affiliation: mucadmin.Member, Role: "participant"}, Status: []int{303}}},
	}, {
		name: "nick conflict",
		in: `<presence` + nsC + ` from="coven@chat.shakespeare.lit/thirdwitch" type="error" id="j1"><x xmlns="http://jabber.org/protocol/muc"/>` +
			`<error by="coven@chat.shakespeare.lit" type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`,
		want: want{from: "coven@chat.shakespeare.lit/thirdwitch", nick: "thirdwitch", typ: stanza.ErrorPresence, cond: stanza.Conflict},
	}, {
		name: "error without error element",
		in:   `<presence` + nsC + ` from="coven@chat.shakespeare.lit/thirdwitch" type="error"/>`,
		want: want{from: "coven@chat.shakespeare.lit/thirdwitch", nick: "thirdwitch", typ: stanza.ErrorPresence, cond: stanza.UndefinedCondition},
	}, {
		name: "plain presence",
		in:   `<presence` + nsC + ` from="juliet@example.com/balcony"><show>away</show></presence>`,
		want: want{from: "juliet@example.com/balcony", nick: "balcony"},
	}, {
		name: "two muc#user payloads",
		in:   `<presence` + nsC + ` from="coven@chat.shakespeare.lit/x"><x` + nsUser + `/><x` + nsUser + `/></presence>`,
		err:  mucadmin.ErrMalformed,
	}, {
		name: "bad status code",
		in:   `<presence` + nsC + ` from="coven@chat.shakespeare.lit/x"><x` + nsUser + `><status code="1"/></x></presence>`,
		err:  mucadmin.ErrMalformed,
	}, {
		name: "bad from",
		in:   `<presence` + nsC + ` from="@coven"/>`,
		err:  mucadmin.ErrMalformed,
	}, {
		name: "not a presence",
		in:   `<message` + nsC + ` from="coven@chat.shakespeare.lit/x"/>`,
		err:  mucroom.ErrNotPresence,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := mucroom.ParsePresence(xmltest.Reader(tc.in))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
			}
			if tc.err != nil {
				return
			}
			newNick, _ := p.NewNick()
			got := want{from: p.From.String(), nick: p.Nick(), newNick: newNick, typ: p.Type, self: p.Self(), hasUser: p.HasUser, user: p.User}
			if p.Error != nil {
				got.cond = p.Error.Condition
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\nwant=%+v\n got=%+v", tc.want, got)
			}
			if p.Available() != (p.Type == stanza.AvailablePresence) {
				t.Error("Available is wrong")
			}
		})
	}
}

func TestParseMessage(t *testing.T) {
	subject := func(s string) *string { return &s }
	const room = "coven@chat.shakespeare.lit"
	for _, tc := range []struct {
		name string
		in   string
		want mucroom.Message
		err  error
	}{{
		name: "occupant message with the room's stanza-id",
		in: `<message` + nsC + ` from="` + room + `/firstwitch" to="crone1@shakespeare.lit/desktop" type="groupchat" id="m1">` +
			`<body>Thrice the brinded cat hath mew'd.</body><origin-id xmlns="urn:xmpp:sid:0" id="o1"/>` +
			`<stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="` + room + `"/></message>`,
		want: mucroom.Message{From: jid.MustParse(room + "/firstwitch"), ID: "m1", OriginID: "o1", StanzaID: "s1", Body: "Thrice the brinded cat hath mew'd."},
	}, {
		name: "stanza-id by someone else is not the room's",
		in: `<message` + nsC + ` from="` + room + `/firstwitch" type="groupchat" id="m2"><body>x</body>` +
			`<stanza-id xmlns="urn:xmpp:sid:0" id="forged" by="crone1@shakespeare.lit"/></message>`,
		want: mucroom.Message{From: jid.MustParse(room + "/firstwitch"), ID: "m2", Body: "x"},
	}, {
		name: "subject change",
		in:   `<message` + nsC + ` from="` + room + `/secondwitch" type="groupchat" id="s"><subject>Fire Burn and Cauldron Bubble!</subject></message>`,
		want: mucroom.Message{From: jid.MustParse(room + "/secondwitch"), ID: "s", Subject: subject("Fire Burn and Cauldron Bubble!")},
	}, {
		name: "empty subject clears it; delayed",
		in: `<message` + nsC + ` from="` + room + `" type="groupchat"><subject/>` +
			`<delay xmlns="urn:xmpp:delay" from="` + room + `" stamp="2026-11-20T10:00:00Z"/></message>`,
		want: mucroom.Message{From: jid.MustParse(room), Subject: subject(""), Delay: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)},
	}, {
		name: "subject next to a body is not a subject change",
		in:   `<message` + nsC + ` from="` + room + `/firstwitch" type="groupchat"><subject>topic</subject><body>hi</body></message>`,
		want: mucroom.Message{From: jid.MustParse(room + "/firstwitch"), Body: "hi"},
	}, {
		name: "body in another language only",
		in:   `<message` + nsC + ` from="` + room + `/firstwitch" type="groupchat"><body xml:lang="de">hallo</body></message>`,
		want: mucroom.Message{From: jid.MustParse(room + "/firstwitch"), Body: "hallo"},
	}, {
		name: "room status message",
		in:   `<message` + nsC + ` from="` + room + `" type="groupchat"><x` + nsUser + `><status code="172"/></x></message>`,
		want: mucroom.Message{From: jid.MustParse(room), User: mucadmin.User{Status: []int{172}}, HasUser: true},
	}, {
		name: "chat message",
		in:   `<message` + nsC + ` from="` + room + `/firstwitch" type="chat"><body>psst</body></message>`,
		err:  mucroom.ErrNotGroupchat,
	}, {
		name: "no sender",
		in:   `<message` + nsC + ` type="groupchat"><body>?</body></message>`,
		err:  mucadmin.ErrMalformed,
	}, {
		name: "malformed stanza-id",
		in:   `<message` + nsC + ` from="` + room + `/x" type="groupchat"><stanza-id xmlns="urn:xmpp:sid:0" by="` + room + `"/></message>`,
		err:  xmltest.ErrAny,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mucroom.ParseMessage(xmltest.Reader(tc.in))
			switch {
			case tc.err == xmltest.ErrAny && err != nil:
				return
			case !errors.Is(err, tc.err) || (tc.err == nil && err != nil):
				t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
			case tc.err != nil:
				return
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Errorf("\nwant=%+v\n got=%+v", tc.want, m)
			}
		})
	}
}

func TestInfo(t *testing.T) {
	room := jid.MustParse("coven@chat.shakespeare.lit")
	for _, tc := range []struct {
		name, in string
		want     mucroom.Info
		display  string
	}{{
		name: "identity name",
		in: `<query xmlns="http://jabber.org/protocol/disco#info"><identity category="conference" type="text" name="A Dark Cave"/>` +
			`<feature var="http://jabber.org/protocol/muc"/></query>`,
		want:    mucroom.Info{Name: "A Dark Cave"},
		display: "A Dark Cave",
	}, {
		name: "roominfo form",
		in: `<query xmlns="http://jabber.org/protocol/disco#info"><identity category="conference" type="text"/>` +
			`<x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/muc#roominfo</value></field>` +
			`<field var="muc#roomconfig_roomname"><value>The Coven</value></field><field var="muc#roominfo_subject"><value>Spells</value></field></x></query>`,
		want:    mucroom.Info{Name: "The Coven", Subject: "Spells"},
		display: "The Coven",
	}, {
		name:    "nothing: the localpart",
		in:      `<query xmlns="http://jabber.org/protocol/disco#info"><identity category="conference" type="text" name=" "/></query>`,
		display: "coven",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var info disco.Info
			if err := xml.NewDecoder(strings.NewReader(tc.in)).Decode(&info); err != nil {
				t.Fatal(err)
			}
			got := mucroom.InfoFrom(info)
			if got != tc.want {
				t.Errorf("want=%+v, got=%+v", tc.want, got)
			}
			if name := mucroom.Name(got, room); name != tc.display {
				t.Errorf("Name = %q, want %q", name, tc.display)
			}
		})
	}
}
