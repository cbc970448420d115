package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestRoomKillNoArchive: a group chat whose room keeps no archive (MUC without MAM) has no
// catch-up; on a rejoin the bridge asks it for its discussion history since the newest message
// stored in the portal (docs/delivery.md). Three times, the bridge is SIGKILLed while an
// occupant and the Matrix user write, both go on writing while it is down, and the bridge comes
// back; each round ends when the bridge has caught up, so that what it has not bridged at a kill
// stays within the room's history length (20 by default, our own messages included): every
// message of both sides must arrive once, in order. Messages of the room's history that were
// already bridged (and the one in flight at the kill) are recognised by their ids.
func TestRoomKillNoArchive(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) { runRoomKillNoArchive(t, server) })
	}
}

func runRoomKillNoArchive(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{MUCArchivePerRoom: true})
	alice, alicePW := s.account(t, "nalice")
	bob, bobPW := s.account(t, "nbob")
	u := s.matrixUser(t, "mxnoarchive")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bobC := s.peer(t, bob, bobPW, "laptop")
	room := jid.MustParse("noarchive@" + s.xmpp.MUCDomain())
	config := map[string]string{"muc#roomconfig_whois": "anyone", "muc#roomconfig_enablearchiving": "0"}
	if server == "ejabberd" {
		config = map[string]string{"muc#roomconfig_whois": "anyone", "mam": "0"}
	}
	createRoom(t, bobC, room, "bob", config)
	info, err := disco.GetInfo(ctx, "", room, bobC.Session)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range info.Features {
		if f.Var == "urn:xmpp:mam:2" {
			t.Fatalf("%s keeps an archive; the test needs a room without one", room)
		}
	}
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	if answer, err := u.Command(ctx, mgmt, s.bot, "join "+room.String(), nil); err != nil {
		t.Fatal(err)
	} else if want := "Joined " + room.String(); !strings.HasPrefix(answer, want) {
		t.Fatalf("the bot said %q to the join", answer)
	}
	warm := uniq("no-archive warm-up")
	sendGroupchat(t, ctx, bobC, room, warm)
	portal := waitRoomWith(ctx, t, u, s.ghost(bob), warm, mgmt)
	tl := u.Cursor(portal)
	peerFrom := len(bobC.Received())

	// Each round: both send 6 messages 100 ms apart, the bridge is killed after bob's 3rd,
	// both send 3 more while it is down, and it starts again; the round ends when the bridge
	// is back in the room (bob sees its presence) and both sides have everything so far.
	const rounds, live, down = 3, 6, 3
	n := rounds * (live + down)
	run := fmt.Sprintf("n%d", time.Now().UnixNano()%1e6)
	bobN, mxN := 0, 0
	sendBob := func() {
		body := fmt.Sprintf("%s bob %05d", run, bobN)
		bobN++
		if err := bobC.SendRaw(ctx, fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id=%q><body>%s</body></message>`,
			room.String(), msgID(body), body)); err != nil {
			t.Error(err)
		}
	}
	sendMX := func() {
		if _, err := u.Client.SendText(ctx, portal, fmt.Sprintf("%s mx %05d", run, mxN)); err != nil {
			t.Error(err)
		}
		mxN++
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for range rounds {
		var wg sync.WaitGroup
		wg.Go(func() {
			for range live {
				sendMX()
				time.Sleep(100 * time.Millisecond)
			}
		})
		for i := range live {
			sendBob()
			if i == live/2-1 {
				// Let the bridge be handling it, or not yet, at random.
				time.Sleep(time.Duration(r.Int64N(int64(60 * time.Millisecond))))
				s.bridge.Kill()
			}
			time.Sleep(100 * time.Millisecond)
		}
		wg.Wait()
		for range down {
			sendBob()
			sendMX()
		}
		cur := bobC.PresenceCursor()
		restartBridge(ctx, t, s, "SIGKILL")
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err := bobC.WaitPresence(wctx, cur, func(p harness.ReceivedPresence) bool {
			return strings.HasPrefix(p.From, room.String()+"/") && p.From != room.String()+"/bob" && p.Type == ""
		})
		wcancel()
		if err != nil {
			t.Fatalf("the bridge did not rejoin %s: %v", room, err)
		}
		for caughtUp := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
			x := countSeq(matrixNumbers(ctx, t, u, portal, tl, s.ghost(bob), run+" bob "), bobN)
			seq, _ := peerNumbersByID(bobC, peerFrom, run+" mx ")
			m := countSeq(seq, mxN)
			if x.lost == 0 && m.lost == 0 {
				break
			}
			if time.Now().After(caughtUp) {
				t.Logf("the bridge did not catch up in 2 minutes: XMPP -> Matrix: %s; Matrix -> XMPP: %s", x, m)
				break
			}
		}
	}
	if err := ping.Send(ctx, bobC.Session, bob.Domain()); err != nil {
		t.Fatal(err)
	}

	var x2m, m2x streamCounts
	deadline := time.Now().Add(3 * time.Minute)
	for {
		x2m = countSeq(matrixNumbers(ctx, t, u, portal, tl, s.ghost(bob), run+" bob "), n)
		seq, _ := peerNumbersByID(bobC, peerFrom, run+" mx ")
		m2x = countSeq(seq, n)
		if (x2m.lost == 0 && m2x.lost == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(3 * time.Second) // a late duplicate would show now
	x2m = countSeq(matrixNumbers(ctx, t, u, portal, tl, s.ghost(bob), run+" bob "), n)
	seq, sameID := peerNumbersByID(bobC, peerFrom, run+" mx ")
	m2x = countSeq(seq, n)
	t.Logf("room without archive, %d SIGKILLs: XMPP -> Matrix: %s; Matrix -> XMPP: %s (and %d sent again under the same id)",
		rounds, x2m, m2x, sameID)
	if x2m.duplicated > 0 {
		logDuplicateEvents(ctx, t, u, portal, tl, s.ghost(bob), run+" bob ")
	}
	if !x2m.clean() {
		t.Errorf("room without archive XMPP -> Matrix not exactly once in order: %s", x2m)
	}
	if !m2x.clean() {
		t.Errorf("room without archive Matrix -> XMPP not exactly once in order: %s", m2x)
		rcv := bobC.Received()
		for _, m := range rcv[min(peerFrom, len(rcv)):] {
			if strings.HasPrefix(m.Body, run+" mx ") {
				t.Logf("bob received %q from %s, id %q, origin-id %q, type %s, carbon %v", m.Body, m.From, m.ID, m.OriginID, m.Type, m.Carbon)
			}
		}
	}
}

// peerNumbersByID is peerNumbers, with a message received again under the same stanza id (the
// bridge's documented resend of a message cut between its send and its record, in a room
// without an archive to look it up in) taken once and counted apart.
func peerNumbersByID(p *harness.Peer, from int, prefix string) ([]int, int) {
	var seq []int
	var seen []string
	same := 0
	rcv := p.Received()
	for _, m := range rcv[min(from, len(rcv)):] {
		if m.Carbon || !strings.HasPrefix(m.Body, prefix) {
			continue
		}
		key := m.ID + "\x00" + m.Body
		if m.ID != "" && slices.Contains(seen, key) {
			same++
			continue
		}
		seen = append(seen, key)
		if n := numberRE.FindStringSubmatch(m.Body); n != nil {
			i, _ := strconv.Atoi(n[1])
			seq = append(seq, i)
		}
	}
	return seq, same
}
