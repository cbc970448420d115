package e2e

import (
	"context"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// TestChatStatus: `omemo status` in a portal says both hops — Matrix (the Megolm room, read by
// matrix-nio) and XMPP (plaintext for bob, who has no OMEMO; OMEMO to carol's one device once
// she wrote encrypted) — and the room gets a notice when carol's OMEMO message turns the XMPP hop
// encrypted.
func TestChatStatus(t *testing.T) {
	s := newStack(t, "sqlite", func(c *harness.BridgeConfig) { c.EncryptionDefault = true })
	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	carol, carolPW := s.account(t, "carol")
	bobC := s.peer(t, bob, bobPW, "laptop")
	carolC := s.peer(t, carol, carolPW, "phone")
	u := s.matrixUser(t, "mxstatus")
	nio := testenv.StartMatrixPeer(t, s.dendrite, u.UserID().String(), "matrix-mxstatus-pw")
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	hello := uniq("plain hello from bob")
	if err := bobC.SendChat(ctx, alice, "", "", hello); err != nil {
		t.Fatal(err)
	}
	bobRoom, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt)
	if err != nil {
		t.Fatal(err)
	}
	nio.WaitMessage(t, string(bobRoom), hello, stepTimeout)
	nio.Send(t, string(bobRoom), "!xmpp omemo status")
	st := waitNioBody(t, nio, string(bobRoom), "XMPP: ")
	if !strings.Contains(st, "Matrix: encrypted to the bridge") || !strings.Contains(st, "XMPP: not encrypted") {
		t.Errorf("bob's chat status: %q", st)
	}

	xc := omemoPeer(ctx, t, carolC, carol, alice)
	secret := uniq("omemo hello from carol")
	out, err := xc.Encrypt(ctx, alice, secret)
	if err != nil {
		t.Fatal(err)
	}
	r, err := omemoxmpp.BuildMessage(stanza.Message{To: alice, Type: stanza.ChatMessage}, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := carolC.Session.Send(ctx, r); err != nil {
		t.Fatal(err)
	}
	carolRoom, err := u.FindRoomWith(ctx, s.ghost(carol), mgmt, bobRoom)
	if err != nil {
		t.Fatal(err)
	}
	nio.WaitMessage(t, string(carolRoom), secret, stepTimeout)
	notice := waitNioBody(t, nio, string(carolRoom), "OMEMO-encrypted from now on")
	t.Logf("notice: %q", notice)
	nio.Send(t, string(carolRoom), "!xmpp omemo status")
	st = waitNioBody(t, nio, string(carolRoom), "XMPP: OMEMO")
	if !strings.Contains(st, "Matrix: encrypted to the bridge") || !strings.Contains(st, "XMPP: OMEMO to 1 device of "+carol.String()) {
		t.Errorf("carol's chat status: %q", st)
	}
	t.Logf("status: %q", st)
}

// waitNioBody waits for a message containing text in room and returns its body.
func waitNioBody(t *testing.T, nio *testenv.MatrixPeer, room, text string) string {
	t.Helper()
	waitNioContains(t, nio, room, text)
	msgs, _ := nio.Messages(t, room)
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(msgs[i].Body, text) {
			return msgs[i].Body
		}
	}
	return ""
}
