package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestRoomJoinDuringRejoin: a `join` answered while the rejoin after the login's connect has not
// yet read the saved rooms (the bridge's test hook holds it there) is the room's only join on the
// session. The portal gets the room's newest backfill.max_initial_messages (3) messages and then
// the live ones, each once; none of the older ones. (The rejoin used to join the room a second
// time, and that join's catch-up, from the first join's time, brought the messages sent in the
// seconds before the join beside the history: CI saw all 9 on ejabberd.) Prosody and ejabberd.
func TestRoomJoinDuringRejoin(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) { runRoomJoinDuringRejoin(t, server) })
	}
}

func runRoomJoinDuringRejoin(t *testing.T, server string) {
	// Relative to the bridge's working directory (its Dir); read by bridge/testhold.go.
	const hold = "hold-rejoin"
	t.Setenv("MXOMEMO_TEST_HOLD_REJOIN", hold)
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{}, func(c *harness.BridgeConfig) {
		c.Set = map[string]any{"backfill.max_initial_messages": 3}
	})
	alice, alicePW := s.account(t, "jalice")
	bob, bobPW := s.account(t, "jbob")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bobC := s.peer(t, bob, bobPW, "laptop")
	room := jid.MustParse("racing@" + s.xmpp.MUCDomain())
	createRoom(t, bobC, room, "bob", map[string]string{"muc#roomconfig_whois": "anyone"})

	holdPath := filepath.Join(s.bridge.Config.Dir, hold)
	if err := os.WriteFile(holdPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(holdPath)
	u := s.matrixUser(t, "mxjoinrace")
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	waitUntil(t, stepTimeout, "the rejoin after the connect to reach its hold", func() bool {
		_, err := os.Stat(holdPath + ".held")
		return err == nil
	})
	// Sent just before the join: within the second that a rejoin's catch-up, from the first
	// join's time less the margin for the archive's second-precision times, would ask for.
	run := fmt.Sprintf("j%d", time.Now().UnixNano()%1e6)
	var bodies []string
	for i := range 9 {
		body := fmt.Sprintf("%s room old %d", run, i)
		bodies = append(bodies, body)
		cur := bobC.Cursor()
		sendGroupchat(t, ctx, bobC, room, body)
		if _, _, err := bobC.WaitMessage(ctx, cur, bodyIs(body)); err != nil {
			t.Fatalf("the room never reflected %q: %v", body, err)
		}
	}
	if answer, err := u.Command(ctx, mgmt, s.bot, "join "+room.String(), nil); err != nil {
		t.Fatal(err)
	} else if !strings.HasPrefix(answer, "Joined "+room.String()) {
		t.Fatalf("the bot said %q to the join", answer)
	}
	// The rejoin now reads the saved rooms, the joined one among them, while the room's history
	// is still on its way to the new portal (no watermark yet).
	logged := strings.Count(s.bridge.Log(), "Rejoin of the saved group chats over")
	if err := os.Remove(holdPath); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, stepTimeout, "the rejoin to end", func() bool {
		return strings.Count(s.bridge.Log(), "Rejoin of the saved group chats over") > logged
	})
	portal := waitRoomWith(ctx, t, u, s.ghost(bob), bodies[8], mgmt)
	// A catch-up of a second join would be ahead of this live message in the room's order.
	live := run + " live after the rejoin"
	sendGroupchat(t, ctx, bobC, room, live)
	wctx, wcancel := stepCtx()
	defer wcancel()
	if _, _, err := u.WaitEvent(wctx, portal, 0, harness.IsMessage(s.ghost(bob), live)); err != nil {
		t.Logf("%q not seen in the sync: %v", live, err)
	}
	time.Sleep(2 * time.Second) // a late duplicate would show now
	for i, b := range append(bodies, live) {
		want := 0
		if i >= 6 {
			want = 1
		}
		if n := countBodies(t, u, portal, b); n != want {
			t.Errorf("%q is %d times in the portal, want %d", b, n, want)
		}
	}
}
