package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestBridge runs the 1:1 plaintext scenarios of the foundation issue against real Prosody and
// Dendrite servers, once with the bridge on SQLite and once on PostgreSQL. The steps of one
// backend share its servers and build on each other, so they run in order; a step whose
// prerequisite failed fails at once instead of timing out.
//
// The same scenario runs on ejabberd as well (with SQLite): login (SASL as ejabberd offers it),
// 1:1 messages both ways, carbons, restarts, server restart and a password change there.
func TestBridge(t *testing.T) {
	for _, tc := range []struct{ name, server, backend string }{
		{"sqlite", "prosody", "sqlite"},
		{"postgres", "prosody", "postgres"},
		{"ejabberd", "ejabberd", "sqlite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, tc.server, tc.backend)
		})
	}
}

type scenario struct {
	*stack
	user    *harness.MatrixUser
	mgmt    id.RoomID
	alice   jid.JID // the bridged account
	alicePW string
	bob     jid.JID // contact with a roster name
	bobPW   string
	carol   jid.JID // contact without roster entry
	dave    jid.JID // contact reached through start-chat

	phone  *harness.Peer // alice's second client
	bobC   *harness.Peer
	carolC *harness.Peer
	daveC  *harness.Peer

	// heidi is a second Matrix user's login (direct TLS).
	heidi     jid.JID
	heidiUser *harness.MatrixUser
	heidiMgmt id.RoomID

	loggedIn bool
	bobRoom  id.RoomID
	// bobBodies are the bodies that must be in bob's portal exactly once.
	bobBodies []string
}

const bobRosterName = "Bob Builder"

func runScenario(t *testing.T, server, backend string) {
	sc := &scenario{stack: newStackOn(t, server, backend, testenv.ProsodyOptions{})}
	sc.alice, sc.alicePW = sc.account(t, "alice")
	var carolPW, davePW string
	sc.bob, sc.bobPW = sc.account(t, "bob")
	sc.carol, carolPW = sc.account(t, "carol")
	sc.dave, davePW = sc.account(t, "dave")
	sc.phone = sc.peer(t, sc.alice, sc.alicePW, "phone")
	sc.bobC = sc.peer(t, sc.bob, sc.bobPW, "laptop")
	sc.carolC = sc.peer(t, sc.carol, carolPW, "laptop")
	sc.daveC = sc.peer(t, sc.dave, davePW, "laptop")
	{
		ctx, cancel := stepCtx()
		// The bridged account names bob in its roster (before the bridge logs in, so the
		// roster the bridge fetches has it); carol stays unnamed.
		if err := sc.phone.SetRosterName(ctx, sc.bob, bobRosterName); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	sc.user = sc.matrixUser(t, "mxuser")

	steps := []step{
		{"LoginThroughBot", sc.testLogin},
		{"IncomingFromRosterContact", sc.testIncoming},
		{"IncomingFromNonRosterContact", sc.testIncomingNoRoster},
		{"ReplyFromMatrix", sc.testReply},
		{"CarbonFromOwnOtherClient", sc.testCarbon},
		{"DuplicateStanzaBridgedOnce", sc.testDuplicate},
		{"RestartReconnects", sc.testRestart},
		{"CredentialsEncryptedAtRest", sc.testCredentialsAtRest},
		{"OfflineMessageAfterRestart", sc.testOfflineAfterRestart},
		{"ArchiveCatchUpAfterRestart", sc.testArchiveCatchUp},
		{"NothingBridgedTwice", sc.testNothingTwice},
		{"LoginErrors", sc.testLoginErrors},
		{"LoginDirectTLS", sc.testDirectTLS},
		{"StartChatByJID", sc.testStartChat},
		{"ContactList", sc.testContactList},
		{"RosterNameKeptAcrossLogins", sc.testRosterNameAcrossLogins},
		{"ReconnectAfterServerRestart", sc.testServerRestart},
		{"SecondLogin", sc.testSecondLogin},
	}
	steps = append(steps, sc.featureSteps()...)
	steps = append(steps, step{"BadCredentialsAfterPasswordChange", sc.testBadCredentials})
	for _, st := range steps {
		t.Run(st.name, st.fn)
	}
}

func (sc *scenario) needLogin(t *testing.T) {
	t.Helper()
	if !sc.loggedIn {
		t.Fatal("needs the login of LoginThroughBot, which failed")
	}
}

func (sc *scenario) needBobRoom(t *testing.T) {
	t.Helper()
	sc.needLogin(t)
	if sc.bobRoom == "" {
		t.Fatal("needs bob's portal from IncomingFromRosterContact, which failed")
	}
}

func (sc *scenario) testLogin(t *testing.T) {
	ctx, cancel := stepCtx()
	defer cancel()
	room, err := sc.user.OpenManagementRoom(ctx, sc.bot)
	if err != nil {
		t.Fatal(err)
	}
	sc.mgmt = room
	res, err := sc.login(t, sc.user, room, sc.alice, sc.alicePW)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Successfully logged in as " + sc.alice.String(); !strings.Contains(res.Answer, want) {
		t.Fatalf("bot said %q, want %q", res.Answer, want)
	}
	sc.loggedIn = true
	// The bridge's session is available once its presence reaches alice's other client. A message
	// sent to alice's bare JID before that reaches the other client only (ejabberd delivers to
	// available resources, and sends no carbon to a resource without presence), and the first
	// login's archive catch-up starts after it.
	if _, err := sc.phone.WaitPresence(ctx, 0, func(p harness.ReceivedPresence) bool {
		from, err := jid.Parse(p.From)
		return err == nil && p.Type == "" && from.Bare().Equal(sc.alice) && !from.Equal(sc.phone.JID)
	}); err != nil {
		t.Errorf("the bridge's presence never reached alice's other client: %v", err)
	}
	// The login is stored in the database under test, so that it survives restarts.
	if ids := sc.query(t, "SELECT id FROM user_login WHERE user_mxid = ?", sc.user.UserID().String()); !slices.Equal(ids, []string{sc.alice.String()}) {
		t.Errorf("user_login rows in the %s database = %v, want [%s]", sc.backend, ids, sc.alice)
	}
	// The password does not stay in the room.
	if err := sc.user.WaitRedacted(ctx, room, res.PasswordEvent); err != nil {
		t.Errorf("the message with the password: %v", err)
	}
}

// waitGhostMessage waits for body in the portal with contact, from contact's ghost, and returns the
// portal.
func (sc *scenario) waitGhostMessage(t *testing.T, contact jid.JID, body string) id.RoomID {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	ghost := sc.ghost(contact)
	room, err := sc.user.FindRoomWith(ctx, ghost, sc.mgmt)
	if err != nil {
		t.Fatalf("no portal for %s: %v", contact, err)
	}
	evt, _, err := sc.user.WaitEvent(ctx, room, 0, harness.IsMessage("", body))
	if err != nil {
		t.Fatalf("%q never appeared in %s: %v", body, room, err)
	}
	if evt.Sender != ghost {
		t.Fatalf("%q was sent by %s, want the ghost %s", body, evt.Sender, ghost)
	}
	if got := harness.Body(evt); got != body {
		t.Fatalf("body = %q, want %q", got, body)
	}
	return room
}

// waitDisplayname polls the ghost's profile until it has want.
func (sc *scenario) waitDisplayname(t *testing.T, ghost id.UserID, want string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	last := ""
	for {
		resp, err := sc.user.Client.GetDisplayName(ctx, ghost)
		if err == nil {
			last = resp.DisplayName
			if last == want {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("displayname of %s is %q, want %q", ghost, last, want)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (sc *scenario) testIncoming(t *testing.T) {
	sc.needLogin(t)
	body := uniq("hello from bob")
	ctx, cancel := stepCtx()
	defer cancel()
	if err := sc.bobC.SendChat(ctx, sc.alice, "", "", body); err != nil {
		t.Fatal(err)
	}
	sc.bobRoom = sc.waitGhostMessage(t, sc.bob, body)
	sc.bobBodies = append(sc.bobBodies, body)
	sc.waitDisplayname(t, sc.ghost(sc.bob), bobRosterName+" (XMPP)")
	// The room member event carries the same name.
	var member event.MemberEventContent
	if err := sc.user.Client.StateEvent(ctx, sc.bobRoom, event.StateMember, sc.ghost(sc.bob).String(), &member); err != nil {
		t.Fatal(err)
	}
	if member.Displayname != bobRosterName+" (XMPP)" {
		t.Errorf("member displayname of bob's ghost in the portal = %q, want %q", member.Displayname, bobRosterName+" (XMPP)")
	}
}

func (sc *scenario) testIncomingNoRoster(t *testing.T) {
	sc.needLogin(t)
	body := uniq("hi, carol here")
	ctx, cancel := stepCtx()
	defer cancel()
	if err := sc.carolC.SendChat(ctx, sc.alice, "", "", body); err != nil {
		t.Fatal(err)
	}
	room := sc.waitGhostMessage(t, sc.carol, body)
	if room == sc.bobRoom {
		t.Fatalf("carol's message landed in bob's portal %s", room)
	}
	sc.waitDisplayname(t, sc.ghost(sc.carol), "carol (XMPP)")
}

func (sc *scenario) testReply(t *testing.T) {
	sc.needBobRoom(t)
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("reply from matrix")
	cur := sc.bobC.Cursor()
	if _, err := sc.user.Client.SendText(ctx, sc.bobRoom, body); err != nil {
		t.Fatal(err)
	}
	m, _, err := sc.bobC.WaitMessage(ctx, cur, bodyIs(body))
	if err != nil {
		t.Fatalf("bob did not receive the reply: %v (received: %+v)", err, sc.bobC.Received()[cur:])
	}
	from, err := jid.Parse(m.From)
	if err != nil || !from.Bare().Equal(sc.alice) {
		t.Errorf("reply came from %q, want alice's account %s", m.From, sc.alice)
	}
	if m.Type != "chat" {
		t.Errorf("reply type = %q, want chat", m.Type)
	}
	sc.bobBodies = append(sc.bobBodies, body)
}

func (sc *scenario) testCarbon(t *testing.T) {
	sc.needBobRoom(t)
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("sent from alice's phone")
	bobCur := sc.bobC.Cursor()
	roomCur := sc.user.Cursor(sc.bobRoom)
	if err := sc.phone.SendChat(ctx, sc.bob, "", "", body); err != nil {
		t.Fatal(err)
	}
	evt, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, roomCur, harness.IsMessage("", body))
	if err != nil {
		t.Fatalf("the carbon of %q never appeared in bob's portal: %v", body, err)
	}
	// Without double puppeting, bridgev2 sends the user's own messages through the ghost of the
	// user's own XMPP account: never bob's ghost, never the bot.
	if want := sc.ghost(sc.alice); evt.Sender != want {
		t.Fatalf("the carbon was sent by %s, want alice's own ghost %s", evt.Sender, want)
	}
	sc.bobBodies = append(sc.bobBodies, body)
	// Not echoed back to XMPP: a later Matrix message is a barrier; by the time bob has it, an
	// echo of the carbon would have arrived before it.
	barrier := uniq("barrier after carbon")
	if _, err := sc.user.Client.SendText(ctx, sc.bobRoom, barrier); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.bobC.WaitMessage(ctx, bobCur, bodyIs(barrier)); err != nil {
		t.Fatalf("bob did not receive the barrier: %v", err)
	}
	sc.bobBodies = append(sc.bobBodies, barrier)
	if n := peerCount(sc.bobC, body); n != 1 {
		t.Errorf("bob received %q %d times, want once (the bridge echoed the carbon back)", body, n)
	}
}

func (sc *scenario) testDuplicate(t *testing.T) {
	sc.needBobRoom(t)
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("sent twice")
	stanzaID := fmt.Sprintf("dup-%d", time.Now().UnixNano())
	for range 2 {
		if err := sc.bobC.SendChat(ctx, sc.alice, stanzaID, stanzaID, body); err != nil {
			t.Fatal(err)
		}
	}
	barrier := uniq("barrier after duplicate")
	if err := sc.bobC.SendChat(ctx, sc.alice, "", "", barrier); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), barrier)); err != nil {
		t.Fatalf("barrier never appeared: %v", err)
	}
	sc.bobBodies = append(sc.bobBodies, body, barrier)
	if n := countBodies(t, sc.user, sc.bobRoom, body); n != 1 {
		t.Errorf("the same stanza delivered twice appears %d times in the portal, want once", n)
	}
	// What makes it so: the stanza's id is part of the stored message ID.
	if ids := sc.query(t, "SELECT id FROM message WHERE id LIKE ?", "%"+stanzaID); len(ids) != 1 {
		t.Errorf("message rows for stanza id %s in the %s database: %v, want one", stanzaID, sc.backend, ids)
	}
}
