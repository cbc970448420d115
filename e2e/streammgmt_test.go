package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/ping"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestStreamResume is the kill test's stream (80 each way, OMEMO 2 and plaintext contacts, SQLite)
// with the bridge's XMPP TCP connection torn down without a stream close (ss -K) three times, on
// Prosody and on ejabberd: each drop must be followed by a resumed XEP-0198 stream (no new bind),
// and every message must arrive once, in order, both ways.
func TestStreamResume(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			p := killParams{n: 80, kills: 3, interval: 120 * time.Millisecond, server: server}
			drops := 0
			runFaults(t, "sqlite", p, fault{"XMPP TCP drop, resumed", func(ctx context.Context, t *testing.T, s *stack, r *rand.Rand) {
				before := s.bridge.CountLog("XMPP stream resumed")
				if dropXMPPConn(t, s.bridge.PID(), s.xmpp.Port()) == 0 {
					return
				}
				drops++
				deadline := time.Now().Add(90 * time.Second)
				for s.bridge.CountLog("XMPP stream resumed") == before {
					if time.Now().After(deadline) || ctx.Err() != nil {
						t.Errorf("drop %d: the stream was not resumed within 90 s (refused: %d)", drops, s.bridge.CountLog("XMPP stream resumption refused"))
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
				var last string
				for _, line := range strings.Split(s.bridge.Log(), "\n") {
					if strings.Contains(line, "XMPP stream resumed") {
						last = line
					}
				}
				t.Logf("drop %d: %s", drops, last)
				if n := s.bridge.CountLog("XMPP stream resumption refused"); n > 0 {
					t.Errorf("%d resumptions refused", n)
				}
			}})
			if drops == 0 {
				t.Errorf("no connection was dropped")
			}
		})
	}
}

// TestStreamResumeRefused: the bridge's connection is dropped while both sides write and the XMPP
// server restarts at once, so the stream cannot be resumed. The bridge binds afresh; what the
// server held for the lost stream comes from the archive catch-up, and the Matrix messages the
// server never acknowledged are looked for in the archive and sent again only when missing. Every
// message arrives once, in order, both ways.
func TestStreamResumeRefused(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{})
			alice, alicePW := s.account(t, "ralice")
			carol, carolPW := s.account(t, "rcarol")
			u := s.matrixUser(t, "mxrefused")
			ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
			defer cancel()
			mgmt := s.loginUser(ctx, t, u, alice, alicePW)
			carolC := s.peer(t, carol, carolPW, "laptop")
			if err := carolC.SendChat(ctx, alice, "warm-up-1", "", "warm-up from carol"); err != nil {
				t.Fatal(err)
			}
			room := waitRoomWith(ctx, t, u, s.ghost(carol), "warm-up from carol", mgmt)
			tl := u.Cursor(room)

			const n = 30
			run := fmt.Sprintf("r%d", time.Now().UnixNano()%1e6)
			// Carol goes offline (what the bridge sends her goes to her offline storage, which
			// survives the restart); her second client sends the contact's side.
			carolC.Close()
			sender := s.peer(t, carol, carolPW, "phone")
			// First third live, the second around the drop and the restart, the last after it.
			mx := 0
			sendBoth := func(k int) {
				for i := 0; i < k; i++ {
					body := fmt.Sprintf("%s carol %05d", run, mx)
					if err := sender.SendChat(ctx, alice, msgID(body), "", body); err != nil {
						t.Fatal(err)
					}
					if _, err := u.Client.SendText(ctx, room, fmt.Sprintf("%s mx %05d", run, mx)); err != nil {
						t.Fatal(err)
					}
					mx++
					time.Sleep(100 * time.Millisecond)
				}
			}
			var carolClients []*harness.Peer // every client of carol's, in the order they were online
			carolClients = append(carolClients, sender)
			// What carol's clients received, one after the other.
			m2xSeq := func() []int {
				var seq []int
				for _, c := range carolClients {
					seq = append(seq, peerNumbers(c, 0, run+" mx ")...)
				}
				return seq
			}
			sendBoth(n / 3)
			sendBoth(n / 6)
			// A ping's answer means the server has handled the contact's messages before it.
			if err := ping.Send(ctx, sender.Session, carol.Domain()); err != nil {
				t.Fatal(err)
			}
			sender.Close()
			if dropXMPPConn(t, s.bridge.PID(), s.xmpp.Port()) == 0 {
				t.Fatal("the bridge had no XMPP connection to drop")
			}
			// Matrix keeps writing while the server restarts.
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < n/6; i++ {
					if _, err := u.Client.SendText(ctx, room, fmt.Sprintf("%s mx %05d", run, mx+i)); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			s.xmpp.Restart(t)
			<-done
			// The contact's messages of the restart window (sent before it, from the other client).
			sender = s.peer(t, carol, carolPW, "phone2")
			carolClients = append(carolClients, sender)
			for i := 0; i < n/6; i++ {
				body := fmt.Sprintf("%s carol %05d", run, mx+i)
				if err := sender.SendChat(ctx, alice, msgID(body), "", body); err != nil {
					t.Fatal(err)
				}
			}
			mx += n / 6
			sendBoth(n - mx)

			deadline := time.Now().Add(4 * time.Minute)
			var x2m, m2x streamCounts
			for {
				x2m = countSeq(matrixNumbers(ctx, t, u, room, tl, s.ghost(carol), run+" carol "), n)
				m2x = countSeq(m2xSeq(), n)
				if (x2m.lost == 0 && m2x.lost == 0) || time.Now().After(deadline) {
					break
				}
				time.Sleep(2 * time.Second)
			}
			time.Sleep(3 * time.Second)
			x2m = countSeq(matrixNumbers(ctx, t, u, room, tl, s.ghost(carol), run+" carol "), n)
			m2x = countSeq(m2xSeq(), n)
			refused := s.bridge.CountLog("XMPP stream resumption refused")
			for _, line := range strings.Split(s.bridge.Log(), "\n") {
				if strings.Contains(line, "XMPP stream resum") || strings.Contains(line, "had not acknowledged") ||
					strings.Contains(line, "stream management") || strings.Contains(line, "XMPP connection lost") ||
					strings.Contains(line, "Connected to XMPP") || strings.Contains(line, "Failed to connect to XMPP") {
					t.Logf("%s", line)
				}
			}
			t.Logf("XMPP -> Matrix: %s; Matrix -> XMPP: %s; resumptions refused: %d", x2m, m2x, refused)
			if refused == 0 {
				t.Errorf("no resumption was refused: the restart did not test the fallback")
			}
			if !x2m.clean() {
				t.Errorf("XMPP -> Matrix not exactly once in order: %s", x2m)
			}
			if !m2x.clean() {
				t.Errorf("Matrix -> XMPP not exactly once in order: %s", m2x)
			}
		})
	}
}
