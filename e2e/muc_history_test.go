package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestMUCHistory: messages sent in a group chat before the bridge joins it (a plaintext message,
// a correction of it, an OMEMO message not encrypted for the bridge's device) appear once each in
// the new portal, in the room's order, at their original times and from the sender's ghost,
// before the live messages that follow; a restart (rejoin, catch-up from the room's watermark)
// adds nothing. Prosody and ejabberd, both archiving rooms (XEP-0313 on the room JID).
func TestMUCHistory(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runMUCHistory(t, server)
		})
	}
}

func runMUCHistory(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{})
	alice, alicePW := s.account(t, "halice")
	bob, bobPW := s.account(t, "hbob")
	u := s.matrixUser(t, "mxhistory")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bobC := s.peer(t, bob, bobPW, "laptop")
	room := jid.MustParse("history@" + s.xmpp.MUCDomain())
	createRoom(t, bobC, room, "bob", map[string]string{"muc#roomconfig_whois": "anyone"})

	run := fmt.Sprintf("h%d", time.Now().UnixNano()%1e6)
	say := func(id, body string, extra string) {
		t.Helper()
		if err := bobC.SendRaw(ctx, fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id=%q><body>%s</body>%s</message>`,
			room.String(), id, body, extra)); err != nil {
			t.Fatal(err)
		}
	}
	old := []string{run + " before 1", run + " before 2 (typo)", run + " before 3"}
	say(run+"-1", old[0], "")
	say(run+"-2", old[1], "")
	corrected := run + " before 2 (corrected)"
	say(run+"-2c", corrected, fmt.Sprintf(`<replace xmlns="urn:xmpp:message-correct:0" id=%q/>`, run+"-2"))
	say(run+"-3", old[2], "")
	omemoFallback := run + " I sent you an OMEMO encrypted message"
	if err := bobC.SendRaw(ctx, fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id=%q>`+
		`<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="12345"><key rid="1">AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header>`+
		`<payload>AAAA</payload></encrypted><body>%s</body><store xmlns="urn:xmpp:hints"/></message>`,
		room.String(), run+"-omemo", omemoFallback)); err != nil {
		t.Fatal(err)
	}
	// The room has them all (its reflection of the last one to bob) before the bridge joins.
	if _, _, err := bobC.WaitMessage(ctx, 0, bodyIs(omemoFallback)); err != nil {
		t.Fatalf("the room never reflected bob's last message: %v", err)
	}
	before := time.Now()
	time.Sleep(1100 * time.Millisecond) // the history's times are visibly earlier than the join's

	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	if answer, err := u.Command(ctx, mgmt, s.bot, "join "+room.String(), nil); err != nil {
		t.Fatal(err)
	} else if want := "Joined " + room.String(); len(answer) < len(want) || answer[:len(want)] != want {
		t.Fatalf("the bot said %q to the join", answer)
	}
	live := run + " live after the join"
	say(run+"-live", live, "")
	portal := waitRoomWith(ctx, t, u, s.ghost(bob), live, mgmt)

	// The history goes through the room's catch-up path: the correction is an edit of its message.
	wantOrder := []string{old[0], old[1], old[2], "omemo", live}
	check := func(label string) {
		t.Helper()
		deadline := time.Now().Add(stepTimeout)
		for {
			msgs := roomEvents(ctx, t, u, portal)
			var got []string
			var times []time.Time
			counts := map[string]int{}
			typoEvent := id.EventID("")
			var edits []*event.Event
			for _, evt := range msgs {
				if evt.Sender != s.ghost(bob) {
					continue
				}
				msg := evt.Content.AsMessage()
				body := msg.Body
				switch {
				case msg.RelatesTo.GetReplaceID() != "":
					edits = append(edits, evt)
					continue
				case body == omemoFallback:
					t.Errorf("%s: the OMEMO fallback body reached the portal", label)
				case msg.MsgType == event.MsgNotice && strings.Contains(body, "OMEMO"):
					body = "omemo"
				case !strings.HasPrefix(body, run):
					continue
				}
				if body == old[1] {
					typoEvent = evt.ID
				}
				if counts[body]++; counts[body] == 1 {
					got = append(got, body)
					times = append(times, time.UnixMilli(evt.Timestamp))
				}
			}
			for b, n := range counts {
				if n > 1 {
					t.Fatalf("%s: %q is %d times in the portal", label, b, n)
				}
			}
			if fmt.Sprint(got) == fmt.Sprint(wantOrder) && len(edits) > 0 {
				if len(edits) != 1 || edits[0].Content.AsMessage().RelatesTo.GetReplaceID() != typoEvent ||
					edits[0].Content.AsMessage().NewContent == nil || edits[0].Content.AsMessage().NewContent.Body != corrected {
					t.Errorf("%s: %d edits in the portal, want one of %s to %q", label, len(edits), typoEvent, corrected)
				}
				for i := range 4 {
					if !times[i].Before(before) {
						t.Errorf("%s: %q shows at %s, after the join (%s): not its original time", label, got[i], times[i], before)
					}
				}
				t.Logf("%s: the portal has the 4 history messages and the correction once each, in order, then the live one", label)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the portal has %q and %d edits, want %q and one edit", label, got, len(edits), wantOrder)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	check("after the join")
	if n := countBodies(t, u, portal, corrected); n != 0 {
		t.Errorf("the correction %q is a message of its own in the portal (%d times)", corrected, n)
	}

	if err := s.bridge.Stop(); err != nil {
		t.Fatal(err)
	}
	restartBridge(ctx, t, s, "a stop")
	after := run + " live after the restart"
	say(run+"-live2", after, "")
	if _, _, err := u.WaitEvent(ctx, portal, 0, harness.IsMessage(s.ghost(bob), after)); err != nil {
		// The sync may have missed it; the count below reads the room.
		t.Logf("%q not seen in the sync: %v", after, err)
	}
	wantOrder = append(wantOrder, after)
	check("after a restart")
}
