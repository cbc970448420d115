package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mellium.im/xmpp/ping"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestFirstLoginWindow: a message that reaches the server after a new login's XMPP session is
// bound but before its initial presence goes to no client of the bridge (the user's phone is
// online, so the server keeps no offline copy, and a resource without presence gets no carbon).
// The bridge's test hook holds the new login's session before its presence; the contact sends
// then, and only then (so no later live message opens the portal with a backfill). Every one
// of those messages reaches the portal exactly once, in order: the first catch-up of a new login
// asks the archive for everything since the login began.
func TestFirstLoginWindow(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) { runFirstLoginWindow(t, server) })
	}
}

func runFirstLoginWindow(t *testing.T, server string) {
	// Relative to the bridge's working directory (its Dir); read by bridge/testhold.go.
	const hold = "hold-presence"
	t.Setenv("MXOMEMO_TEST_HOLD_PRESENCE", hold)
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{})
	alice, alicePW := s.account(t, "falice")
	bob, bobPW := s.account(t, "fbob")
	u := s.matrixUser(t, "mxfirst")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// The user's other client: while it is available, the server routes the contact's
	// messages to it and stores nothing offline for the bridge's resource.
	s.peer(t, alice, alicePW, "phone")
	bobC := s.peer(t, bob, bobPW, "laptop")
	mgmt, err := u.OpenManagementRoom(ctx, s.bot)
	if err != nil {
		t.Fatal(err)
	}
	cur := u.Cursor(mgmt)

	holdPath := filepath.Join(s.bridge.Config.Dir, hold)
	if err := os.WriteFile(holdPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(holdPath)
	loginErr := make(chan error, 1)
	go func() {
		_, err := s.login(t, u, mgmt, alice, alicePW)
		loginErr <- err
	}()
	// The session is bound and held before its presence once the bridge says so.
	for {
		if _, err := os.Stat(holdPath + ".held"); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the bridge never reached the hold before its presence")
		case <-time.After(100 * time.Millisecond):
		}
	}
	const n = 10
	run := fmt.Sprintf("f%d", time.Now().UnixNano()%1e6)
	for i := range n {
		body := fmt.Sprintf("%s bob %05d", run, i)
		if err := bobC.SendChat(ctx, alice, msgID(body), "", body); err != nil {
			t.Fatal(err)
		}
	}
	// A ping's answer means the server has routed (and archived) the messages before it.
	if err := ping.Send(ctx, bobC.Session, bob.Domain()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(holdPath); err != nil {
		t.Fatal(err)
	}
	if err := <-loginErr; err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.WaitEvent(ctx, mgmt, cur, harness.StateNotice(alice.String(), "CONNECTED")); err != nil {
		t.Fatalf("no CONNECTED state notice: %v", err)
	}

	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	room, err := findRoomOnServer(wctx, u, s.ghost(bob))
	wcancel()
	if err != nil {
		t.Fatalf("the messages sent before the login's presence opened no portal: %v", err)
	}
	var got streamCounts
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got = countSeq(matrixNumbers(ctx, t, u, room, 0, s.ghost(bob), run+" bob "), n)
		if got.lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(3 * time.Second) // a late duplicate would show now
	got = countSeq(matrixNumbers(ctx, t, u, room, 0, s.ghost(bob), run+" bob "), n)
	t.Logf("sent between the bind and the presence, on Matrix: %s", got)
	if !got.clean() {
		t.Errorf("not exactly once in order: %s", got)
	}
}
