package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestOlderHistory: a new 1:1 portal gets the newest backfill.max_initial_messages (3) messages;
// `history 3` in it then shows the next older 3 from the user's archive as one notice from the
// bot, oldest first with their senders, and again the 3 before those, and at last says the
// archive's beginning is reached. bridgev2's own backward backfill needs batch sending, which
// Dendrite (and Synapse) lack. Prosody and ejabberd.
func TestOlderHistory(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runOlderHistory(t, server)
		})
	}
}

func runOlderHistory(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{}, func(c *harness.BridgeConfig) {
		c.Set = map[string]any{"backfill.max_initial_messages": 3}
	})
	alice, alicePW := s.account(t, "oalice")
	bob, bobPW := s.account(t, "obob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	phone := s.peer(t, alice, alicePW, "phone")
	bobC := s.peer(t, bob, bobPW, "laptop")
	run := fmt.Sprintf("o%d", time.Now().UnixNano()%1e6)
	// 9 messages before the login, alternating sides: 0 2 4 6 8 from bob, 1 3 5 7 from alice's phone.
	var bodies []string
	for i := range 9 {
		body := fmt.Sprintf("%s old %d", run, i)
		bodies = append(bodies, body)
		from, to, rcv := bobC, alice, phone
		if i%2 == 1 {
			from, to, rcv = phone, bob, bobC
		}
		cur := rcv.Cursor()
		if err := from.SendChat(ctx, to, "", "", body); err != nil {
			t.Fatal(err)
		}
		if _, _, err := rcv.WaitMessage(ctx, cur, bodyIs(body)); err != nil {
			t.Fatalf("%q not delivered: %v", body, err)
		}
	}
	// Older than the login's first archive catch-up, which takes what came from a second before
	// the login on (bridge/mam.go): these are history only.
	time.Sleep(2500 * time.Millisecond)
	u := s.matrixUser(t, "mxolder")
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	if answer, err := u.Command(ctx, mgmt, s.bot, "start-chat "+bob.String(), nil); err != nil || !strings.HasPrefix(answer, "Created chat with") {
		t.Fatalf("start-chat: %q %v", answer, err)
	}
	room, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt)
	if err != nil {
		t.Fatal(err)
	}
	// The first batch: the newest three.
	wctx, wcancel := context.WithTimeout(ctx, stepTimeout)
	defer wcancel()
	if _, _, err := u.WaitEvent(wctx, room, 0, harness.IsMessage("", bodies[8])); err != nil {
		t.Fatalf("the first batch never arrived: %v", err)
	}
	for i, b := range bodies {
		want := 0
		if i >= 6 {
			want = 1
		}
		if n := countBodies(t, u, room, b); n != want {
			t.Errorf("%q is %d times in the portal after the first batch, want %d", b, n, want)
		}
	}

	ask := func(label string) string {
		t.Helper()
		answer, err := u.Command(ctx, room, s.bot, "!xmpp history 3", func(a string) bool {
			return strings.Contains(a, "from your XMPP archive") || strings.HasPrefix(a, "No older messages")
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
			who := bob.String()
			if i%2 == 1 {
				who = "you"
			}
			line := who + ": " + bodies[i]
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
	a := ask("first page")
	expect(a, 3, 4, 5)
	a = ask("second page")
	expect(a, 0, 1, 2)
	a = ask("third page")
	if !strings.HasPrefix(a, "No older messages") {
		t.Errorf("after the archive's beginning: %q", a)
	}
	// Nothing was bridged as messages.
	for i := range 6 {
		if n := countBodies(t, u, room, bodies[i]); n != 0 {
			t.Errorf("%q became a portal message (%d)", bodies[i], n)
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
