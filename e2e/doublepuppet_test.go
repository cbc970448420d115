package e2e

import (
	"context"
	"slices"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// TestDoublePuppet: with double puppeting configured (the appservice's own token as the secret
// for the local server), a message the user sent from another XMPP client arrives through carbons
// as sent by the real Matrix user, and that Matrix event is not bridged back to XMPP.
func TestDoublePuppet(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testDoublePuppet(t, backend)
		})
	}
}

func testDoublePuppet(t *testing.T, backend string) {
	s := newStack(t, backend, func(c *harness.BridgeConfig) { c.DoublePuppet = true })
	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	phone := s.peer(t, alice, alicePW, "phone")
	bobC := s.peer(t, bob, bobPW, "laptop")
	u := s.matrixUser(t, "mxdp")
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	// The portal comes from bob's first message.
	hello := uniq("hello alice")
	if err := bobC.SendChat(ctx, alice, "", "", hello); err != nil {
		t.Fatal(err)
	}
	room, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(bob), hello)); err != nil {
		t.Fatal(err)
	}
	// A DM portal is a direct chat in the user's own account data (bridgev2 writes m.direct
	// through the double puppet, matrix.sync_direct_chat_list).
	var direct map[id.UserID][]id.RoomID
	if err := u.Client.GetAccountData(ctx, event.AccountDataDirectChats.Type, &direct); err != nil {
		t.Fatalf("no m.direct account data: %v", err)
	}
	if !slices.Contains(direct[s.ghost(bob)], room) {
		t.Errorf("m.direct = %v, want %s under %s", direct, room, s.ghost(bob))
	}

	body := uniq("from alice's phone, double puppeted")
	bobCur := bobC.Cursor()
	if err := phone.SendChat(ctx, bob, "", "", body); err != nil {
		t.Fatal(err)
	}
	evt, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage("", body))
	if err != nil {
		t.Fatalf("the carbon never appeared: %v", err)
	}
	if evt.Sender != u.UserID() {
		t.Fatalf("the carbon was sent by %s, want the real Matrix user %s (double puppet)", evt.Sender, u.UserID())
	}
	// Not echoed back: a later Matrix message is a barrier.
	barrier := uniq("barrier after the double-puppeted carbon")
	if _, err := u.Client.SendText(ctx, room, barrier); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bobC.WaitMessage(ctx, bobCur, bodyIs(barrier)); err != nil {
		t.Fatalf("bob did not receive the barrier: %v", err)
	}
	if n := peerCount(bobC, body); n != 1 {
		t.Errorf("bob received %q %d times, want once: the double-puppeted event was bridged back", body, n)
	}
	if n := countBodies(t, u, room, body); n != 1 {
		t.Errorf("%q is %d times in the portal, want once", body, n)
	}
}
