package e2e

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestMUC bridges XEP-0045 group chats on real Prosody (conference.localhost) and Dendrite: a room
// made by a plain XMPP client is joined with the bot's join command and becomes a portal of the
// login; occupants are ghosts (the shared contact ghost where the room shows real JIDs, an
// occupant ghost where it hides them); messages cross both ways once; members, the subject and a
// bridge restart follow. SQLite only: the database path is the 1:1 one.
//
// It runs on Prosody (with its HTTPS upload service) and on ejabberd (MUC and HTTP upload as
// Debian configures them).
func TestMUC(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runMUC(t, server)
		})
	}
}

func runMUC(t *testing.T, server string) {
	mc := &mucScenario{stack: newStackOn(t, server, "sqlite", testenv.ProsodyOptions{UploadHTTPS: true})}
	var bobPW, carolPW string
	mc.alice, mc.alicePW = mc.account(t, "alice")
	mc.bob, bobPW = mc.account(t, "bob")
	mc.carol, carolPW = mc.account(t, "carol")
	mc.bobC = mc.peer(t, mc.bob, bobPW, "laptop")
	mc.carolC = mc.peer(t, mc.carol, carolPW, "laptop")
	mc.room = jid.MustParse("plans@" + mc.xmpp.MUCDomain())
	mc.anon = jid.MustParse("whispers@" + mc.xmpp.MUCDomain())
	// bob owns both rooms: plans shows real JIDs to everyone and has a name and a subject;
	// whispers keeps Prosody's default (real JIDs for moderators only).
	createRoom(t, mc.bobC, mc.room, "bob", map[string]string{
		"muc#roomconfig_roomname": mucRoomName,
		"muc#roomconfig_whois":    "anyone",
	})
	setSubject(t, mc.bobC, mc.room, mucSubject)
	createRoom(t, mc.bobC, mc.anon, "bob", nil)
	mc.closed = jid.MustParse("members@" + mc.xmpp.MUCDomain())
	createRoom(t, mc.bobC, mc.closed, "bob", map[string]string{"muc#roomconfig_membersonly": "1"})
	mc.user = mc.matrixUser(t, "mxmuc")

	steps := []step{
		{"Login", mc.testLogin},
		{"JoinRefused", mc.testJoinRefused},
		{"Join", mc.testJoin},
		{"MessageFromOccupant", mc.testIncoming},
		{"ReplyFromMatrixOnce", mc.testReply},
	}
	steps = append(steps, mc.featureSteps()...)
	for _, st := range append(steps, []step{
		{"SecondOccupantIsMember", mc.testSecondOccupant},
		{"TypingInRoom", mc.testTypingInRoom},
		{"MarkerInRoom", mc.testMarkerInRoom},
		{"TypingFromMatrix", mc.testTypingFromMatrix},
		{"MarkerFromMatrix", mc.testMarkerFromMatrix},
		{"CorrectionByOtherOccupantIgnored", mc.testCorrectionByOtherOccupant},
		{"JoinAgainKeepsMembers", mc.testJoinAgain},
		{"SubjectIsTopic", mc.testSubject},
		{"UndecryptableOMEMOGetsNotice", mc.testOMEMONotice},
		{"AnonymousRoomAndNickConflict", mc.testAnonymousRoom},
		{"RejoinAfterRestart", mc.testRejoin},
		{"Leave", mc.testLeave},
	}...) {
		t.Run(st.name, st.fn)
	}
}

const (
	mucRoomName = "Weekend plans"
	mucSubject  = "Where do we go?"
)

type mucScenario struct {
	*stack
	user    *harness.MatrixUser
	mgmt    id.RoomID
	alice   jid.JID
	alicePW string
	bob     jid.JID
	carol   jid.JID
	bobC    *harness.Peer
	carolC  *harness.Peer
	room    jid.JID // non-anonymous
	anon    jid.JID // semi-anonymous
	closed  jid.JID // members-only

	anonPortal id.RoomID

	loggedIn bool
	portal   id.RoomID
}

func (mc *mucScenario) needPortal(t *testing.T) {
	t.Helper()
	if mc.portal == "" {
		t.Fatal("needs the portal of Join, which failed")
	}
}

// createRoom makes room as its owner with nick and configures it (an instant room when config is
// empty): Prosody keeps new rooms locked until then.
func createRoom(t *testing.T, p *harness.Peer, room jid.JID, nick string, config map[string]string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	joinRoomAs(t, ctx, p, room, nick)
	configureRoom(t, ctx, p, room, config)
}

// configureRoom submits config as the owner configuration of room (XEP-0045 §10.2) from p.
func configureRoom(t *testing.T, ctx context.Context, p *harness.Peer, room jid.JID, config map[string]string) {
	t.Helper()
	var fields strings.Builder
	fields.WriteString(`<field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>`)
	for k, v := range config {
		fmt.Fprintf(&fields, `<field var=%q><value>%s</value></field>`, k, html.EscapeString(v))
	}
	iq := fmt.Sprintf(`<iq xmlns="jabber:client" type="set" id="cfg-%d" to=%q><query xmlns="http://jabber.org/protocol/muc#owner">`+
		`<x xmlns="jabber:x:data" type="submit">%s</x></query></iq>`, time.Now().UnixNano(), room.String(), fields.String())
	resp, err := p.Session.SendIQ(ctx, xml.NewDecoder(strings.NewReader(iq)))
	if err != nil {
		t.Fatalf("configuring %s: %v", room, err)
	}
	defer resp.Close()
	tok, err := resp.Token()
	if err != nil {
		t.Fatalf("configuring %s: %v", room, err)
	}
	if start, ok := tok.(xml.StartElement); !ok || attr(start, "type") != "result" {
		t.Fatalf("configuring %s: the room answered %v", room, tok)
	}
}

// joinRoomAs enters room with nick and waits for the peer's own presence from the room.
func joinRoomAs(t *testing.T, ctx context.Context, p *harness.Peer, room jid.JID, nick string) {
	t.Helper()
	cur := p.PresenceCursor()
	occ := room.String() + "/" + nick
	if err := p.SendRaw(ctx, fmt.Sprintf(`<presence xmlns="jabber:client" to=%q><x xmlns="http://jabber.org/protocol/muc"/></presence>`, occ)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitPresence(ctx, cur, func(pr harness.ReceivedPresence) bool { return pr.From == occ }); err != nil {
		t.Fatalf("%s could not join %s: %v", p.JID, occ, err)
	}
}

func setSubject(t *testing.T, p *harness.Peer, room jid.JID, subject string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	if err := p.SendRaw(ctx, fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat"><subject>%s</subject></message>`,
		room.String(), html.EscapeString(subject))); err != nil {
		t.Fatal(err)
	}
}

func sendGroupchat(t *testing.T, ctx context.Context, p *harness.Peer, room jid.JID, body string) {
	t.Helper()
	if err := p.SendRaw(ctx, fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id="gc-%d"><body>%s</body></message>`,
		room.String(), time.Now().UnixNano(), html.EscapeString(body))); err != nil {
		t.Fatal(err)
	}
}

func attr(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// waitState polls a state event of room until ok accepts it.
func waitState(t *testing.T, u *harness.MatrixUser, room id.RoomID, typ event.Type, key string, content any, ok func() bool) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	for {
		if err := u.Client.StateEvent(ctx, room, typ, key, content); err == nil && ok() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s in %s never became what the test wants (last: %+v)", typ.Type, room, content)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (mc *mucScenario) command(t *testing.T, text string, match func(string) bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*stepTimeout)
	defer cancel()
	answer, err := mc.user.Command(ctx, mc.mgmt, mc.bot, text, match)
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

func (mc *mucScenario) testLogin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	room, err := mc.user.OpenManagementRoom(ctx, mc.bot)
	if err != nil {
		t.Fatal(err)
	}
	mc.mgmt = room
	if _, err := mc.login(t, mc.user, room, mc.alice, mc.alicePW); err != nil {
		t.Fatal(err)
	}
	mc.loggedIn = true
}

func (mc *mucScenario) testJoinRefused(t *testing.T) {
	if !mc.loggedIn {
		t.Fatal("needs the login")
	}
	missing := "nosuchroom@" + mc.xmpp.MUCDomain()
	if answer := mc.command(t, "join "+missing, nil); !strings.Contains(answer, "does not exist") {
		t.Errorf("join of a missing room: the bot said %q", answer)
	}
	if answer := mc.command(t, "join "+mc.closed.String(), nil); !strings.Contains(answer, "members-only") {
		t.Errorf("join of a members-only room: the bot said %q", answer)
	}
	if answer := mc.command(t, "join "+mc.alice.String(), nil); !strings.Contains(answer, "is not a group chat") {
		t.Errorf("join of an account: the bot said %q", answer)
	}
	// Trying did not create the missing room (the bridge asks disco#info before it joins), and
	// no portal exists for it.
	ctx, cancel := stepCtx()
	defer cancel()
	if _, err := disco.GetInfo(ctx, "", jid.MustParse(missing), mc.carolC.Session); !errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		t.Errorf("disco#info of %s after the refused join: %v, want item-not-found", missing, err)
	}
	if got := mc.query(t, "SELECT id FROM portal WHERE id = ?", "muc:"+missing); len(got) != 0 {
		t.Errorf("a portal exists for the refused room: %q", got)
	}
}

func (mc *mucScenario) testJoinAgain(t *testing.T) {
	mc.needPortal(t)
	answer := mc.command(t, "join "+mc.room.String(), nil)
	if !strings.Contains(answer, "already in") {
		t.Errorf("the bot said %q", answer)
	}
	ctx, cancel := stepCtx()
	defer cancel()
	mc.barrier(t, "barrier after the second join")
	resp, err := mc.user.Client.JoinedMembers(ctx, mc.portal)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []id.UserID{mc.ghost(mc.bob), mc.ghost(mc.carol)} {
		if _, ok := resp.Joined[g]; !ok {
			t.Errorf("%s left the portal after the second join", g)
		}
	}
}

func (mc *mucScenario) testJoin(t *testing.T) {
	if !mc.loggedIn {
		t.Fatal("needs the login")
	}
	presCur := mc.bobC.PresenceCursor()
	answer := mc.command(t, "join "+mc.room.String(), nil)
	if want := "Joined " + mc.room.String() + " as alice"; !strings.Contains(answer, want) {
		t.Fatalf("the bot said %q, want %q", answer, want)
	}
	ctx, cancel := stepCtx()
	defer cancel()
	occ := mc.room.String() + "/alice"
	if _, err := mc.bobC.WaitPresence(ctx, presCur, func(p harness.ReceivedPresence) bool { return p.From == occ && p.Type == "" }); err != nil {
		t.Fatalf("bob never saw alice enter the room: %v", err)
	}
	// The room shows real JIDs: bob is the same ghost as in a 1:1 chat.
	room, err := mc.user.FindRoomWith(ctx, mc.ghost(mc.bob), mc.mgmt)
	if err != nil {
		t.Fatalf("no portal with bob's ghost: %v", err)
	}
	mc.portal = room
	var name event.RoomNameEventContent
	waitState(t, mc.user, room, event.StateRoomName, "", &name, func() bool { return name.Name == mucRoomName })
	var topic event.TopicEventContent
	waitState(t, mc.user, room, event.StateTopic, "", &topic, func() bool { return topic.Topic == mucSubject })
	// A group room, not a DM.
	if ids := mc.query(t, "SELECT room_type FROM portal WHERE mxid = ?", room.String()); len(ids) != 1 || ids[0] != "" {
		t.Errorf("portal room_type = %q, want the default (group)", ids)
	}
	// Not a direct chat for Matrix clients either.
	if inv := memberEvent(t, mc.user, room, mc.user.UserID(), event.MembershipInvite); inv == nil || inv.Content.Raw["is_direct"] == true {
		t.Errorf("the group portal's invite of the user: %+v, want one without is_direct", inv)
	}
	// Remembered for reconnects.
	if meta := mc.query(t, "SELECT metadata FROM user_login WHERE id = ?", mc.alice.String()); len(meta) != 1 || !strings.Contains(meta[0], mc.room.String()) {
		t.Errorf("the login metadata does not remember the room: %q", meta)
	}
}

func (mc *mucScenario) testIncoming(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("hello room, bob here")
	sendGroupchat(t, ctx, mc.bobC, mc.room, body)
	evt, _, err := mc.user.WaitEvent(ctx, mc.portal, 0, harness.IsMessage("", body))
	if err != nil {
		t.Fatalf("%q never appeared in the portal: %v", body, err)
	}
	if evt.Sender != mc.ghost(mc.bob) {
		t.Errorf("%q was sent by %s, want bob's ghost %s", body, evt.Sender, mc.ghost(mc.bob))
	}
}

func (mc *mucScenario) testReply(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("reply from matrix to the room")
	cur := mc.bobC.Cursor()
	resp, err := mc.user.Client.SendText(ctx, mc.portal, body)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := mc.bobC.WaitMessage(ctx, cur, bodyIs(body))
	if err != nil {
		t.Fatalf("bob did not get the reply: %v", err)
	}
	if want := mc.room.String() + "/alice"; m.From != want || m.Type != "groupchat" {
		t.Errorf("bob got the reply from %q as %q, want groupchat from %s", m.From, m.Type, want)
	}
	if m.OriginID == "" || m.OriginID != m.ID {
		t.Errorf("the reply has id %q and origin-id %q, want both the same", m.ID, m.OriginID)
	}
	// Not echoed back into Matrix: bob's next message is the barrier.
	mc.barrier(t, "barrier after the reply")
	if n := countBodies(t, mc.user, mc.portal, body); n != 1 {
		t.Errorf("the reply is %d times in the portal, want once (the room's reflection was bridged back)", n)
	}
	if n := peerCount(mc.bobC, body); n != 1 {
		t.Errorf("bob got the reply %d times, want once", n)
	}
	// The reflection completed the message: it is stored under the room's stanza-id.
	ids := mc.query(t, "SELECT id FROM message WHERE mxid = ?", resp.EventID.String())
	if len(ids) != 1 || !strings.HasPrefix(ids[0], mc.room.String()+"//sid:") {
		t.Errorf("message rows for the reply: %q, want one keyed by the room's stanza-id", ids)
	}
}

func (mc *mucScenario) testSecondOccupant(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	joinRoomAs(t, ctx, mc.carolC, mc.room, "carol")
	carol := mc.ghost(mc.carol)
	for {
		resp, err := mc.user.Client.JoinedMembers(ctx, mc.portal)
		if err == nil {
			if _, ok := resp.Joined[carol]; ok {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("carol's ghost %s never joined the portal", carol)
		case <-time.After(200 * time.Millisecond):
		}
	}
	body := uniq("carol says hi")
	sendGroupchat(t, ctx, mc.carolC, mc.room, body)
	if _, _, err := mc.user.WaitEvent(ctx, mc.portal, 0, harness.IsMessage(carol, body)); err != nil {
		t.Fatalf("carol's message never appeared as hers: %v", err)
	}
}

func (mc *mucScenario) testSubject(t *testing.T) {
	mc.needPortal(t)
	subject := uniq("new plan")
	setSubject(t, mc.bobC, mc.room, subject)
	var topic event.TopicEventContent
	waitState(t, mc.user, mc.portal, event.StateTopic, "", &topic, func() bool { return topic.Topic == subject })
}

func (mc *mucScenario) testOMEMONotice(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	fallback := uniq("I sent you an OMEMO encrypted message")
	raw := fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id="omemo-%d">`+
		`<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="12345"><key rid="1">AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header>`+
		`<payload>AAAA</payload></encrypted><body>%s</body><store xmlns="urn:xmpp:hints"/></message>`,
		mc.room.String(), time.Now().UnixNano(), fallback)
	if err := mc.bobC.SendRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	// The room shows real JIDs, so the bridge tries to decrypt it as bob's; it was not
	// encrypted for the bridge's device.
	evt, _, err := mc.user.WaitEvent(ctx, mc.portal, 0, harness.IsMessage(mc.ghost(mc.bob), "Could not decrypt an OMEMO message from "+mc.bob.String()))
	if err != nil {
		t.Fatalf("no notice for bob's OMEMO message: %v", err)
	}
	if msg := evt.Content.AsMessage(); msg.MsgType != event.MsgNotice {
		t.Errorf("the OMEMO notice is a %s, want m.notice", msg.MsgType)
	}
	mc.barrier(t, "barrier after OMEMO")
	if n := countBodies(t, mc.user, mc.portal, fallback); n != 0 {
		t.Errorf("the OMEMO fallback body reached the portal %d times", n)
	}
}

func (mc *mucScenario) testAnonymousRoom(t *testing.T) {
	if !mc.loggedIn {
		t.Fatal("needs the login")
	}
	ctx, cancel := stepCtx()
	defer cancel()
	// carol takes the nick the bridge would use.
	joinRoomAs(t, ctx, mc.carolC, mc.anon, "alice")
	answer := mc.command(t, "join "+mc.anon.String(), nil)
	if want := "Joined " + mc.anon.String() + " as alice_"; !strings.Contains(answer, want) {
		t.Fatalf("the bot said %q, want %q", answer, want)
	}
	// Real JIDs are hidden from alice: bob is a ghost of his occupant JID, not his account's.
	bobOcc := harness.GhostMXID("muc:"+mc.anon.String()+"/bob", "localhost")
	room, err := mc.user.FindRoomWith(ctx, bobOcc, mc.mgmt, mc.portal)
	if err != nil {
		t.Fatalf("no portal with bob's occupant ghost %s: %v", bobOcc, err)
	}
	mc.anonPortal = room
	var name event.RoomNameEventContent
	waitState(t, mc.user, room, event.StateRoomName, "", &name, func() bool { return name.Name == "whispers" })
	body := uniq("anonymous hello")
	sendGroupchat(t, ctx, mc.bobC, mc.anon, body)
	evt, _, err := mc.user.WaitEvent(ctx, room, 0, harness.IsMessage("", body))
	if err != nil {
		t.Fatalf("%q never appeared: %v", body, err)
	}
	if evt.Sender != bobOcc {
		t.Errorf("%q was sent by %s, want the occupant ghost %s", body, evt.Sender, bobOcc)
	}
	reply := uniq("reply under the second nick")
	cur := mc.bobC.Cursor()
	if _, err := mc.user.Client.SendText(ctx, room, reply); err != nil {
		t.Fatal(err)
	}
	m, _, err := mc.bobC.WaitMessage(ctx, cur, bodyIs(reply))
	if err != nil {
		t.Fatalf("bob did not get the reply: %v", err)
	}
	if want := mc.anon.String() + "/alice_"; m.From != want {
		t.Errorf("the reply came from %q, want %s", m.From, want)
	}
}

func (mc *mucScenario) testRejoin(t *testing.T) {
	mc.needPortal(t)
	if err := mc.bridge.Stop(); err != nil {
		t.Fatal(err)
	}
	presCur := mc.bobC.PresenceCursor()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := mc.bridge.Start(ctx); err != nil {
		t.Fatal(err)
	}
	occ := mc.room.String() + "/alice"
	if _, err := mc.bobC.WaitPresence(ctx, presCur, func(p harness.ReceivedPresence) bool { return p.From == occ && p.Type == "" }); err != nil {
		t.Fatalf("the bridge did not rejoin %s after the restart: %v", mc.room, err)
	}
	body := uniq("after the restart, in the room")
	sendGroupchat(t, ctx, mc.bobC, mc.room, body)
	if _, _, err := mc.user.WaitEvent(ctx, mc.portal, 0, harness.IsMessage(mc.ghost(mc.bob), body)); err != nil {
		t.Fatalf("%q did not reach the existing portal: %v", body, err)
	}
	reply := uniq("matrix after the restart, in the room")
	cur := mc.bobC.Cursor()
	if _, err := mc.user.Client.SendText(ctx, mc.portal, reply); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mc.bobC.WaitMessage(ctx, cur, bodyIs(reply)); err != nil {
		t.Fatalf("Matrix -> room after the restart: %v", err)
	}
	// The rejoin resynced the members: carol is still there.
	resp, err := mc.user.Client.JoinedMembers(ctx, mc.portal)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Joined[mc.ghost(mc.carol)]; !ok {
		t.Errorf("carol's ghost left the portal over the restart")
	}
}

func (mc *mucScenario) testLeave(t *testing.T) {
	mc.needPortal(t)
	presCur := mc.bobC.PresenceCursor()
	answer := mc.command(t, "leave "+mc.room.String(), nil)
	if !strings.HasPrefix(answer, "Left "+mc.room.String()) {
		t.Fatalf("the bot said %q", answer)
	}
	ctx, cancel := stepCtx()
	defer cancel()
	occ := mc.room.String() + "/alice"
	if _, err := mc.bobC.WaitPresence(ctx, presCur, func(p harness.ReceivedPresence) bool { return p.From == occ && p.Type == "unavailable" }); err != nil {
		t.Fatalf("bob never saw alice leave: %v", err)
	}
	if rooms := loginSavedRooms(t, mc.stack, mc.alice); slices.Contains(rooms, mc.room.String()) {
		t.Errorf("the login metadata still has the room after leave: %q", rooms)
	}
	// Matrix -> a room we left: a failure status, nothing reaches the room.
	cur := mc.bobC.Cursor()
	late := uniq("after leaving")
	if _, err := mc.user.Client.SendText(ctx, mc.portal, late); err != nil {
		t.Fatal(err)
	}
	barrier := uniq("barrier after leaving")
	sendGroupchat(t, ctx, mc.carolC, mc.room, barrier)
	if _, _, err := mc.bobC.WaitMessage(ctx, cur, bodyIs(barrier)); err != nil {
		t.Fatal(err)
	}
	if n := peerCount(mc.bobC, late); n != 0 {
		t.Errorf("a Matrix message reached the room after leave")
	}

	// --delete also removes the Matrix room.
	if mc.anonPortal == "" {
		return
	}
	if answer := mc.command(t, "leave "+mc.anon.String()+" --delete", nil); !strings.Contains(answer, "being deleted") {
		t.Fatalf("the bot said %q", answer)
	}
	for slices.Contains(mc.user.JoinedRooms(), mc.anonPortal) {
		select {
		case <-ctx.Done():
			t.Fatalf("the user is still in %s after leave --delete", mc.anonPortal)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
