package bridge

import (
	"encoding/xml"
	"strings"
	"testing"

	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

func TestGroupRefIDs(t *testing.T) {
	room := jid.MustParse(testRoom)
	bySID := &database.Message{ID: portal.MakeMessageID(room, jid.JID{}, "sid:S1"), Metadata: &portal.MessageMetadata{OriginID: "o1", StanzaID: "S1"}}
	byNick := &database.Message{ID: portal.MakeMessageID(room, jid.JID{}, "nick:bob/m7"), Metadata: &portal.MessageMetadata{}}
	if got := groupStanzaID(bySID); got != "S1" {
		t.Errorf("stanza-id = %q", got)
	}
	if got := groupOriginID(bySID); got != "o1" {
		t.Errorf("origin-id = %q", got)
	}
	if got := groupStanzaID(byNick); got != "" {
		t.Errorf("stanza-id of a nick-keyed message = %q", got)
	}
	if got := groupOriginID(byNick); got != "m7" {
		t.Errorf("origin-id of a nick-keyed message = %q", got)
	}
}

func TestMatchGroupRef(t *testing.T) {
	room := jid.MustParse(testRoom)
	bob := puppet.OccupantUserID(jid.MustParse(testRoom + "/bob"))
	eve := puppet.OccupantUserID(jid.MustParse(testRoom + "/eve"))
	msg := func(sid string, sender networkid.UserID, origin string) *database.Message {
		return &database.Message{ID: portal.MakeMessageID(room, jid.JID{}, "sid:"+sid), SenderID: sender, Metadata: &portal.MessageMetadata{OriginID: origin, StanzaID: sid}}
	}
	msgs := []*database.Message{msg("1", bob, "x"), msg("2", eve, "y"), msg("3", bob, "z")}
	for _, tc := range []struct {
		name   string
		sender networkid.UserID
		origin string
		want   string
	}{
		{"own message", bob, "x", "1"},
		{"another occupant's message is never corrected", eve, "x", ""},
		{"someone else's id", bob, "y", ""},
		{"any sender (replies)", "", "y", "2"},
		{"unknown", bob, "nope", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := matchGroupRef(msgs, tc.sender, tc.origin)
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("matched %s, want none", got.ID)
			case tc.want != "" && (got == nil || groupStanzaID(got) != tc.want):
				t.Errorf("matched %v, want stanza-id %s", got, tc.want)
			}
		})
	}
}

func TestGroupReply(t *testing.T) {
	room := xmppclient.Room{
		JID: jid.MustParse(testRoom), Nick: "alice",
		Occupants: map[string]xmppclient.Occupant{
			"bob":   {Nick: "bob", RealJID: jid.MustParse("bob@example.org")},
			"anon":  {Nick: "anon"},
			"alice": {Nick: "alice"},
		},
	}
	target := func(sender networkid.UserID) *database.Message {
		return &database.Message{ID: portal.MakeMessageID(room.JID, jid.JID{}, "sid:S9"), SenderID: sender, Metadata: &portal.MessageMetadata{StanzaID: "S9"}}
	}
	for _, tc := range []struct {
		sender networkid.UserID
		to     string
	}{
		{puppet.UserID(jid.MustParse("bob@example.org")), testRoom + "/bob"},
		{puppet.OccupantUserID(jid.MustParse(testRoom + "/anon")), testRoom + "/anon"},
		{puppet.UserID(testAccount), testRoom + "/alice"},
		{puppet.UserID(jid.MustParse("gone@example.org")), ""},
	} {
		rep := groupReply(room, target(tc.sender), testAccount)
		if rep == nil || rep.ID != "S9" || rep.To.String() != tc.to {
			t.Errorf("reply to %s = %+v, want id S9 to %q", tc.sender, rep, tc.to)
		}
	}
	if rep := groupReply(room, &database.Message{ID: portal.MakeMessageID(room.JID, jid.JID{}, "nick:bob/1"), Metadata: &portal.MessageMetadata{}}, testAccount); rep != nil {
		t.Errorf("reply without a stanza-id = %+v", rep)
	}
}

func TestClassifyGroupchatRefs(t *testing.T) {
	room := xmppclient.Room{JID: jid.MustParse(testRoom), Nick: "alice", Occupants: map[string]xmppclient.Occupant{"bob": {Nick: "bob"}}}
	parse := func(raw string) (mucroom.Message, xmppclient.Refs) {
		st := tokens(t, raw)
		m, err := mucroom.ParseMessage(st.Reader())
		if err != nil {
			t.Fatal(err)
		}
		return m, xmppclient.ParseRefs(st)
	}
	// A reaction has no body but is bridged.
	m, refs := parse(`<message xmlns="jabber:client" type="groupchat" from="` + testRoom + `/bob" id="r1">` +
		`<reactions xmlns="urn:xmpp:reactions:0" id="S1"><reaction>👍</reaction></reactions>` +
		`<stanza-id xmlns="urn:xmpp:sid:0" by="` + testRoom + `" id="S2"/></message>`)
	g := classifyGroupchat(m, room, testAccount, testLogin, false, refs)
	if g.Room.Kind != xmppclient.GroupchatMessage || g.Reactions == nil || g.Reactions.ID != "S1" {
		t.Errorf("reaction classified as %+v", g)
	}
	// The room's reflection of our own retraction is not bridged back.
	m, refs = parse(`<message xmlns="jabber:client" type="groupchat" from="` + testRoom + `/alice" id="mxb-9">` +
		`<retract xmlns="urn:xmpp:message-retract:1" id="S1"/></message>`)
	g = classifyGroupchat(m, room, testAccount, testLogin, false, refs)
	if g.Room.Kind != xmppclient.GroupchatMessage || g.Retract != "S1" || !isOwnReflection(g) {
		t.Errorf("own retraction classified as %+v", g)
	}
	// A chat state alone still is not.
	m, refs = parse(`<message xmlns="jabber:client" type="groupchat" from="` + testRoom + `/bob"><active xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	if g := classifyGroupchat(m, room, testAccount, testLogin, false, refs); g.Room.Kind != xmppclient.GroupchatIgnore {
		t.Errorf("chat state classified as %+v", g)
	}
}

func TestGroupchatMedia(t *testing.T) {
	const link = "https://upload.example.org/abc/cat.png"
	out := &xmppclient.Outgoing{To: jid.MustParse(testRoom), Room: true, ID: "mxb-f", Body: link, Media: &xmppclient.OutgoingMedia{OOB: link}}
	st, err := out.Stanza(nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	enc := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(enc, st); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	if !strings.Contains(got, `<x xmlns="jabber:x:oob"><url>`+link+`</url></x>`) || !strings.Contains(got, `type="groupchat"`) {
		t.Errorf("plaintext room file without its OOB element:\n%s", got)
	}
	// What we send is what we recognise as a file from an occupant.
	in := tokens(t, strings.Replace(got, `<message `, `<message xmlns="jabber:client" from="`+testRoom+`/bob" `, 1))
	if f := xmppclient.SharedFile(link, in); f == nil || f.URL != link || f.Key != nil {
		t.Errorf("occupant's file read as %+v", f)
	}
	// A plaintext upload never goes into an encrypted room, nor an aesgcm one into a plaintext room.
	if err := out.CheckMedia(true); err == nil {
		t.Error("plaintext upload accepted for an encrypted room")
	}
	enc2 := &xmppclient.Outgoing{Body: "aesgcm://x", Media: &xmppclient.OutgoingMedia{Encrypted: true}}
	if err := enc2.CheckMedia(true); err != nil {
		t.Errorf("encrypted room file refused: %v", err)
	}
	if err := enc2.CheckMedia(false); err == nil {
		t.Error("aesgcm upload accepted for a plaintext room")
	}
}
