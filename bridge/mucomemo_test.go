package bridge

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

func TestGroupOMEMOAllowed(t *testing.T) {
	members := mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous, MembersOnly: true}
	for _, tc := range []struct {
		name string
		room xmppclient.Room
		want error
	}{
		{"non-anonymous members-only", xmppclient.Room{Features: members}, nil},
		{"status 100 and members-only", xmppclient.Room{NonAnonymous: true, Features: mucadmin.RoomInfo{MembersOnly: true}}, nil},
		{"semi-anonymous members-only", xmppclient.Room{Features: mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous, MembersOnly: true}}, errRoomHidesJIDs},
		{"unknown anonymity", xmppclient.Room{Features: mucadmin.RoomInfo{MembersOnly: true}}, errRoomHidesJIDs},
		{"non-anonymous open", xmppclient.Room{NonAnonymous: true, Features: mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous}}, errRoomOpen},
		{"nothing known", xmppclient.Room{}, errRoomHidesJIDs},
	} {
		if got := groupOMEMOAllowed(tc.room); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
			t.Errorf("%s: groupOMEMOAllowed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestGroupRecipients(t *testing.T) {
	affs := mucadmin.Merge(
		[]mucadmin.Item{{JID: jid.MustParse("owner@example.org"), Affiliation: mucadmin.Owner}},
		[]mucadmin.Item{{JID: jid.MustParse("admin@example.org/phone"), Affiliation: mucadmin.Admin}},
		[]mucadmin.Item{
			{JID: jid.MustParse("member@example.org"), Affiliation: mucadmin.Member},
			{JID: testAccount, Affiliation: mucadmin.Member}, // ourselves
			{JID: jid.MustParse("owner@example.org"), Affiliation: mucadmin.Member},
		},
		[]mucadmin.Item{{JID: jid.MustParse("outcast@example.org"), Affiliation: mucadmin.Outcast}},
	)
	room := xmppclient.Room{Occupants: map[string]xmppclient.Occupant{
		"visitor": {Nick: "visitor", RealJID: jid.MustParse("guest@example.org/laptop")},
		"owner":   {Nick: "owner", RealJID: jid.MustParse("owner@example.org")},
		"hidden":  {Nick: "hidden"},
		"me2":     {Nick: "me2", RealJID: jid.MustParse(testAccount.String() + "/phone")},
		"service": {Nick: "service", RealJID: jid.MustParse("example.org")},
	}}
	var got []string
	for _, j := range groupRecipients(affs, room, testAccount) {
		got = append(got, j.String())
	}
	want := []string{"admin@example.org", "guest@example.org", "member@example.org", "owner@example.org"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groupRecipients = %q, want %q", got, want)
	}
	if got := groupRecipients(nil, xmppclient.Room{}, testAccount); len(got) != 0 {
		t.Errorf("no members: %q", got)
	}
}

const testEncrypted = `<encrypted xmlns="urn:xmpp:omemo:2"><header sid="4242"><keys jid="alice@example.org"><key rid="1">AAAA</key></keys></header><payload>AAAA</payload></encrypted>`

// TestDecryptGroupchat: who an encrypted groupchat message is decrypted
// as, and when it is not decrypted at all.
func TestDecryptGroupchat(t *testing.T) {
	m := metrics.NewWithRegistry(metrics.Config{}, prometheus.NewRegistry())
	c := &Client{main: &Connector{Metrics: m}, account: testAccount, login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: testLogin}}}
	shown := xmppclient.Room{JID: jid.MustParse(testRoom), Nick: "alice", NonAnonymous: true, Occupants: map[string]xmppclient.Occupant{
		"bob": {Nick: "bob", RealJID: jid.MustParse("bob@example.org")},
	}}
	hidden := xmppclient.Room{JID: jid.MustParse(testRoom), Nick: "alice", Occupants: map[string]xmppclient.Occupant{"bob": {Nick: "bob"}}}
	for _, tc := range []struct {
		name   string
		room   xmppclient.Room
		from   string
		origin string
		body   string // "" when untouched
		show   bool
	}{
		// No OMEMO device in this test: the message is decrypted as bob
		// and fails for that reason, with a notice naming his real JID.
		{"non-anonymous", shown, "bob", "x-1", "Could not decrypt an OMEMO message from bob@example.org (device 4242)", true},
		{"semi-anonymous", hidden, "bob", "x-1", "bob " + hiddenJIDNotice, true},
		{"occupant unknown", shown, "carol", "x-1", "carol " + hiddenJIDNotice, true},
		{"our reflection", shown, "alice", bridgeIDPrefix + "1", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := `<message xmlns="jabber:client" type="groupchat" from="` + testRoom + `/` + tc.from + `" id="` + tc.origin + `">` +
				testEncrypted + `<body>fallback</body><origin-id xmlns="urn:xmpp:sid:0" id="` + tc.origin + `"/></message>`
			st := tokens(t, raw)
			msg, err := mucroom.ParseMessage(st.Reader())
			if err != nil {
				t.Fatal(err)
			}
			g := classifyGroupchat(msg, tc.room, testAccount, testLogin, true, xmppclient.Refs{})
			show := c.decryptIncoming(context.Background(), withRaw(g, st)) == nil
			if show != tc.show || !strings.HasPrefix(g.Body, tc.body) || (tc.body == "" && g.Body != "") {
				t.Errorf("show=%v body=%q, want show=%v body %q…", show, g.Body, tc.show, tc.body)
			}
			if tc.body != "" && (g.OMEMO == nil || !g.OMEMO.Failed) {
				t.Errorf("OMEMO = %+v, want a failure notice", g.OMEMO)
			}
			if tc.body == "" && !isOwnReflection(g) {
				t.Errorf("our reflection %+v not recognised", g)
			}
		})
	}
}

// TestGroupchatOMEMOSendRefusals: an OMEMO-marked room portal never sends
// plaintext; where the room cannot be encrypted, it says why.
func TestGroupchatOMEMOSendRefusals(t *testing.T) {
	room := jid.MustParse(testRoom)
	c := &Client{mucs: xmppclient.NewRooms(), account: testAccount}
	send := func() error {
		msg := &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
			Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "secret"},
			Portal:  &bridgev2.Portal{Portal: &database.Portal{Metadata: &portal.Metadata{Kind: "muc", OMEMO: true}}},
		}}
		_, err := c.handleMatrixGroupchat(context.Background(), msg, room)
		return err
	}
	allowed := mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous, MembersOnly: true}
	for _, tc := range []struct {
		name     string
		features mucadmin.RoomInfo
		status   []int
		changed  []int // status codes of a configuration change after the join
		want     error
	}{
		{"semi-anonymous", mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous, MembersOnly: true}, []int{110}, nil, errRoomHidesJIDs},
		{"open", mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous}, []int{110, 100}, nil, errRoomOpen},
		// Allowed, but not connected: no plaintext either.
		{"allowed", allowed, []int{110, 100}, nil, xmppclient.ErrNotConnected},
		{"reconfigured semi-anonymous", allowed, []int{110, 100}, []int{104, 173}, errRoomHidesJIDs},
		{"reconfigured fully anonymous", allowed, []int{110, 100}, []int{174}, errRoomHidesJIDs},
		{"reconfigured non-anonymous", mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous, MembersOnly: true}, []int{110}, []int{104, 172}, xmppclient.ErrNotConnected},
	} {
		c.mucs.StartJoin(room, "alice", mucroom.Info{}, tc.features)
		c.mucs.ApplyPresence(mustPresence(t, occupantPresence("alice", "", "", tc.status...)))
		if tc.changed != nil {
			if _, cfg := c.mucs.ApplyRoomMessage(mucroom.Message{From: room, HasUser: true, User: mucadmin.User{Status: tc.changed}}); cfg == nil {
				t.Fatalf("%s: status %v is no configuration change", tc.name, tc.changed)
			}
		}
		err := send()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.want != xmppclient.ErrNotConnected && !errors.Is(err, errGroupOMEMO) {
			t.Errorf("%s: %v is not errGroupOMEMO", tc.name, err)
		}
	}
}

// TestRoomOMEMOChangeText: an OMEMO portal hears when its room's
// configuration makes OMEMO impossible, and possible again; nothing else.
func TestRoomOMEMOChangeText(t *testing.T) {
	for _, tc := range []struct {
		name     string
		was, now error
		want     string
	}{
		{"now hides JIDs", nil, errRoomHidesJIDs, "cannot be used in it any more: the room hides real JIDs"},
		{"now open", nil, errRoomOpen, "not members-only"},
		{"possible again", errRoomHidesJIDs, nil, "OMEMO-encrypted again"},
		{"still possible", nil, nil, ""},
		{"still impossible", errRoomOpen, errRoomHidesJIDs, ""},
	} {
		got := roomOMEMOChangeText(tc.was, tc.now)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want it to contain %q", tc.name, got, tc.want)
		}
	}
}

func TestGroupEncryptionFailureText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errOMEMOUnavailable, "not ready"},
		{errors.New("boom"), "encryption failed: boom"},
	} {
		if got := groupEncryptionFailureText(tc.err); !strings.Contains(got, tc.want) || !strings.HasPrefix(got, "Not sent: this group chat is OMEMO-encrypted") {
			t.Errorf("groupEncryptionFailureText(%v) = %q", tc.err, got)
		}
	}
}

// TestDecryptGroupchatInbox: bob's OMEMO 2 group message is decrypted as
// his real JID through the inbox (the row keeps the room and the sender),
// and the same stanza again is answered from the inbox.
func TestDecryptGroupchatInbox(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	room := jid.MustParse("room@muc.localhost")
	r := xmppclient.Room{JID: room, Nick: "alice", NonAnonymous: true, Joined: true,
		Features:  mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous, MembersOnly: true},
		Occupants: map[string]xmppclient.Occupant{"bob": {Nick: "bob", RealJID: f.bob}}}
	out, err := f.bobXC.EncryptGroup(ctx, room, []jid.JID{f.alice}, "hello room")
	if err != nil {
		t.Fatal(err)
	}
	// A member's device is trusted blindly once the member's own list
	// names it (fetched as for any member).
	if _, err := f.c.omemoClient().FetchDevices(ctx, f.bob); err != nil {
		t.Fatal(err)
	}
	from, _ := room.WithResource("bob")
	msg, err := omemoxmpp.BuildMessage(stanza.Message{From: from, To: f.alice, ID: "g1", Type: stanza.GroupChatMessage}, out,
		sid.StanzaID{ID: "arch-1", By: room}.TokenReader())
	if err != nil {
		t.Fatal(err)
	}
	st, err := stanzabuf.Read(msg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		m, err := mucroom.ParseMessage(st.Reader())
		if err != nil {
			t.Fatal(err)
		}
		g := classifyGroupchat(m, r, f.alice, f.c.login.ID, true, xmppclient.Refs{})
		if err := f.c.decryptIncoming(ctx, withRaw(g, st)); err != nil {
			t.Fatalf("round %d: not shown: %v", i, err)
		}
		if g.Body != "hello room" || g.OMEMO == nil || g.OMEMO.Failed || !g.OMEMO.Trusted || g.Sender.Sender != puppet.UserID(f.bob) {
			t.Errorf("round %d: body %q, OMEMO %+v, sender %s", i, g.Body, g.OMEMO, g.Sender.Sender)
		}
		if groupOMEMOAllowed(r) != nil {
			t.Errorf("the room may not be encrypted")
		}
	}
	var peer, sender string
	if err := f.db.QueryRow(ctx, `SELECT peer, sender FROM omemo_inbox WHERE account='alice@localhost'`).Scan(&peer, &sender); err != nil {
		t.Fatal(err)
	}
	if peer != room.String() || sender != f.bob.String() {
		t.Errorf("inbox row peer=%q sender=%q", peer, sender)
	}
}

// TestGroupchatUnlistedDevice: in a non-anonymous room the room service
// asserts the occupants' real JIDs. A session from a device the named JID
// never published is not trusted blindly under that JID (the message is
// marked), and the JID's list is fetched for the next messages.
func TestGroupchatUnlistedDevice(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	room := jid.MustParse("room@muc.localhost")
	r := xmppclient.Room{JID: room, Nick: "alice", NonAnonymous: true, Joined: true,
		Features:  mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous, MembersOnly: true},
		Occupants: map[string]xmppclient.Occupant{"bob": {Nick: "bob", RealJID: f.bob}}}
	// Bob's published list, as the bridge knows it, has another device:
	// the room claims a device of bob's that bob never listed.
	if err := f.c.omemoStore().PutDeviceList(ctx, omemo.V2, f.bob.String(), []omemo.Device{{ID: 4711}}); err != nil {
		t.Fatal(err)
	}
	out, err := f.bobXC.EncryptGroup(ctx, room, []jid.JID{f.alice}, "who am I")
	if err != nil {
		t.Fatal(err)
	}
	from, _ := room.WithResource("bob")
	msg, err := omemoxmpp.BuildMessage(stanza.Message{From: from, To: f.alice, ID: "u1", Type: stanza.GroupChatMessage}, out)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stanzabuf.Read(msg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mucroom.ParseMessage(st.Reader())
	if err != nil {
		t.Fatal(err)
	}
	g := classifyGroupchat(m, r, f.alice, f.c.login.ID, true, xmppclient.Refs{})
	if err := f.c.decryptIncoming(ctx, withRaw(g, st)); err != nil {
		t.Fatalf("not shown: %v", err)
	}
	if g.Body != "who am I" || g.OMEMO == nil || g.OMEMO.Trusted {
		t.Fatalf("body %q, OMEMO %+v: an unlisted device asserted by the room is trusted", g.Body, g.OMEMO)
	}
	// The follow-up fetch of bob's real list is queued.
	fetch := false
	for _, task := range f.c.omemo.Queue().Pending() {
		fetch = fetch || (task.Kind == xmppclient.TaskFetchDevices && task.Peer.Equal(f.bob))
	}
	if !fetch {
		t.Error("no device list fetch queued for the untrusted sender")
	}
}

// withRaw gives g the stanza it was read from (as xmppclient.ReadGroupchat does).
func withRaw(g *incoming, st *stanzabuf.Stanza) *incoming {
	g.Raw = st
	return g
}
