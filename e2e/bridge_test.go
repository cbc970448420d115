package e2e

import (
	"context"
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
func TestBridge(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			runScenario(t, backend)
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

func runScenario(t *testing.T, backend string) {
	sc := &scenario{stack: newStack(t, backend)}
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

func (sc *scenario) restartBridge(t *testing.T, whileDown func()) {
	t.Helper()
	if err := sc.bridge.Stop(); err != nil {
		t.Fatalf("stopping the bridge: %v", err)
	}
	if whileDown != nil {
		whileDown()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sc.bridge.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func (sc *scenario) testRestart(t *testing.T) {
	sc.needBobRoom(t)
	mgmtCur := sc.user.Cursor(sc.mgmt)
	presCur := sc.phone.PresenceCursor()
	sc.restartBridge(t, nil)
	ctx, cancel := stepCtx()
	defer cancel()
	// The bridge reconnects by itself: the server announces its new session to alice's other
	// client. Only then is a message to alice's bare JID sure to reach the bridge (before that it
	// would go to the phone alone).
	if _, err := sc.phone.WaitPresence(ctx, presCur, func(p harness.ReceivedPresence) bool {
		from, err := jid.Parse(p.From)
		return err == nil && p.Type == "" && from.Bare().Equal(sc.alice) && !from.Equal(sc.phone.JID)
	}); err != nil {
		t.Fatalf("the bridge did not reconnect alice's account after the restart: %v", err)
	}
	// A message sent now must arrive without a new login.
	body := uniq("after restart")
	if err := sc.bobC.SendChat(ctx, sc.alice, "", "", body); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), body)); err != nil {
		t.Fatalf("%q did not reach bob's existing portal after the restart: %v", body, err)
	}
	sc.bobBodies = append(sc.bobBodies, body)
	// And the other way.
	reply := uniq("matrix after restart")
	cur := sc.bobC.Cursor()
	if _, err := sc.user.Client.SendText(ctx, sc.bobRoom, reply); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.bobC.WaitMessage(ctx, cur, bodyIs(reply)); err != nil {
		t.Fatalf("Matrix -> XMPP after the restart: %v", err)
	}
	sc.bobBodies = append(sc.bobBodies, reply)
	for _, evt := range sc.user.Timeline(sc.mgmt)[mgmtCur:] {
		if evt.Sender == sc.bot && strings.Contains(strings.ToLower(harness.Body(evt)), "log in again") {
			t.Errorf("after the restart the bot asked for a new login: %q", harness.Body(evt))
		}
	}
}

func (sc *scenario) testOfflineAfterRestart(t *testing.T) {
	sc.needBobRoom(t)
	// With alice's other client gone, a message sent while the bridge is down waits in the
	// server's offline storage and must come through once the bridge reconnects.
	sc.phone.Close()
	body := uniq("sent while the bridge was down")
	sc.restartBridge(t, func() {
		ctx, cancel := stepCtx()
		defer cancel()
		if err := sc.bobC.SendChat(ctx, sc.alice, "", "", body); err != nil {
			t.Fatal(err)
		}
	})
	ctx, cancel := stepCtx()
	defer cancel()
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), body)); err != nil {
		t.Fatalf("%q (sent while the bridge was stopped) never appeared: %v", body, err)
	}
	sc.bobBodies = append(sc.bobBodies, body)
}

// testArchiveCatchUp: while the bridge is down, alice's other client is online, so the server
// delivers bob's message to it (no offline storage) and alice's own answer goes out from it. Only
// the archive (XEP-0313) has them for the bridge when it comes back.
func (sc *scenario) testArchiveCatchUp(t *testing.T) {
	sc.needBobRoom(t)
	phone := sc.peer(t, sc.alice, sc.alicePW, "phone2")
	fromBob := uniq("to alice's phone while the bridge was down")
	fromPhone := uniq("alice answers from her phone while the bridge was down")
	sc.restartBridge(t, func() {
		ctx, cancel := stepCtx()
		defer cancel()
		cur := phone.Cursor()
		if err := sc.bobC.SendChat(ctx, sc.alice, "", "", fromBob); err != nil {
			t.Fatal(err)
		}
		if _, _, err := phone.WaitMessage(ctx, cur, bodyIs(fromBob)); err != nil {
			t.Fatalf("alice's phone did not get bob's message: %v", err)
		}
		if err := phone.SendChat(ctx, sc.bob, "", "", fromPhone); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sc.bobC.WaitMessage(ctx, 0, bodyIs(fromPhone)); err != nil {
			t.Fatalf("bob did not get alice's answer: %v", err)
		}
	})
	phone.Close()
	ctx, cancel := stepCtx()
	defer cancel()
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), fromBob)); err != nil {
		t.Errorf("bob's message from the bridge's downtime never appeared: %v", err)
	} else {
		sc.bobBodies = append(sc.bobBodies, fromBob)
	}
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.alice), fromPhone)); err != nil {
		t.Errorf("alice's own message from the bridge's downtime never appeared as hers: %v", err)
	} else {
		sc.bobBodies = append(sc.bobBodies, fromPhone)
	}
}

func (sc *scenario) testNothingTwice(t *testing.T) {
	sc.needBobRoom(t)
	if len(sc.bobBodies) == 0 {
		t.Fatal("no messages to check")
	}
	// A last barrier, after every restart, so that late duplicates would be in the room by now.
	ctx, cancel := stepCtx()
	defer cancel()
	barrier := uniq("final barrier")
	if err := sc.bobC.SendChat(ctx, sc.alice, "", "", barrier); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), barrier)); err != nil {
		t.Fatalf("barrier never appeared: %v", err)
	}
	msgs, err := sc.user.RoomMessages(ctx, sc.bobRoom)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, evt := range msgs {
		counts[harness.Body(evt)]++
	}
	var bad []string
	for _, b := range sc.bobBodies {
		if counts[b] != 1 {
			bad = append(bad, fmt.Sprintf("%q ×%d", b, counts[b]))
		}
	}
	if len(bad) > 0 {
		t.Errorf("messages in bob's portal not exactly once: %s", shortList(bad))
	}
	// Only one portal with bob.
	n := 0
	for _, room := range sc.user.JoinedRooms() {
		resp, err := sc.user.Client.JoinedMembers(ctx, room)
		if err == nil {
			if _, ok := resp.Joined[sc.ghost(sc.bob)]; ok {
				n++
			}
		}
	}
	if n != 1 {
		t.Errorf("the user is in %d rooms with bob's ghost, want 1", n)
	}
	// Bob got each Matrix message once.
	for _, b := range sc.bobBodies {
		if strings.HasPrefix(b, "reply from matrix") || strings.HasPrefix(b, "matrix after restart") || strings.HasPrefix(b, "barrier after carbon") {
			if c := peerCount(sc.bobC, b); c != 1 {
				t.Errorf("bob received %q %d times, want once", b, c)
			}
		}
	}
}

func (sc *scenario) testLoginErrors(t *testing.T) {
	// A separate Matrix user, so that a broken login cannot touch the working one.
	u := sc.matrixUser(t, "mxloginerrors")
	ctx, cancel := stepCtx()
	defer cancel()
	room, err := u.OpenManagementRoom(ctx, sc.bot)
	if err != nil {
		t.Fatal(err)
	}
	noTLS := testenv.StartProsody(t, testenv.ProsodyOptions{NoTLS: true})
	plain := jid.MustParse(noTLS.CreateAccount(t, "plain", "plain-secret"))
	good := harness.LoginInput{JID: sc.alice.String(), Password: sc.alicePW, Server: sc.prosody.Addr(), InsecureHost: "localhost"}
	cases := []struct {
		name string
		edit func(*harness.LoginInput)
		want string
	}{
		{"WrongPassword", func(in *harness.LoginInput) { in.Password = "definitely-not-" + sc.alicePW }, "Wrong password for " + sc.alice.String()},
		{"Unreachable", func(in *harness.LoginInput) { in.Server = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }, "Could not reach the XMPP server of localhost"},
		{"UntrustedCertificate", func(in *harness.LoginInput) { in.InsecureHost = "no" }, "certificate of the XMPP server of localhost is not trusted"},
		{"NoTLS", func(in *harness.LoginInput) {
			in.JID, in.Password, in.Server = plain.String(), "plain-secret", noTLS.Addr()
		}, "does not offer TLS"},
		{"BadJID", func(in *harness.LoginInput) { in.JID = "not a jid@@" }, "expected an address like alice@example.org"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := good
			tc.edit(&in)
			ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
			defer cancel()
			res, err := u.Login(ctx, room, sc.bot, in)
			got := res.Answer
			if err == nil {
				t.Fatalf("login succeeded: %q", got)
			}
			if got == "" {
				t.Fatal(err)
			}
			// An invalid value leaves the prompt open; end it for the next case.
			if strings.HasPrefix(got, "Invalid value") {
				if _, err := u.Command(ctx, room, sc.bot, "cancel", nil); err != nil {
					t.Fatal(err)
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("bot said %q, want it to contain %q", got, tc.want)
			}
			if strings.Contains(got, in.Password) {
				t.Errorf("the error repeats the password: %q", got)
			}
		})
	}
}

func (sc *scenario) testStartChat(t *testing.T) {
	sc.needLogin(t)
	ctx, cancel := stepCtx()
	defer cancel()
	got, err := sc.user.Command(ctx, sc.mgmt, sc.bot, "start-chat "+sc.dave.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "Created chat with") {
		t.Fatalf("start-chat answered %q", got)
	}
	room, err := sc.user.FindRoomWith(ctx, sc.ghost(sc.dave), sc.mgmt)
	if err != nil {
		t.Fatal(err)
	}
	body := uniq("hello dave, from matrix")
	cur := sc.daveC.Cursor()
	if _, err := sc.user.Client.SendText(ctx, room, body); err != nil {
		t.Fatal(err)
	}
	m, _, err := sc.daveC.WaitMessage(ctx, cur, bodyIs(body))
	if err != nil {
		t.Fatalf("dave did not receive the message: %v", err)
	}
	if from, err := jid.Parse(m.From); err != nil || !from.Bare().Equal(sc.alice) {
		t.Errorf("dave's message came from %q, want %s", m.From, sc.alice)
	}
	// And dave's answer lands in the same room.
	answer := uniq("dave answers")
	if err := sc.daveC.SendChat(ctx, sc.alice, "", "", answer); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, room, 0, harness.IsMessage(sc.ghost(sc.dave), answer)); err != nil {
		t.Fatalf("dave's answer did not reach the start-chat room: %v", err)
	}
}

func (sc *scenario) testContactList(t *testing.T) {
	sc.needLogin(t)
	ctx, cancel := stepCtx()
	defer cancel()
	contacts, err := harness.Contacts(ctx, sc.cfg, sc.user.UserID(), sc.alice.String())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var bob *harness.Contact
	for i, c := range contacts {
		ids = append(ids, c.ID)
		if c.ID == sc.bob.String() {
			bob = &contacts[i]
		}
	}
	if bob == nil {
		t.Fatalf("bob is not in the contact list %v", ids)
	}
	if bob.Name != bobRosterName+" (XMPP)" || bob.MXID != sc.ghost(sc.bob) {
		t.Errorf("bob's contact entry = %+v, want name %q and MXID %s", *bob, bobRosterName+" (XMPP)", sc.ghost(sc.bob))
	}
	if slices.Contains(ids, sc.carol.String()) {
		t.Errorf("carol is listed although she is not in the roster: %v", ids)
	}
	// The same lookup from the bot.
	got, err := sc.user.Command(ctx, sc.mgmt, sc.bot, "resolve-identifier "+sc.bob.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, bobRosterName) {
		t.Errorf("resolve-identifier answered %q, want bob's roster name", got)
	}
}

func (sc *scenario) testServerRestart(t *testing.T) {
	sc.needBobRoom(t)
	// The XMPP server goes away and comes back on the same port: every session drops, and the
	// bridge must reconnect with its backoff, by itself, and say so in the management room.
	mgmtCur := sc.user.Cursor(sc.mgmt)
	sc.prosody.Restart(t)
	sc.bobC = sc.peer(t, sc.bob, sc.bobPW, "laptop2")
	watcher := sc.peer(t, sc.alice, sc.alicePW, "watcher")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := watcher.WaitPresence(ctx, 0, func(p harness.ReceivedPresence) bool {
		from, err := jid.Parse(p.From)
		return err == nil && p.Type == "" && from.Bare().Equal(sc.alice) && !from.Equal(watcher.JID)
	}); err != nil {
		t.Fatalf("the bridge did not reconnect alice's account after the server restart: %v", err)
	}
	_, next, err := sc.user.WaitEvent(ctx, sc.mgmt, mgmtCur, harness.StateNotice(sc.alice.String(), "TRANSIENT_DISCONNECT"))
	if err != nil {
		t.Errorf("no TRANSIENT_DISCONNECT state notice for %s: %v", sc.alice, err)
	} else if _, _, err := sc.user.WaitEvent(ctx, sc.mgmt, next, harness.StateNotice(sc.alice.String(), "CONNECTED")); err != nil {
		t.Errorf("no CONNECTED state notice for %s after the disconnect: %v", sc.alice, err)
	}
	body := uniq("after the server restart")
	if err := sc.bobC.SendChat(ctx, sc.alice, "", "", body); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), body)); err != nil {
		t.Fatalf("%q did not reach bob's portal after the server restart: %v", body, err)
	}
	reply := uniq("matrix after the server restart")
	cur := sc.bobC.Cursor()
	if _, err := sc.user.Client.SendText(ctx, sc.bobRoom, reply); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.bobC.WaitMessage(ctx, cur, bodyIs(reply)); err != nil {
		t.Fatalf("Matrix -> XMPP after the server restart: %v", err)
	}
}

func (sc *scenario) testSecondLogin(t *testing.T) {
	sc.needBobRoom(t)
	erin, erinPW := sc.account(t, "erin")
	frank, frankPW := sc.account(t, "frank")
	frankC := sc.peer(t, frank, frankPW, "laptop")
	res, err := sc.login(t, sc.user, sc.mgmt, erin, erinPW)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Successfully logged in as " + erin.String(); !strings.Contains(res.Answer, want) {
		t.Fatalf("bot said %q, want %q", res.Answer, want)
	}
	ctx, cancel := stepCtx()
	defer cancel()
	list, err := sc.user.Command(ctx, sc.mgmt, sc.bot, "list-logins", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []jid.JID{sc.alice, erin} {
		if !strings.Contains(list, j.String()) {
			t.Errorf("list-logins = %q, missing %s", list, j)
		}
	}
	body := uniq("frank writes to erin")
	if err := frankC.SendChat(ctx, erin, "", "", body); err != nil {
		t.Fatal(err)
	}
	room := sc.waitGhostMessage(t, frank, body)
	reply := uniq("erin answers from matrix")
	cur := frankC.Cursor()
	if _, err := sc.user.Client.SendText(ctx, room, reply); err != nil {
		t.Fatal(err)
	}
	m, _, err := frankC.WaitMessage(ctx, cur, bodyIs(reply))
	if err != nil {
		t.Fatalf("frank did not receive the answer: %v", err)
	}
	if from, err := jid.Parse(m.From); err != nil || !from.Bare().Equal(erin) {
		t.Errorf("frank's answer came from %q, want %s", m.From, erin)
	}
	// The first login keeps working beside the second.
	more := uniq("bob again")
	if err := sc.bobC.SendChat(ctx, sc.alice, "", "", more); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), more)); err != nil {
		t.Fatalf("alice's login stopped bridging after erin's login: %v", err)
	}
}

func (sc *scenario) testBadCredentials(t *testing.T) {
	// Its own Matrix user and account, so that the other logins are untouched.
	u := sc.matrixUser(t, "mxgrace")
	grace, gracePW := sc.account(t, "grace")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	room, err := u.OpenManagementRoom(ctx, sc.bot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.login(t, u, room, grace, gracePW); err != nil {
		t.Fatal(err)
	}
	// The password changes on the server (registering the account again overwrites it) ...
	newPW := "changed-" + gracePW
	sc.prosody.CreateAccount(t, "grace", newPW)
	check := sc.peer(t, grace, newPW, "check")
	check.Close()
	// ... so the stored one no longer works when the bridge reconnects after a restart.
	cur := u.Cursor(room)
	sc.restartBridge(t, nil)
	evt, _, err := u.WaitEvent(ctx, room, cur, harness.StateNotice(grace.String(), "BAD_CREDENTIALS"))
	if err != nil {
		t.Fatalf("no BAD_CREDENTIALS state notice for %s: %v", grace, err)
	}
	if body := harness.Body(evt); !strings.Contains(body, "Wrong password") {
		t.Errorf("BAD_CREDENTIALS notice %q does not say the password is wrong", body)
	}
	// The other login is not affected.
	if sc.bobRoom != "" {
		body := uniq("bob after grace's bad credentials")
		if err := sc.bobC.SendChat(ctx, sc.alice, "", "", body); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), body)); err != nil {
			t.Fatalf("alice's login stopped bridging: %v", err)
		}
	}
}

// testDirectTLS logs in over XEP-0368 direct TLS (tls://host:port) instead of STARTTLS.
func (sc *scenario) testDirectTLS(t *testing.T) {
	addr := sc.prosody.DirectTLSAddr()
	if addr == "" {
		t.Fatal("the test Prosody has no direct TLS port")
	}
	u := sc.matrixUser(t, "mxdirecttls")
	heidi, heidiPW := sc.account(t, "heidi")
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	room, err := u.OpenManagementRoom(ctx, sc.bot)
	if err != nil {
		t.Fatal(err)
	}
	cur := u.Cursor(room)
	res, err := u.Login(ctx, room, sc.bot, harness.LoginInput{
		JID: heidi.String(), Password: heidiPW, Server: "tls://" + addr, InsecureHost: "localhost",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Answer, "Successfully logged in as "+heidi.String()) {
		t.Fatalf("bot said %q", res.Answer)
	}
	if _, _, err := u.WaitEvent(ctx, room, cur, harness.StateNotice(heidi.String(), "CONNECTED")); err != nil {
		t.Fatalf("no CONNECTED state notice for %s: %v", heidi, err)
	}
	body := uniq("to heidi over direct TLS")
	if err := sc.carolC.SendChat(ctx, heidi, "", "", body); err != nil {
		t.Fatal(err)
	}
	portal, err := u.FindRoomWith(ctx, sc.ghost(sc.carol), room)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.WaitEvent(ctx, portal, 0, harness.IsMessage(sc.ghost(sc.carol), body)); err != nil {
		t.Fatalf("%q did not reach heidi's portal: %v", body, err)
	}
	sc.heidi, sc.heidiUser, sc.heidiMgmt = heidi, u, room
}

// testRosterNameAcrossLogins: ghosts are shared by all logins, and bob is named only in alice's
// roster. A message from bob to another login (heidi, who has no roster entry for him) must not
// reset his ghost to the bare localpart.
func (sc *scenario) testRosterNameAcrossLogins(t *testing.T) {
	sc.needBobRoom(t)
	if sc.heidiUser == nil {
		t.Fatal("needs heidi's login from LoginDirectTLS, which failed")
	}
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("bob writes to heidi")
	if err := sc.bobC.SendChat(ctx, sc.heidi, "", "", body); err != nil {
		t.Fatal(err)
	}
	portal, err := sc.heidiUser.FindRoomWith(ctx, sc.ghost(sc.bob), sc.heidiMgmt)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.heidiUser.WaitEvent(ctx, portal, 0, harness.IsMessage(sc.ghost(sc.bob), body)); err != nil {
		t.Fatalf("%q did not reach heidi's portal: %v", body, err)
	}
	want := bobRosterName + " (XMPP)"
	resp, err := sc.user.Client.GetDisplayName(ctx, sc.ghost(sc.bob))
	if err != nil {
		t.Fatal(err)
	}
	if resp.DisplayName != want {
		t.Errorf("after bob wrote to heidi, his ghost is named %q, want alice's roster name %q", resp.DisplayName, want)
	}
}
