package bridge

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

const (
	testRoom  = "room@muc.example.org"
	testLogin = networkid.UserLoginID("alice@example.org")
	nsMUCUser = ` xmlns="http://jabber.org/protocol/muc#user"`
)

var testAccount = jid.MustParse("alice@example.org")

func mustPresence(t *testing.T, s string) mucroom.Presence {
	t.Helper()
	p, err := mucroom.ParsePresence(tokens(t, s).Reader())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func occupantPresence(nick, realJID, typ string, status ...int) string {
	item := `<item affiliation="member" role="participant"`
	if realJID != "" {
		item += ` jid="` + realJID + `"`
	}
	item += `/>`
	for _, s := range status {
		item += fmt.Sprintf(`<status code="%d"/>`, s)
	}
	t := ""
	if typ != "" {
		t = ` type="` + typ + `"`
	}
	return `<presence` + nsC + ` from="` + testRoom + `/` + nick + `"` + t + `><x` + nsMUCUser + `>` + item + `</x></presence>`
}

func TestOccupantGhosts(t *testing.T) {
	room := &xmppclient.Room{JID: jid.MustParse(testRoom), Nick: "alice", Occupants: map[string]xmppclient.Occupant{
		"bob":   {Nick: "bob", RealJID: jid.MustParse("bob@example.org")},
		"anon":  {Nick: "anon"},
		"phone": {Nick: "phone", RealJID: jid.MustParse("alice@example.org")},
	}}
	for _, tc := range []struct {
		nick   string
		want   networkid.UserID
		fromMe bool
	}{
		{"bob", "bob@example.org", false},
		{"anon", "muc:room@muc.example.org/anon", false},
		{"stranger", "muc:room@muc.example.org/stranger", false},
		{"alice", "alice@example.org", true},
		{"phone", "alice@example.org", true}, // our account from another client, other nick
	} {
		s := roomSender(*room, tc.nick, testAccount, testLogin)
		if s.Sender != tc.want || s.IsFromMe != tc.fromMe || (tc.fromMe && s.SenderLogin != testLogin) {
			t.Errorf("sender(%q) = %+v, want %s fromMe=%t", tc.nick, s, tc.want, tc.fromMe)
		}
		if !puppet.ValidUserID(s.Sender) {
			t.Errorf("sender(%q) = %q is not a valid ghost ID", tc.nick, s.Sender)
		}
	}
	room.Occupants["bob2"] = xmppclient.Occupant{Nick: "bob2", RealJID: jid.MustParse("bob@example.org")}
	if !roomHasGhost(*room, "bob@example.org", "bob", testAccount) || roomHasGhost(*room, "bob@example.org", "bob2", testAccount) == false {
		t.Error("bob is in the room twice: leaving with one nick keeps the ghost")
	}
	delete(room.Occupants, "bob2")
	if roomHasGhost(*room, "bob@example.org", "bob", testAccount) {
		t.Error("hasGhost counts the occupant that leaves")
	}
}

func TestClassifyGroupchat(t *testing.T) {
	room := xmppclient.Room{JID: jid.MustParse(testRoom), Nick: "alice", Joined: true, Occupants: map[string]xmppclient.Occupant{
		"bob":  {Nick: "bob", RealJID: jid.MustParse("bob@example.org")},
		"anon": {Nick: "anon"},
	}}
	const sidRoom = `<stanza-id xmlns="urn:xmpp:sid:0" id="S1" by="` + testRoom + `"/>`
	type want struct {
		kind      xmppclient.GroupchatKind
		sender    networkid.UserID
		fromMe    bool
		id        networkid.MessageID
		txn       networkid.TransactionID
		body      string
		subject   string
		encrypted bool
	}
	for _, tc := range []struct {
		name      string
		xml       string
		encrypted bool
		want      want
	}{{
		name: "message from a non-anonymous occupant is their shared ghost",
		xml:  `<message` + nsC + ` from="` + testRoom + `/bob" type="groupchat" id="b1"><body>hi all</body>` + sidRoom + `</message>`,
		want: want{kind: xmppclient.GroupchatMessage, sender: "bob@example.org", id: "room@muc.example.org//sid:S1", body: "hi all"},
	}, {
		name: "message from a hidden occupant is the occupant ghost",
		xml:  `<message` + nsC + ` from="` + testRoom + `/anon" type="groupchat" id="a1"><body>boo</body>` + sidRoom + `</message>`,
		want: want{kind: xmppclient.GroupchatMessage, sender: "muc:room@muc.example.org/anon", id: "room@muc.example.org//sid:S1", body: "boo"},
	}, {
		name: "our reflected message carries its origin-id as the transaction",
		xml: `<message` + nsC + ` from="` + testRoom + `/alice" type="groupchat" id="mxb-123"><body>mine</body>` +
			`<origin-id xmlns="urn:xmpp:sid:0" id="mxb-123"/>` + sidRoom + `</message>`,
		want: want{kind: xmppclient.GroupchatMessage, sender: "alice@example.org", fromMe: true, id: "room@muc.example.org//sid:S1", txn: "mxb-123", body: "mine"},
	}, {
		name: "our message from another client without origin-id uses the id",
		xml:  `<message` + nsC + ` from="` + testRoom + `/alice" type="groupchat" id="phone-1"><body>from phone</body></message>`,
		want: want{kind: xmppclient.GroupchatMessage, sender: "alice@example.org", fromMe: true, id: "room@muc.example.org//nick:alice/phone-1", txn: "phone-1", body: "from phone"},
	}, {
		name: "no stanza-id: keyed by nick and id",
		xml:  `<message` + nsC + ` from="` + testRoom + `/bob" type="groupchat" id="b2"><body>old server</body></message>`,
		want: want{kind: xmppclient.GroupchatMessage, sender: "bob@example.org", id: "room@muc.example.org//nick:bob/b2", body: "old server"},
	}, {
		name: "stanza-id from someone else is not the key",
		xml:  `<message` + nsC + ` from="` + testRoom + `/bob" type="groupchat" id="b3"><body>x</body><stanza-id xmlns="urn:xmpp:sid:0" id="F" by="bob@example.org"/></message>`,
		want: want{kind: xmppclient.GroupchatMessage, sender: "bob@example.org", id: "room@muc.example.org//nick:bob/b3", body: "x"},
	}, {
		name:      "OMEMO message: a notice, never the fallback body",
		xml:       `<message` + nsC + ` from="` + testRoom + `/bob" type="groupchat" id="e1"><body>I sent you an OMEMO message</body>` + sidRoom + `</message>`,
		encrypted: true,
		want:      want{kind: xmppclient.GroupchatMessage, sender: "bob@example.org", id: "room@muc.example.org//sid:S1", encrypted: true},
	}, {
		name: "subject change by an occupant",
		xml:  `<message` + nsC + ` from="` + testRoom + `/bob" type="groupchat"><subject>Plans</subject></message>`,
		want: want{kind: xmppclient.GroupchatSubject, sender: "bob@example.org", subject: "Plans"},
	}, {
		name: "subject from the room itself",
		xml:  `<message` + nsC + ` from="` + testRoom + `" type="groupchat"><subject/></message>`,
		want: want{kind: xmppclient.GroupchatSubject},
	}, {
		name: "room status message",
		xml:  `<message` + nsC + ` from="` + testRoom + `" type="groupchat"><body>This room is now non-anonymous</body><x` + nsMUCUser + `><status code="172"/></x></message>`,
		want: want{kind: xmppclient.GroupchatIgnore, body: "This room is now non-anonymous"},
	}, {
		name: "chat state only",
		xml:  `<message` + nsC + ` from="` + testRoom + `/bob" type="groupchat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`,
		want: want{kind: xmppclient.GroupchatIgnore},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mucroom.ParseMessage(tokens(t, tc.xml).Reader())
			if err != nil {
				t.Fatal(err)
			}
			g := classifyGroupchat(m, room, testAccount, testLogin, tc.encrypted, xmppclient.Refs{})
			got := want{kind: g.Room.Kind, sender: g.Sender.Sender, fromMe: g.Sender.IsFromMe, id: g.ID, txn: g.TxnID, body: g.Body, subject: g.Room.Subject, encrypted: g.Room.Encrypted}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\nwant=%+v\n got=%+v", tc.want, got)
			}
			if g.Room.Kind == xmppclient.GroupchatMessage {
				if _, err := portal.ParseMessageID(g.ID); err != nil {
					t.Errorf("message ID %q does not parse: %v", g.ID, err)
				}
			}
		})
	}
}

// TestConvertMessage: the one conversion of 1:1 and group chat messages.
func TestConvertMessage(t *testing.T) {
	c := &Client{mucs: xmppclient.NewRooms()}
	room := jid.MustParse(testRoom)
	failed := &omemoIncoming{Device: 7, Failed: true}
	for _, tc := range []struct {
		name    string
		g       *incoming
		omemo   bool // the portal is encrypted
		ignored bool
		body    string
		notice  bool
	}{
		{"text", &incoming{Message: xmppclient.Message{Body: "hello"}, Room: &roomFields{Kind: xmppclient.GroupchatMessage, Nick: "bob"}}, false, false, "hello", false},
		{"emote", &incoming{Message: xmppclient.Message{Body: "/me waves"}, Room: &roomFields{Kind: xmppclient.GroupchatMessage, Nick: "bob"}}, false, false, "waves", false},
		{"OMEMO never decrypted", &incoming{Message: xmppclient.Message{Body: "fallback"}, Room: &roomFields{Kind: xmppclient.GroupchatMessage, Nick: "bob", Encrypted: true}}, false, true, "", false},
		{"OMEMO undecryptable", &incoming{Message: xmppclient.Message{Body: "bob " + hiddenJIDNotice}, Room: &roomFields{Kind: xmppclient.GroupchatMessage, Nick: "bob", Encrypted: true}, OMEMO: failed}, false, false, "bob " + hiddenJIDNotice, true},
		{"OMEMO decrypted", &incoming{Message: xmppclient.Message{Body: "psst"}, Room: &roomFields{Kind: xmppclient.GroupchatMessage, Nick: "bob", Encrypted: true}, OMEMO: &omemoIncoming{Device: 7, Trusted: true}}, true, false, "psst", false},
		{"OMEMO from an untrusted device", &incoming{Message: xmppclient.Message{Body: "psst"}, Room: &roomFields{Kind: xmppclient.GroupchatMessage, Nick: "bob", Encrypted: true}, OMEMO: &omemoIncoming{Device: 7}}, true, false, untrustedPrefix(7) + "psst", false},
		{"plaintext in an encrypted room", &incoming{Message: xmppclient.Message{Body: "hi"}, Room: &roomFields{Kind: xmppclient.GroupchatMessage, Nick: "bob"}}, true, false, unencryptedPrefix + "hi", false},
		{"ours from before a restart", &incoming{Message: xmppclient.Message{Body: "x"}, Room: &roomFields{Kind: xmppclient.GroupchatMessage}, Sender: bridgev2.EventSender{IsFromMe: true}, TxnID: "mxb-1"}, false, true, "", false},
		{"ours from another client", &incoming{Message: xmppclient.Message{Body: "x"}, Room: &roomFields{Kind: xmppclient.GroupchatMessage}, Sender: bridgev2.EventSender{IsFromMe: true}, TxnID: "phone-1"}, false, false, "x", false},
		{"1:1 text", &incoming{Message: xmppclient.Message{Body: "hello"}}, false, false, "hello", false},
		{"1:1 plaintext in an encrypted chat", &incoming{Message: xmppclient.Message{Body: "hi"}}, true, false, unencryptedPrefix + "hi", false},
		{"1:1 OMEMO from an untrusted device", &incoming{Message: xmppclient.Message{Body: "psst"}, OMEMO: &omemoIncoming{Device: 7}}, true, false, untrustedPrefix(7) + "psst", false},
		{"1:1 OMEMO undecryptable", &incoming{Message: xmppclient.Message{Body: "could not"}, OMEMO: failed}, true, false, "could not", true},
	} {
		tc.g.Peer = room
		p := &bridgev2.Portal{Portal: &database.Portal{Metadata: &portal.Metadata{Kind: "muc", OMEMO: tc.omemo}}}
		conv, err := c.convertMessage(context.Background(), p, nil, tc.g)
		if tc.ignored {
			if !errors.Is(err, bridgev2.ErrIgnoringRemoteEvent) {
				t.Errorf("%s: err = %v, want ErrIgnoringRemoteEvent", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		content := conv.Parts[0].Content
		if content.Body != tc.body || (content.MsgType == event.MsgNotice) != tc.notice {
			t.Errorf("%s: content %+v", tc.name, content)
		}
	}
}

func TestGroupchatStanza(t *testing.T) {
	out := &xmppclient.Outgoing{To: jid.MustParse(testRoom + "/someone"), Room: true, ID: "mxb-abc", Body: "hi <all>"}
	var buf strings.Builder
	enc := xml.NewEncoder(&buf)
	st, err := out.Stanza(nil)
	if err == nil {
		_, err = xmlstream.Copy(enc, st)
	}
	if err == nil {
		err = enc.Flush()
	}
	got := buf.String()
	if err != nil {
		t.Fatal(err)
	}
	want := `<message type="groupchat" to="room@muc.example.org" id="mxb-abc"><body>hi &lt;all&gt;</body>` +
		`<origin-id xmlns="urn:xmpp:sid:0" id="mxb-abc"></origin-id><active xmlns="http://jabber.org/protocol/chatstates"></active></message>`
	if got != want {
		t.Errorf("wrong stanza:\nwant=%s\n got=%s", want, got)
	}
	// What we send parses back as our own message with the same transaction.
	m, err := mucroom.ParseMessage(tokens(t, strings.Replace(got, `<message `, `<message xmlns="jabber:client" from="`+testRoom+`/alice" `, 1)).Reader())
	if err != nil {
		t.Fatal(err)
	}
	g := classifyGroupchat(m, xmppclient.Room{JID: jid.MustParse(testRoom), Nick: "alice"}, testAccount, testLogin, false, xmppclient.Refs{})
	if !g.Sender.IsFromMe || g.TxnID != "mxb-abc" {
		t.Errorf("reflection classified as %+v", g)
	}
}

func TestJoinLeaveCommands(t *testing.T) {
	room := jid.MustParse(testRoom)
	for _, tc := range []struct {
		args []string
		want mucCommand
		err  bool
	}{
		{[]string{testRoom}, mucCommand{Room: room}, false},
		{[]string{"xmpp:" + testRoom + "?join"}, mucCommand{Room: room}, false},
		{[]string{"Room@MUC.example.org", "Alice W"}, mucCommand{Room: room, Nick: "Alice W"}, false},
		{[]string{testRoom + "/nick"}, mucCommand{Room: room, Nick: "nick"}, false},
		{[]string{"muc.example.org"}, mucCommand{}, true},
		{[]string{"@bad"}, mucCommand{}, true},
		{nil, mucCommand{}, true},
		{[]string{testRoom, "a", "pass word?"}, mucCommand{Room: room, Nick: "a", Password: "pass word?"}, false},
		{[]string{testRoom, "a", "b", "c"}, mucCommand{}, true},
	} {
		got, err := parseJoinCommand(tc.args)
		if (err != nil) != tc.err || (!tc.err && (!got.Room.Equal(tc.want.Room) || got.Nick != tc.want.Nick || got.Password != tc.want.Password)) {
			t.Errorf("parseJoinCommand(%q) = %+v, %v", tc.args, got, err)
		}
	}
	for _, tc := range []struct {
		args   []string
		inRoom jid.JID
		want   mucCommand
		err    bool
	}{
		{[]string{testRoom}, jid.JID{}, mucCommand{Room: room}, false},
		{[]string{testRoom, "--delete"}, jid.JID{}, mucCommand{Room: room, Delete: true}, false},
		{nil, room, mucCommand{Room: room}, false},
		{[]string{"--delete"}, room, mucCommand{Room: room, Delete: true}, false},
		{nil, jid.JID{}, mucCommand{}, true},
	} {
		got, err := parseLeaveCommand(tc.args, tc.inRoom)
		if (err != nil) != tc.err || (!tc.err && (!got.Room.Equal(tc.want.Room) || got.Delete != tc.want.Delete)) {
			t.Errorf("parseLeaveCommand(%q) = %+v, %v", tc.args, got, err)
		}
	}
}

func TestJoinErrorText(t *testing.T) {
	room := jid.MustParse(testRoom)
	se := func(c stanza.Condition) error { return mucroom.JoinError(stanza.Error{Condition: c}) }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{se(stanza.ItemNotFound), "does not exist"},
		{se(stanza.RegistrationRequired), "members-only"},
		{se(stanza.Forbidden), "banned"},
		{se(stanza.NotAuthorized), "password"},
		{se(stanza.ServiceUnavailable), "full"},
		{fmt.Errorf("%w: tried a, b", mucroom.ErrNickConflict), "taken"},
		{se(stanza.NotAcceptable), "does not accept the nickname"},
		{fmt.Errorf("%w: x", xmppclient.ErrNotARoom), "is not a group chat"},
		{xmppclient.ErrNotConnected, "Not connected"},
		{context.DeadlineExceeded, "did not answer"},
		{errors.New("odd"), "Failed to join room@muc.example.org: odd"},
	} {
		if got := joinErrorText(room, "alice", tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("joinErrorText(%v) = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
	for status, want := range map[int]string{mucroom.StatusBanned: "banned", mucroom.StatusKicked: "kicked", mucroom.StatusRemoved: "members-only", mucadmin.StatusSelf: ""} {
		if got := leftRoomText([]int{mucadmin.StatusSelf, status}); !strings.Contains(got, want) || (want == "" && got != "") {
			t.Errorf("leftRoomText(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestGroupchatSendRefusals: a room portal marked OMEMO in a room that
// cannot be encrypted refuses to send (see also
// TestGroupchatOMEMOSendRefusals), and so does a room we are not in.
func TestGroupchatSendRefusals(t *testing.T) {
	room := jid.MustParse(testRoom)
	c := &Client{mucs: xmppclient.NewRooms(), account: testAccount}
	send := func(meta *portal.Metadata) error {
		msg := &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
			Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "secret"},
			Portal:  &bridgev2.Portal{Portal: &database.Portal{Metadata: meta}},
		}}
		_, err := c.handleMatrixGroupchat(context.Background(), msg, room)
		return err
	}
	c.mucs.StartJoin(room, "alice", mucroom.Info{}, mucadmin.RoomInfo{})
	c.mucs.ApplyPresence(mustPresence(t, occupantPresence("alice", "", "", 110)))
	if err := send(&portal.Metadata{Kind: "muc", OMEMO: true}); !errors.Is(err, errGroupOMEMO) {
		t.Errorf("send in an OMEMO-marked room: %v, want errGroupOMEMO", err)
	}
	c.mucs.Disconnected()
	if err := send(&portal.Metadata{Kind: "muc"}); !errors.Is(err, errNotInRoom) {
		t.Errorf("send while not in the room: %v, want errNotInRoom", err)
	}
}
