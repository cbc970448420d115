package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestRoomKillBeforeFirstMessage: the bridge is SIGKILLed right after the join command answered,
// before anything of the room was stored (so the room has no watermark yet), and an occupant
// writes while it is down. After the restart every one of those messages reaches the portal
// once, in order: from the room's archive since the first join, or, in a room without an
// archive, from its discussion history since then (docs/delivery.md). With room history backfill
// off, a message posted before the first join is not bridged; with it on (archive only), that
// message comes once, as history, before the others. On Prosody and ejabberd.
func TestRoomKillBeforeFirstMessage(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		for _, v := range []struct {
			name              string
			archive, backfill bool
		}{{"archive", true, false}, {"no-archive", false, false}, {"archive+history", true, true}} {
			t.Run(server+"/"+v.name, func(t *testing.T) { runRoomKillBeforeFirstMessage(t, server, v.archive, v.backfill) })
		}
	}
}

func runRoomKillBeforeFirstMessage(t *testing.T, server string, archive, backfill bool) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{MUCArchivePerRoom: !archive}, func(c *harness.BridgeConfig) {
		c.Set = map[string]any{"backfill.enabled": backfill}
	})
	alice, alicePW := s.account(t, "falice")
	bob, bobPW := s.account(t, "fbob")
	u := s.matrixUser(t, "mxfirstjoin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bobC := s.peer(t, bob, bobPW, "laptop")
	room := jid.MustParse("firstjoin@" + s.xmpp.MUCDomain())
	config := map[string]string{"muc#roomconfig_whois": "anyone"}
	switch {
	case !archive && server == "ejabberd":
		config["mam"] = "0"
	case !archive:
		config["muc#roomconfig_enablearchiving"] = "0"
	}
	createRoom(t, bobC, room, "bob", config)
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	run := fmt.Sprintf("f%d", time.Now().UnixNano()%1e6)
	before := run + " before the join"
	sendGroupchat(t, ctx, bobC, room, before)
	// The bridge's bound is the first join less a second (the servers' times are in seconds).
	time.Sleep(2500 * time.Millisecond)
	if answer, err := u.Command(ctx, mgmt, s.bot, "join "+room.String(), nil); err != nil {
		t.Fatal(err)
	} else if want := "Joined " + room.String(); !strings.HasPrefix(answer, want) {
		t.Fatalf("the bot said %q to the join", answer)
	}
	s.bridge.Kill()

	const n = 6
	for i := range n {
		body := fmt.Sprintf("%s bob %05d", run, i)
		if err := bobC.SendRaw(ctx, fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id=%q><body>%s</body></message>`,
			room.String(), msgID(body), body)); err != nil {
			t.Fatal(err)
		}
	}
	restartBridge(ctx, t, s, "SIGKILL")
	last := fmt.Sprintf("%s bob %05d", run, n-1)
	portal := waitRoomWith(ctx, t, u, s.ghost(bob), last, mgmt)

	var got streamCounts
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		got = countSeq(matrixNumbers(ctx, t, u, portal, 0, s.ghost(bob), run+" bob "), n)
		if got.lost == 0 || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(3 * time.Second) // a late duplicate would show now
	got = countSeq(matrixNumbers(ctx, t, u, portal, 0, s.ghost(bob), run+" bob "), n)
	t.Logf("killed before the room's first stored message (archive %v): XMPP -> Matrix: %s", archive, got)
	if !got.clean() {
		t.Errorf("messages posted while the bridge was down after its first join: not exactly once in order: %s", got)
	}
	msgs := roomEvents(ctx, t, u, portal)
	first := slices.IndexFunc(msgs, harness.IsMessage(s.ghost(bob), run+" bob "))
	var pre []int
	for i, evt := range msgs {
		if harness.IsMessage(s.ghost(bob), before)(evt) {
			pre = append(pre, i)
		}
	}
	switch {
	case !backfill && len(pre) > 0:
		t.Errorf("%q, posted before the first join, was bridged with history backfill off", before)
	case backfill && len(pre) != 1:
		t.Errorf("%q, posted before the first join, is in the portal %d times, want once (as history)", before, len(pre))
	case backfill && pre[0] > first:
		t.Errorf("%q (history) came after the messages posted since the join", before)
	}
}
