package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

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
	msgs := roomEvents(ctx, t, sc.user, sc.bobRoom)
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

func (sc *scenario) testServerRestart(t *testing.T) {
	sc.needBobRoom(t)
	// The XMPP server goes away and comes back on the same port: every session drops, and the
	// bridge must reconnect with its backoff, by itself, and say so in the management room.
	mgmtCur := sc.user.Cursor(sc.mgmt)
	sc.xmpp.Restart(t)
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
	sc.setPassword(t, "grace", newPW)
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
