package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/ping"
)

// TestBridgeStartsWhileXMPPDown: the bridge is stopped, the contact sends while it is down, the
// XMPP server goes down, and the bridge starts while it is down (and the Matrix user writes
// meanwhile). Once the server is back, every message of both sides arrives once, in order.
func TestBridgeStartsWhileXMPPDown(t *testing.T) {
	s := newStack(t, "sqlite")
	alice, alicePW := s.account(t, "dalice")
	carol, carolPW := s.account(t, "dcarol")
	u := s.matrixUser(t, "mxdown")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	carolC := s.peer(t, carol, carolPW, "laptop")
	if err := carolC.SendChat(ctx, alice, "warm-up-1", "", "warm-up from carol"); err != nil {
		t.Fatal(err)
	}
	room := waitRoomWith(ctx, t, u, s.ghost(carol), "warm-up from carol", mgmt)
	tl := u.Cursor(room)

	const n = 10
	run := fmt.Sprintf("d%d", time.Now().UnixNano()%1e6)
	if err := s.bridge.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := fmt.Sprintf("%s carol %05d", run, i)
		if err := carolC.SendChat(ctx, alice, msgID(body), "", body); err != nil {
			t.Fatal(err)
		}
	}
	// A ping's answer means the server has handled (stored) the messages before it.
	if err := ping.Send(ctx, carolC.Session, carol.Domain()); err != nil {
		t.Fatal(err)
	}
	carolC.Close()
	s.prosody.Stop()
	restartBridge(ctx, t, s, "stopping it")
	for i := range n {
		if _, err := u.Client.SendText(ctx, room, fmt.Sprintf("%s mx %05d", run, i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second)
	s.prosody.Restart(t)
	carolC = s.peer(t, carol, carolPW, "laptop2")

	deadline := time.Now().Add(3 * time.Minute)
	var x2m, m2x streamCounts
	for {
		x2m = countSeq(matrixNumbers(ctx, t, u, room, tl, s.ghost(carol), run+" carol "), n)
		m2x = countSeq(peerNumbers(carolC, 0, run+" mx "), n)
		if (x2m.lost == 0 && m2x.lost == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(3 * time.Second)
	x2m = countSeq(matrixNumbers(ctx, t, u, room, tl, s.ghost(carol), run+" carol "), n)
	m2x = countSeq(peerNumbers(carolC, 0, run+" mx "), n)
	t.Logf("XMPP -> Matrix: %s; Matrix -> XMPP: %s", x2m, m2x)
	if !x2m.clean() {
		t.Errorf("XMPP -> Matrix not exactly once in order: %s", x2m)
	}
	if !m2x.clean() {
		t.Errorf("Matrix -> XMPP not exactly once in order: %s", m2x)
	}
}
