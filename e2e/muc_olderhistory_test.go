package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestOlderRoomHistory: a group chat joined through the bridge gets the room's newest
// backfill.max_initial_messages (3) messages from the room's archive; `history 3` in the portal
// then shows the 3 before them as one notice from the bot, oldest first with their nicks, and
// again the 3 before those, and at last says there is nothing older. None of them becomes a portal
// message. Prosody and ejabberd, both archiving rooms (XEP-0313 on the room JID).
func TestOlderRoomHistory(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runOlderRoomHistory(t, server)
		})
	}
}

func runOlderRoomHistory(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{}, func(c *harness.BridgeConfig) {
		c.Set = map[string]any{"backfill.max_initial_messages": 3}
	})
	alice, alicePW := s.account(t, "ralice")
	bob, bobPW := s.account(t, "rbob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bobC := s.peer(t, bob, bobPW, "laptop")
	room := jid.MustParse("older@" + s.xmpp.MUCDomain())
	createRoom(t, bobC, room, "bob", map[string]string{"muc#roomconfig_whois": "anyone"})
	run := fmt.Sprintf("r%d", time.Now().UnixNano()%1e6)
	var bodies []string
	for i := range 9 {
		body := fmt.Sprintf("%s room old %d", run, i)
		bodies = append(bodies, body)
		cur := bobC.Cursor()
		sendGroupchat(t, ctx, bobC, room, body)
		// The room's reflection: archived in this order.
		if _, _, err := bobC.WaitMessage(ctx, cur, bodyIs(body)); err != nil {
			t.Fatalf("the room never reflected %q: %v", body, err)
		}
	}
	u := s.matrixUser(t, "mxroomolder")
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	if answer, err := u.Command(ctx, mgmt, s.bot, "join "+room.String(), nil); err != nil {
		t.Fatal(err)
	} else if !strings.HasPrefix(answer, "Joined "+room.String()) {
		t.Fatalf("the bot said %q to the join", answer)
	}
	portal := waitRoomWith(ctx, t, u, s.ghost(bob), bodies[8], mgmt)
	for i, b := range bodies {
		want := 0
		if i >= 6 {
			want = 1
		}
		if n := countBodies(t, u, portal, b); n != want {
			t.Errorf("%q is %d times in the portal after the join, want %d", b, n, want)
		}
	}

	ask := func(label string) string {
		t.Helper()
		answer, err := u.Command(ctx, portal, s.bot, "!xmpp history 3", func(a string) bool {
			return strings.Contains(a, "from the room's archive") || strings.HasPrefix(a, "No older messages")
		})
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		t.Logf("%s: %s", label, answer)
		return answer
	}
	expect := func(answer string, idx ...int) {
		t.Helper()
		last := -1
		for _, i := range idx {
			line := "bob: " + bodies[i] + "\n"
			at := strings.Index(answer, line)
			if at < 0 {
				t.Errorf("the transcript lacks %q", line)
				continue
			}
			if at < last {
				t.Errorf("%q is out of order", line)
			}
			last = at
		}
		for i, b := range bodies {
			if !containsInt(idx, i) && strings.Contains(answer, b+"\n") {
				t.Errorf("the transcript has %q, which is not in this page", b)
			}
		}
	}
	expect(ask("first page"), 3, 4, 5)
	expect(ask("second page"), 0, 1, 2)
	if a := ask("third page"); !strings.HasPrefix(a, "No older messages") {
		t.Errorf("after the archive's beginning: %q", a)
	}
	for i := range 6 {
		if n := countBodies(t, u, portal, bodies[i]); n != 0 {
			t.Errorf("%q became a portal message (%d)", bodies[i], n)
		}
	}
}
