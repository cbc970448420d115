package e2e

import (
	"encoding/base64"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestEncryptedPortal runs end-to-bridge encryption on Dendrite, which has no appservice-side
// encryption (MSC2409/3202/4190): the bot logs its own device in and syncs. Portals are created
// Megolm-encrypted; an independent E2EE client (matrix-nio) of the same Matrix user reads the
// contact's message and answers, and the homeserver only ever holds ciphertext.
func TestEncryptedPortal(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testEncryptedPortal(t, backend)
		})
	}
}

func testEncryptedPortal(t *testing.T, backend string) {
	s := newStack(t, backend, func(c *harness.BridgeConfig) { c.EncryptionDefault = true })
	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	bobC := s.peer(t, bob, bobPW, "laptop")
	u := s.matrixUser(t, "mxenc")
	// The E2EE device exists before the portal does, so the bot shares the room key with it.
	nio := testenv.StartMatrixPeer(t, s.dendrite, u.UserID().String(), "matrix-mxenc-pw")

	ctx, cancel := stepCtx()
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	body := uniq("encrypted hello from bob")
	if err := bobC.SendChat(ctx, alice, "", "", body); err != nil {
		t.Fatal(err)
	}
	room, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt)
	if err != nil {
		t.Fatal(err)
	}
	var enc event.EncryptionEventContent
	if err := u.Client.StateEvent(ctx, room, event.StateEncryption, "", &enc); err != nil || enc.Algorithm != "m.megolm.v1.aes-sha2" {
		t.Fatalf("portal %s is not Megolm-encrypted: %+v, %v", room, enc, err)
	}
	got := nio.WaitMessage(t, string(room), body, stepTimeout)
	if !got.Encrypted || !got.Decrypted || got.Sender != s.ghost(bob).String() {
		t.Fatalf("nio saw %+v, want a decrypted Megolm message from %s", got, s.ghost(bob))
	}
	if n := countBodies(t, u, room, body); n != 0 {
		t.Errorf("the homeserver holds %q in plaintext (%d events)", body, n)
	}

	reply := uniq("encrypted reply from matrix")
	cur := bobC.Cursor()
	nio.Send(t, string(room), reply)
	ctx2, cancel2 := stepCtx()
	defer cancel2()
	if _, _, err := bobC.WaitMessage(ctx2, cur, bodyIs(reply)); err != nil {
		t.Fatalf("the Megolm-encrypted reply did not reach bob: %v", err)
	}

	// A Megolm event the bridge has no keys for (a client that never shared its session) gets
	// a notice in the portal, not silence, and nothing reaches XMPP.
	cur = bobC.Cursor()
	if _, err := u.Client.SendMessageEvent(ctx2, room, event.EventEncrypted, map[string]any{
		"algorithm":  "m.megolm.v1.aes-sha2",
		"sender_key": base64.RawStdEncoding.EncodeToString([]byte("curve25519 key of a lost device!")),
		"device_id":  "BROKENCLIENT",
		"session_id": base64.RawStdEncoding.EncodeToString([]byte("no such megolm session, anywhere")),
		"ciphertext": base64.RawStdEncoding.EncodeToString(append([]byte{3, 8, 0, 18, 160, 1}, make([]byte, 160+64+8)...)),
	}); err != nil {
		t.Fatal(err)
	}
	waitNioContains(t, nio, string(room), "hasn't received the decryption keys")
	if got := bobC.Received()[cur:]; len(got) != 0 {
		t.Errorf("an undecryptable Matrix event reached XMPP: %+v", got)
	}
}
