//go:build integration

package itest

import (
	"encoding/xml"
	"reflect"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqresp"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
)

type occupant struct {
	from jid.JID
	user mucadmin.User
}

func occupants(t *testing.T) (mux.Option, chan occupant) {
	ch := make(chan occupant, 20)
	return mux.PresenceFunc("", xml.Name{Space: mucadmin.NSUser, Local: "x"}, func(p stanza.Presence, r xmlstream.TokenReadEncoder) error {
		u, ok, err := mucadmin.ParseUser(r)
		if err != nil || !ok {
			t.Errorf("bad occupant presence: %v", err)
			return nil
		}
		ch <- occupant{p.From, u}
		return nil
	}), ch
}

func iq(t *testing.T, s *xmpp.Session, x string) {
	t.Helper()
	resp, err := s.SendIQ(ctx(t), raw(t, x))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	if _, err := iqresp.Read(resp, nil); err != nil {
		t.Fatalf("%s: %v", x, err)
	}
}

// A non-anonymous members-only room: the affiliation lists give real JIDs,
// disco#info and the owner form say non-anonymous, presences carry real
// JIDs and status 100.
func TestMUCAdmin(t *testing.T) {
	alice, alicePW := account(t, "muc-alice")
	bob, bobPW := account(t, "muc-bob")
	room := jid.MustParse(unique("itest-") + "@" + testenv.SharedProsody(t).MUCDomain())

	aliceOpt, aliceSees := occupants(t)
	a := dial(t, alice, alicePW, nil, aliceOpt)
	if err := a.Send(ctx(t), raw(t, `<presence xmlns="jabber:client" to="`+room.String()+`/alice"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)); err != nil {
		t.Fatal(err)
	}
	if self := wait(t, aliceSees, "alice's self-presence"); !self.user.HasStatus(mucadmin.StatusSelf) || self.user.Item.Affiliation != mucadmin.Owner {
		t.Fatalf("wrong self-presence: %+v", self)
	}
	iq(t, a, `<iq xmlns="jabber:client" type="set" to="`+room.String()+`"><query xmlns="http://jabber.org/protocol/muc#owner">`+
		`<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>`+
		`<field var="muc#roomconfig_whois"><value>anyone</value></field><field var="muc#roomconfig_membersonly"><value>1</value></field>`+
		`</x></query></iq>`)
	iq(t, a, `<iq xmlns="jabber:client" type="set" to="`+room.String()+`"><query xmlns="http://jabber.org/protocol/muc#admin">`+
		`<item affiliation="member" jid="`+bob.String()+`"/></query></iq>`)

	members, err := mucadmin.Members(ctx(t), a, room)
	if err != nil {
		t.Fatalf("failed to list members: %v", err)
	}
	want := []mucadmin.Item{{JID: alice, Affiliation: mucadmin.Owner}, {JID: bob, Affiliation: mucadmin.Member}}
	for i := range members {
		members[i].Nick, members[i].Role = "", "" // servers may fill these in
	}
	if !reflect.DeepEqual(members, want) {
		t.Errorf("wrong members:\nwant=%+v\n got=%+v", want, members)
	}

	ri, err := mucadmin.GetRoomInfo(ctx(t), a, room)
	if err != nil || ri.Anonymity != mucadmin.NonAnonymous || !ri.MembersOnly {
		t.Errorf("wrong room info %+v: %v", ri, err)
	}
	form, err := muc.GetConfig(ctx(t), room, a)
	if err != nil {
		t.Fatalf("failed to get room config: %v", err)
	}
	if got := mucadmin.AnonymityFromConfig(form); got != mucadmin.NonAnonymous {
		t.Errorf("config says %v", got)
	}

	bobOpt, bobSees := occupants(t)
	b := dial(t, bob, bobPW, nil, bobOpt)
	if err := b.Send(ctx(t), raw(t, `<presence xmlns="jabber:client" to="`+room.String()+`/bob"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)); err != nil {
		t.Fatal(err)
	}
	for {
		o := wait(t, bobSees, "bob's self-presence")
		if !o.user.HasStatus(mucadmin.StatusSelf) {
			continue
		}
		if !o.user.HasStatus(mucadmin.StatusNonAnonymous) {
			t.Errorf("self-presence in a non-anonymous room without status 100: %+v", o.user)
		}
		break
	}
	o := wait(t, aliceSees, "bob's presence at alice")
	if o.from.Resourcepart() != "bob" || !o.user.Item.JID.Equal(b.LocalAddr()) {
		t.Errorf("alice does not see bob's real JID: %+v", o)
	}
}
