package mucadmin_test

import (
	"context"
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/fakesession"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
)

var room = jid.MustParse("coven@chat.shakespeare.lit")

func TestAffiliationsIQ(t *testing.T) {
	got, err := xmltest.Encode(mucadmin.AffiliationsIQ(jid.MustParse("coven@chat.shakespeare.lit/nick"), mucadmin.Member))
	want := `<iq type="get" to="coven@chat.shakespeare.lit"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="member"></item></query></iq>`
	if err != nil || got != want {
		t.Errorf("wrong request:\nwant=%s\n got=%s (%v)", want, got, err)
	}
}

func TestParseAffiliations(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []mucadmin.Item
		err  error
	}{{
		name: "members",
		in: `<iq xmlns="jabber:client" type="result"><query xmlns="http://jabber.org/protocol/muc#admin">` +
			`<item affiliation="member" jid="hag66@shakespeare.lit" nick="thirdwitch" role="participant"/>` +
			`<item affiliation="member" nick="ghost"/></query></iq>`,
		want: []mucadmin.Item{{JID: jid.MustParse("hag66@shakespeare.lit"), Nick: "thirdwitch", Affiliation: mucadmin.Member, Role: "participant"}},
	}, {
		name: "empty list",
		in:   `<iq xmlns="jabber:client" type="result"><query xmlns="http://jabber.org/protocol/muc#admin"/></iq>`,
	}, {
		name: "forbidden",
		in:   `<iq xmlns="jabber:client" type="error"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`,
		err:  stanza.Error{Condition: stanza.Forbidden},
	}, {
		name: "no query",
		in:   `<iq xmlns="jabber:client" type="result"/>`,
		err:  mucadmin.ErrMalformed,
	}, {
		name: "bad jid",
		in:   `<iq xmlns="jabber:client" type="result"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="member" jid="@x"/></query></iq>`,
		err:  mucadmin.ErrMalformed,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mucadmin.ParseAffiliations(xmltest.Reader(tc.in))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("want=%+v, got=%+v", tc.want, got)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	lists := map[string]string{
		"owner":  `<item affiliation="owner" jid="crone1@shakespeare.lit"/>`,
		"admin":  `<item affiliation="admin" jid="wiccarocks@shakespeare.lit"/><item affiliation="admin" jid="crone1@shakespeare.lit/laptop"/>`,
		"member": `<item affiliation="member" jid="hag66@shakespeare.lit"/>`,
	}
	s, srv := fakesession.New(t, jid.MustParse("crone1@shakespeare.lit/desktop"), func(req string) string {
		for aff, items := range lists {
			if strings.Contains(req, `affiliation="`+aff+`"`) {
				return `<iq xmlns="jabber:client" type="result" id="{{id}}"><query xmlns="http://jabber.org/protocol/muc#admin">` + items + `</query></iq>`
			}
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := mucadmin.Members(ctx, s, room)
	if err != nil {
		t.Fatal(err)
	}
	want := []mucadmin.Item{
		{JID: jid.MustParse("crone1@shakespeare.lit"), Affiliation: mucadmin.Owner},
		{JID: jid.MustParse("wiccarocks@shakespeare.lit"), Affiliation: mucadmin.Admin},
		{JID: jid.MustParse("hag66@shakespeare.lit"), Affiliation: mucadmin.Member},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("want=%+v\n got=%+v", want, got)
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("want 3 queries, got %d", n)
	}
}

func TestMergeKeepsHighest(t *testing.T) {
	a := jid.MustParse("a@x")
	got := mucadmin.Merge([]mucadmin.Item{{JID: a, Affiliation: mucadmin.Member}}, []mucadmin.Item{{JID: a, Affiliation: mucadmin.Owner}})
	if len(got) != 1 || got[0].Affiliation != mucadmin.Owner {
		t.Errorf("wrong merge: %+v", got)
	}
}

func TestAnonymity(t *testing.T) {
	for _, tc := range []struct {
		features []string
		want     mucadmin.Anonymity
	}{
		{[]string{"http://jabber.org/protocol/muc", "muc_nonanonymous", "muc_membersonly"}, mucadmin.NonAnonymous},
		{[]string{"http://jabber.org/protocol/muc", "muc_semianonymous"}, mucadmin.SemiAnonymous},
		{[]string{"muc_nonanonymous", "muc_semianonymous"}, mucadmin.SemiAnonymous},
		{[]string{"http://jabber.org/protocol/muc"}, mucadmin.AnonymityUnknown},
	} {
		if got := mucadmin.AnonymityFromFeatures(tc.features); got != tc.want {
			t.Errorf("%v: want %v, got %v", tc.features, tc.want, got)
		}
	}

	var info disco.Info
	err := xml.Unmarshal([]byte(`<query xmlns="http://jabber.org/protocol/disco#info"><identity category="conference" type="text"/>`+
		`<feature var="http://jabber.org/protocol/muc"/><feature var="muc_nonanonymous"/><feature var="muc_membersonly"/></query>`), &info)
	if err != nil {
		t.Fatal(err)
	}
	if ri := mucadmin.RoomInfoFrom(info); ri.Anonymity != mucadmin.NonAnonymous || !ri.MembersOnly {
		t.Errorf("wrong room info %+v", ri)
	}

	for whois, want := range map[string]mucadmin.Anonymity{"anyone": mucadmin.NonAnonymous, "moderators": mucadmin.SemiAnonymous, "": mucadmin.AnonymityUnknown} {
		field := ""
		if whois != "" {
			field = `<field var="muc#roomconfig_whois" type="list-single"><option><value>anyone</value></option><value>` + whois + `</value></field>`
		}
		var d form.Data
		if err := xml.Unmarshal([]byte(`<x xmlns="jabber:x:data" type="form"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/muc#roomconfig</value></field>`+field+`</x>`), &d); err != nil {
			t.Fatal(err)
		}
		if got := mucadmin.AnonymityFromConfig(&d); got != want {
			t.Errorf("whois=%q: want %v, got %v", whois, want, got)
		}
	}
	if mucadmin.AnonymityFromConfig(nil) != mucadmin.AnonymityUnknown {
		t.Error("nil form")
	}
}

func TestGetRoomInfo(t *testing.T) {
	s, _ := fakesession.New(t, jid.MustParse("hag66@shakespeare.lit/pda"), func(string) string {
		return `<iq xmlns="jabber:client" type="result" id="{{id}}"><query xmlns="http://jabber.org/protocol/disco#info">` +
			`<feature var="muc_semianonymous"/></query></iq>`
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ri, err := mucadmin.GetRoomInfo(ctx, s, room)
	if err != nil || ri.Anonymity != mucadmin.SemiAnonymous {
		t.Errorf("wrong room info %+v: %v", ri, err)
	}
}

func TestParseUser(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want mucadmin.User
		ok   bool
		err  error
	}{{
		name: "self presence in non-anonymous room",
		in: `<presence xmlns="jabber:client" from="coven@chat.shakespeare.lit/thirdwitch"><x xmlns="http://jabber.org/protocol/muc#user">` +
			`<item affiliation="member" jid="hag66@shakespeare.lit/pda" role="participant"/><status code="100"/><status code="110"/></x></presence>`,
		want: mucadmin.User{Item: mucadmin.Item{JID: jid.MustParse("hag66@shakespeare.lit/pda"), Affiliation: mucadmin.Member, Role: "participant"}, Status: []int{100, 110}},
		ok:   true,
	}, {
		name: "anonymous occupant",
		in:   `<presence xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="visitor"/></x></presence>`,
		want: mucadmin.User{Item: mucadmin.Item{Affiliation: mucadmin.None, Role: "visitor"}},
		ok:   true,
	}, {
		name: "config change message",
		in:   `<message xmlns="jabber:client" type="groupchat"><x xmlns="http://jabber.org/protocol/muc#user"><status code="172"/></x></message>`,
		want: mucadmin.User{Status: []int{172}},
		ok:   true,
	}, {
		name: "plain presence",
		in:   `<presence xmlns="jabber:client"/>`,
	}, {
		name: "bad status",
		in:   `<presence xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc#user"><status code="x"/></x></presence>`,
		err:  mucadmin.ErrMalformed,
	}, {
		name: "two items",
		in:   `<presence xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc#user"><item role="a"/><item role="b"/></x></presence>`,
		err:  mucadmin.ErrMalformed,
	}, {
		// Prosody, for a nick joined from two sessions (the old one hibernating under XEP-0198).
		name: "one occupant's two sessions",
		in: `<presence xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc#user">` +
			`<item affiliation="none" jid="hag66@shakespeare.lit/old" role="participant"/><item affiliation="none" jid="hag66@shakespeare.lit/new" role="participant"/>` +
			`<status code="110"/></x></presence>`,
		want: mucadmin.User{Item: mucadmin.Item{JID: jid.MustParse("hag66@shakespeare.lit/old"), Affiliation: mucadmin.None, Role: "participant"}, Status: []int{110}},
		ok:   true,
	}, {
		name: "two occupants' items",
		in: `<presence xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc#user">` +
			`<item affiliation="none" jid="hag66@shakespeare.lit/pda" role="participant"/><item affiliation="none" jid="crone1@shakespeare.lit/desktop" role="participant"/></x></presence>`,
		err: mucadmin.ErrMalformed,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			u, ok, err := mucadmin.ParseUser(xmltest.Reader(tc.in))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
			}
			if ok != tc.ok || !reflect.DeepEqual(u, tc.want) {
				t.Errorf("want=%+v %t, got=%+v %t", tc.want, tc.ok, u, ok)
			}
		})
	}
	u := mucadmin.User{Status: []int{100}}
	if !u.HasStatus(mucadmin.StatusNonAnonymous) || u.HasStatus(mucadmin.StatusSelf) {
		t.Error("HasStatus is wrong")
	}
}
