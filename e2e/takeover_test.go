package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestLoginTakeover: a second Matrix user logs in with an XMPP account that the first one is
// logged in with, on real Prosody and Dendrite. The first user's login is deleted and the first
// user told (a LOGGED_OUT state notice in the management room); the account's login now
// belongs to the second user, whose portal gets the contact's message and whose reply reaches
// the contact.
func TestLoginTakeover(t *testing.T) {
	s := newStackOn(t, "prosody", "sqlite", testenv.ProsodyOptions{})
	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	bobC := s.peer(t, bob, bobPW, "laptop")
	first, second := s.matrixUser(t, "mxfirst"), s.matrixUser(t, "mxsecond")
	ctx, cancel := context.WithTimeout(context.Background(), 2*loginTimeout)
	defer cancel()
	firstMgmt := s.loginUser(ctx, t, first, alice, alicePW)
	cur := first.Cursor(firstMgmt)
	secondMgmt := s.loginUser(ctx, t, second, alice, alicePW)

	if _, _, err := first.WaitEvent(ctx, firstMgmt, cur, harness.StateNotice(alice.String(), "LOGGED_OUT")); err != nil {
		t.Errorf("the first user was not told that the login was taken over: %v", err)
	}
	if owners := s.query(t, "SELECT user_mxid FROM user_login WHERE id = ?", alice.String()); len(owners) != 1 || owners[0] != second.UserID().String() {
		t.Errorf("owners of the login: %q, want only %s", owners, second.UserID())
	}
	body := uniq("bob writes after the takeover")
	if err := bobC.SendChat(ctx, alice, "", "", body); err != nil {
		t.Fatal(err)
	}
	room, err := second.FindRoomWith(ctx, s.ghost(bob), secondMgmt)
	if err != nil {
		t.Fatalf("no portal with bob for the second user: %v", err)
	}
	if _, _, err := second.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(bob), body)); err != nil {
		t.Fatalf("bob's message never reached the second user's portal: %v", err)
	}
	reply := uniq("the second user answers")
	bobCur := bobC.Cursor()
	if _, err := second.Client.SendText(ctx, room, reply); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bobC.WaitMessage(ctx, bobCur, bodyIs(reply)); err != nil {
		t.Fatalf("bob did not get the second user's reply: %v", err)
	}
	if list, err := first.Command(ctx, firstMgmt, s.bot, "list-logins", nil); err != nil || strings.Contains(list, alice.String()) {
		t.Errorf("the first user's list-logins after the takeover: %q, %v", list, err)
	}
}
