package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestRoomKill: the bridge is SIGKILLed (three times, down 1–2 s) while an occupant writes to a
// group chat and the Matrix user writes into its portal, both also while the bridge is down. The
// room's messages missed while it was away come from the room's archive (its own watermark),
// the live ones wait behind them: every message reaches the other side once, in order. On
// Prosody and ejabberd with SQLite, and on Prosody with PostgreSQL. MXOMEMO_KILL_N and
// MXOMEMO_KILL_KILLS (make kill-test) set the size: messages each way and kills.
func TestRoomKill(t *testing.T) {
	p := roomKillSize()
	for _, v := range []struct{ server, backend string }{{"prosody", "sqlite"}, {"ejabberd", "sqlite"}, {"prosody", "postgres"}} {
		t.Run(v.server+"/"+v.backend, func(t *testing.T) { runRoomKill(t, v.server, v.backend, p) })
	}
}

// roomKillSize is TestRoomKill's size: 80 messages each way and 3 kills, or the environment's.
func roomKillSize() killParams {
	p := killParams{n: 80, kills: 3, interval: 80 * time.Millisecond}
	if v, err := strconv.Atoi(os.Getenv("MXOMEMO_KILL_N")); err == nil && v >= 4 {
		p.n = v
	}
	if v, err := strconv.Atoi(os.Getenv("MXOMEMO_KILL_KILLS")); err == nil && v >= 1 {
		p.kills = v
	}
	return p
}

func runRoomKill(t *testing.T, server, backend string, p killParams) {
	s := newStackOn(t, server, backend, testenv.ProsodyOptions{})
	alice, alicePW := s.account(t, "ralice")
	bob, bobPW := s.account(t, "rbob")
	u := s.matrixUser(t, "mxroomkill")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute+time.Duration(p.n)*time.Second)
	defer cancel()
	bobC := s.peer(t, bob, bobPW, "laptop")
	room := jid.MustParse("killroom@" + s.xmpp.MUCDomain())
	createRoom(t, bobC, room, "bob", map[string]string{"muc#roomconfig_whois": "anyone"})
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	if answer, err := u.Command(ctx, mgmt, s.bot, "join "+room.String(), nil); err != nil {
		t.Fatal(err)
	} else if want := "Joined " + room.String(); len(answer) < len(want) || answer[:len(want)] != want {
		t.Fatalf("the bot said %q to the join", answer)
	}
	warm := uniq("room warm-up")
	sendGroupchat(t, ctx, bobC, room, warm)
	portal := waitRoomWith(ctx, t, u, s.ghost(bob), warm, mgmt)
	tl := u.Cursor(portal)
	peerFrom := len(bobC.Received())

	// The bridge goes down when bob has sent a quarter, half and three quarters of his messages
	// (with more kills, at as many even steps), for 1–2 s each time, while both keep sending: some
	// of each side's messages are always sent while it is down (counted below).
	n, kills := p.n, p.kills
	run := fmt.Sprintf("r%d", time.Now().UnixNano()%1e6)
	var down atomic.Bool
	var bobSent, bobWhileDown, mxWhileDown atomic.Int64
	errs := make(chan error, 2)
	go func() {
		for i := range n {
			body := fmt.Sprintf("%s bob %05d", run, i)
			if err := bobC.SendRaw(ctx, fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id=%q><body>%s</body></message>`,
				room.String(), msgID(body), body)); err != nil {
				errs <- err
				return
			}
			if down.Load() {
				bobWhileDown.Add(1)
			}
			bobSent.Add(1)
			time.Sleep(p.interval)
		}
		errs <- nil
	}()
	go func() {
		for i := range n {
			if _, err := u.Client.SendText(ctx, portal, fmt.Sprintf("%s mx %05d", run, i)); err != nil {
				errs <- err
				return
			}
			if down.Load() {
				mxWhileDown.Add(1)
			}
			time.Sleep(p.interval)
		}
		errs <- nil
	}()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for k := 1; k <= kills; k++ {
		for bobSent.Load() < int64(k*n/(kills+1)) {
			time.Sleep(20 * time.Millisecond)
		}
		s.bridge.Kill()
		down.Store(true)
		time.Sleep(time.Second + time.Duration(r.Int64N(int64(time.Second))))
		down.Store(false)
		restartBridge(ctx, t, s, "SIGKILL")
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("sent while the bridge was down: %d of bob's, %d of the Matrix user's", bobWhileDown.Load(), mxWhileDown.Load())
	if bobWhileDown.Load() == 0 || mxWhileDown.Load() == 0 {
		t.Fatal("no message was sent while the bridge was down; the test did not cover the catch-up")
	}
	if err := ping.Send(ctx, bobC.Session, bob.Domain()); err != nil {
		t.Fatal(err)
	}

	var x2m, m2x streamCounts
	deadline := time.Now().Add(4*time.Minute + time.Duration(n)*100*time.Millisecond)
	for {
		x2m = countSeq(matrixNumbers(ctx, t, u, portal, tl, s.ghost(bob), run+" bob "), n)
		m2x = countSeq(peerNumbers(bobC, peerFrom, run+" mx "), n)
		if (x2m.lost == 0 && m2x.lost == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(3 * time.Second) // a late duplicate would show now
	x2m = countSeq(matrixNumbers(ctx, t, u, portal, tl, s.ghost(bob), run+" bob "), n)
	m2x = countSeq(peerNumbers(bobC, peerFrom, run+" mx "), n)
	t.Logf("room, %d SIGKILLs: XMPP -> Matrix: %s; Matrix -> XMPP: %s", kills, x2m, m2x)
	if x2m.duplicated > 0 {
		logDuplicateEvents(ctx, t, u, portal, tl, s.ghost(bob), run+" bob ")
	}
	if !x2m.clean() {
		t.Errorf("room XMPP -> Matrix not exactly once in order: %s", x2m)
	}
	if !m2x.clean() {
		t.Errorf("room Matrix -> XMPP not exactly once in order: %s", m2x)
	}
}

// logDuplicateEvents names the Matrix events of each message from sender with prefix that room
// has more than once (ids, server times and the bridge's remote marker), to find in the bridge
// log which path sent it again.
func logDuplicateEvents(ctx context.Context, t *testing.T, u *harness.MatrixUser, room id.RoomID, from int, sender id.UserID, prefix string) {
	byBody := map[string][]*event.Event{}
	var order []string
	seen := map[id.EventID]bool{}
	take := func(evt *event.Event) {
		b := harness.Body(evt)
		if seen[evt.ID] || evt.Sender != sender || !strings.HasPrefix(b, prefix) {
			return
		}
		seen[evt.ID] = true
		if len(byBody[b]) == 0 {
			order = append(order, b)
		}
		byBody[b] = append(byBody[b], evt)
	}
	mctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	msgs, err := u.RoomMessages(mctx, room)
	if err != nil {
		t.Logf("reading %s with /messages: %v", room, err)
	}
	for _, evt := range msgs {
		take(evt)
	}
	tl := u.Timeline(room)
	for _, evt := range tl[min(from, len(tl)):] {
		take(evt)
	}
	for _, b := range order {
		if evts := byBody[b]; len(evts) > 1 {
			for _, evt := range evts {
				t.Logf("duplicate %q: event %s at %s, marker %v", b, evt.ID,
					time.UnixMilli(evt.Timestamp).UTC().Format("15:04:05.000"), evt.Content.Raw["net.mxomemo.remote"])
			}
		}
	}
}
