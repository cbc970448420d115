package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestOMEMOLibervia runs OMEMO between the bridge and Libervia (python-omemo, an independent
// implementation) through Prosody, with the Matrix side read and written through a Megolm-
// encrypted portal by matrix-nio: Libervia's OMEMO 2 and OMEMO 0.3 messages appear decrypted in
// the portal, and the Matrix reply goes out OMEMO-encrypted and is decrypted by Libervia.
func TestOMEMOLibervia(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Libervia, Prosody, Dendrite and the bridge")
	}
	s := newStack(t, "sqlite", func(c *harness.BridgeConfig) { c.EncryptionDefault = true })
	alice, alicePW := s.account(t, "oalice")
	lib, libPW := s.account(t, "olib")
	u := s.matrixUser(t, "mxomemo")
	nio := testenv.StartMatrixPeer(t, s.dendrite, u.UserID().String(), "matrix-mxomemo-pw")

	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	// The bridge announces its device right after connecting; wait for it on PEP through a
	// plain client of the same account, which also sets up the presence subscription with
	// Libervia (PEP notifications need it).
	phone := s.peer(t, alice, alicePW, "phone")
	l := testenv.StartLibervia(t, s.prosody)
	prof := l.AddProfile(t, lib.String(), libPW)
	subscribeLibervia(ctx, t, phone, l, prof, lib)
	t.Log(l.Run(t, "ensure", prof, alice.String()))

	// The bot tells the user the bridge's fingerprint.
	cmdCtx, cmdCancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cmdCancel()
	fp, err := u.Command(cmdCtx, mgmt, s.bot, "omemo fingerprint", func(s string) bool { return strings.Contains(s, "OMEMO") })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fp, "fingerprint") {
		t.Errorf("omemo fingerprint answered %q", fp)
	}

	var room string
	for _, tc := range []struct{ backend, text string }{
		{"twomemo", uniq("omemo 2 hello from libervia")},
		{"oldmemo", uniq("omemo 0.3 hello from libervia")},
	} {
		l.Run(t, "send", prof, tc.backend, alice.String(), tc.text)
		if room == "" {
			ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
			r, err := u.FindRoomWith(ctx, s.ghost(lib), mgmt)
			cancel()
			if err != nil {
				t.Fatalf("no portal after Libervia's %s message: %v", tc.backend, err)
			}
			room = string(r)
		}
		got := nio.WaitMessage(t, room, tc.text, stepTimeout)
		if !got.Encrypted || !got.Decrypted || got.Sender != s.ghost(lib).String() {
			t.Fatalf("%s: nio saw %+v, want the decrypted text from %s in a Megolm room", tc.backend, got, s.ghost(lib))
		}
	}

	// The chat is encrypted now (the contact used OMEMO): the Matrix reply goes out over OMEMO.
	reply := uniq("omemo reply from matrix")
	nio.Send(t, room, reply)
	l.Run(t, "wait-message", prof, lib.String(), alice.String(), reply, "40")
	found := false
	for _, m := range l.History(t, prof, lib.String(), alice.String()) {
		if m.Body == reply {
			found = true
			if !m.Encrypted {
				t.Errorf("Libervia received the reply unencrypted: %+v", m)
			}
		}
	}
	if !found {
		t.Fatal("the reply is not in Libervia's history")
	}
	cmdCtx, cmdCancel = context.WithTimeout(context.Background(), 2*stepTimeout)
	defer cmdCancel()
	// Trust from Matrix: the bot lists Libervia's device; distrusted, it gets nothing and the
	// Matrix message fails with a clear notice; trusted again, messages flow.
	devs, err := u.Command(cmdCtx, mgmt, s.bot, "omemo devices "+lib.String(), func(s string) bool { return strings.Contains(s, "OMEMO devices of") })
	if err != nil {
		t.Fatal(err)
	}
	libDev := ""
	for _, line := range strings.Split(devs, "\n") {
		if f := strings.Fields(strings.TrimPrefix(line, "* ")); len(f) > 2 && strings.HasPrefix(f[1], "(OMEMO") {
			libDev = f[0]
			if !strings.Contains(line, "trusted") {
				t.Errorf("Libervia's device is not trusted blindly: %q", line)
			}
		}
	}
	if libDev == "" {
		t.Fatalf("no device in %q", devs)
	}
	if out, err := u.Command(cmdCtx, mgmt, s.bot, "omemo distrust "+lib.String()+" "+libDev, nil); err != nil || !strings.Contains(out, "is now distrusted") {
		t.Fatalf("distrust: %q, %v", out, err)
	}
	blocked := uniq("must not leave unencrypted")
	nio.Send(t, room, blocked)
	waitNioContains(t, nio, room, "Not sent: this chat is OMEMO-encrypted")
	if out, err := u.Command(cmdCtx, mgmt, s.bot, "omemo trust "+lib.String()+" "+libDev, nil); err != nil || !strings.Contains(out, "is now trusted") {
		t.Fatalf("trust: %q, %v", out, err)
	}
	again := uniq("trusted again")
	nio.Send(t, room, again)
	l.Run(t, "wait-message", prof, lib.String(), alice.String(), again, "40")
	for _, m := range l.History(t, prof, lib.String(), alice.String()) {
		if m.Body == blocked {
			t.Errorf("a message for a distrusted device reached Libervia: %+v", m)
		}
	}
	// The portal command shows the chat's state.
	nio.Send(t, room, "!xmpp omemo status")
	waitNioContains(t, nio, room, "sent OMEMO-encrypted")

	// A restart keeps the device (same fingerprint) and its sessions; a message Libervia sent
	// while the bridge was down comes from the archive and is decrypted once.
	presCur := phone.PresenceCursor()
	if err := s.bridge.Stop(); err != nil {
		t.Fatal(err)
	}
	whileDown := uniq("omemo while the bridge was down")
	l.Run(t, "send", prof, "twomemo", alice.String(), whileDown)
	// From here on the bridge serves metrics: the OMEMO series must move in a real run.
	metricsBase := "http://" + fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	enableMetrics(t, s.cfg, strings.TrimPrefix(metricsBase, "http://"))
	startCtx, startCancel := context.WithTimeout(context.Background(), time.Minute)
	defer startCancel()
	if err := s.bridge.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.WaitPresence(startCtx, presCur, func(p harness.ReceivedPresence) bool {
		return p.Type == "" && strings.HasPrefix(p.From, alice.String()+"/") && p.From != phone.JID.String()
	}); err != nil {
		t.Fatalf("the bridge did not reconnect after the restart: %v", err)
	}
	got := nio.WaitMessage(t, room, whileDown, stepTimeout)
	if got.Sender != s.ghost(lib).String() {
		t.Errorf("archived OMEMO message from %s", got.Sender)
	}
	afterRestart := uniq("omemo after restart")
	l.Run(t, "send", prof, "oldmemo", alice.String(), afterRestart)
	nio.WaitMessage(t, room, afterRestart, stepTimeout)
	fp2, err := u.Command(startCtx, mgmt, s.bot, "omemo fingerprint", func(s string) bool { return strings.Contains(s, "OMEMO") })
	if err != nil || fp2 != fp {
		t.Errorf("fingerprint after restart %q (%v), before %q", fp2, err, fp)
	}
	n := 0
	msgs, _ := nio.Messages(t, room)
	for _, m := range msgs {
		if m.Body == whileDown {
			n++
		}
		if strings.HasPrefix(m.Body, "Could not decrypt") {
			t.Errorf("unexpected notice: %q", m.Body)
		}
	}
	if n != 1 {
		t.Errorf("%q appears %d times", whileDown, n)
	}

	assertArchivedEncrypted(t, s.prosody, lib.Localpart(), reply, again, whileDown, afterRestart)
	assertArchivedEncrypted(t, s.prosody, alice.Localpart(), reply, again, whileDown, afterRestart)

	// The user's plain second client only ever saw the OMEMO fallback of the bridge's reply
	// (carbons of encrypted messages carry no plaintext).
	for _, m := range phone.Received() {
		if strings.Contains(m.Body, reply) {
			t.Errorf("plaintext of the reply reached a plain client: %+v", m)
		}
	}

	// Bad input through the real server: tampered and replayed copies of Libervia's messages,
	// a forged carbon. The OMEMO metrics count what happened.
	before := scrape(t, metricsBase)
	bad := &badInput{s: s, nio: nio, room: room, lib: l, prof: prof, user: alice, phone: phone,
		tamper: s.peer(t, lib, libPW, "tamper")}
	bad.run(t)
	after := scrape(t, metricsBase)
	undecryptable := []string{"direction", "xmpp_to_matrix", "outcome", "undecryptable"}
	if d := sample(t, after, "xmpp_bridge_messages_total", undecryptable...) - sample(t, before, "xmpp_bridge_messages_total", undecryptable...); d != 4 {
		t.Errorf("undecryptable messages counted %v, want 4 (two tampered copies per version)", d)
	}
	// Six messages decrypted (two real ones per version and the restart's two) at least.
	if n := sample(t, after, "xmpp_bridge_omemo_decrypt_seconds_count"); n < 6 {
		t.Errorf("omemo_decrypt_seconds_count = %v, want >= 6", n)
	}
	if n := sample(t, after, "xmpp_bridge_omemo_sessions"); n < 2 {
		t.Errorf("omemo_sessions = %v, want >= 2 (Libervia's device in both versions)", n)
	}
	final := uniq("omemo reply after bad input")
	nio.Send(t, room, final)
	l.Run(t, "wait-message", prof, lib.String(), alice.String(), final, "40")
	if n := sample(t, scrape(t, metricsBase), "xmpp_bridge_omemo_encrypt_seconds_count"); n < 1 {
		t.Errorf("omemo_encrypt_seconds_count = %v after a reply, want >= 1", n)
	}

	// The user's own other OMEMO client (a second Libervia profile, on alice's account) writes
	// to the contact: the sent carbon is encrypted for the bridge's device too, and shows up
	// decrypted in the portal as the user's, never echoed back to XMPP.
	own := l.AddProfile(t, alice.String(), alicePW)
	t.Log(l.Run(t, "ensure", own, lib.String()))
	t.Log(l.Run(t, "ensure", own, alice.String()))
	for _, backend := range []string{"twomemo", "oldmemo"} {
		text := uniq("omemo " + backend + " from the user's other client")
		l.Run(t, "send", own, backend, lib.String(), text)
		got := nio.WaitMessage(t, room, text, stepTimeout)
		if !got.Encrypted || !got.Decrypted || got.Sender != s.ghost(alice).String() {
			t.Fatalf("%s carbon: nio saw %+v, want the decrypted text from the user's own ghost %s", backend, got, s.ghost(alice))
		}
		l.Run(t, "wait-message", prof, lib.String(), alice.String(), text, "40")
	}
	barrier := uniq("barrier after own carbons")
	nio.Send(t, room, barrier)
	l.Run(t, "wait-message", prof, lib.String(), alice.String(), barrier, "40")
	seen := map[string]int{}
	for _, m := range l.History(t, prof, lib.String(), alice.String()) {
		seen[m.Body]++
	}
	for body, n := range seen {
		if strings.Contains(body, "from the user's other client") && n != 1 {
			t.Errorf("Libervia has %q %d times: the bridge echoed the carbon", body, n)
		}
	}
	if n := bad.countBodies(t, "Could not decrypt an OMEMO message from you"); n != 0 {
		t.Errorf("%d decryption notices for the user's own OMEMO messages", n)
	}
}

// subscribeLibervia makes the account of phone (a plain client) and Libervia's profile prof (the
// contact lib) subscribe to each other's presence, which PEP notifications of device lists need.
func subscribeLibervia(ctx context.Context, t *testing.T, phone *harness.Peer, l *testenv.LiberviaPeer, prof string, lib jid.JID) {
	t.Helper()
	if err := phone.SendRaw(ctx, fmt.Sprintf(`<presence to='%s' type='subscribe'/>`, lib)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	l.Run(t, "approve", prof, phone.JID.Bare().String())
	time.Sleep(500 * time.Millisecond)
	if err := phone.SendRaw(ctx, fmt.Sprintf(`<presence to='%s' type='subscribed'/>`, lib)); err != nil {
		t.Fatal(err)
	}
}

// waitNioContains waits until a message of room (as matrix-nio reads it) contains text.
func waitNioContains(t *testing.T, nio *testenv.MatrixPeer, room, text string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		msgs, _ := nio.Messages(t, room)
		for _, m := range msgs {
			if strings.Contains(m.Body, text) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message containing %q in %s; saw %+v", text, room, msgs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestOMEMOProfanity runs OMEMO 0.3 (legacy only) between the bridge and Profanity
// (libsignal-protocol-c) both ways, read and answered through a Megolm portal by matrix-nio.
func TestOMEMOProfanity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Profanity, Prosody, Dendrite and the bridge")
	}
	s := newStack(t, "sqlite", func(c *harness.BridgeConfig) { c.EncryptionDefault = true })
	alice, alicePW := s.account(t, "palice")
	prof, profPW := s.account(t, "pprof")
	u := s.matrixUser(t, "mxprof")
	nio := testenv.StartMatrixPeer(t, s.dendrite, u.UserID().String(), "matrix-mxprof-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 2*loginTimeout)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	phone := s.peer(t, alice, alicePW, "phone")
	pp := testenv.StartProfanity(t, s.prosody)
	pp.Run(t, "up", prof.Localpart(), profPW)
	pp.Run(t, "subscribe", prof.Localpart(), alice.String())
	for _, typ := range []string{"subscribed", "subscribe"} {
		if err := phone.SendRaw(ctx, fmt.Sprintf(`<presence to='%s' type='%s'/>`, prof, typ)); err != nil {
			t.Fatal(err)
		}
	}
	pp.Run(t, "approve", prof.Localpart(), alice.String())

	text := uniq("omemo 0.3 hello from profanity")
	pp.Run(t, "send", prof.Localpart(), alice.String(), text)
	r, err := u.FindRoomWith(ctx, s.ghost(prof), mgmt)
	if err != nil {
		t.Fatalf("no portal after Profanity's message: %v", err)
	}
	room := string(r)
	got := nio.WaitMessage(t, room, text, stepTimeout)
	if !got.Encrypted || !got.Decrypted || got.Sender != s.ghost(prof).String() {
		t.Fatalf("nio saw %+v", got)
	}
	reply := uniq("omemo 0.3 reply from matrix")
	nio.Send(t, room, reply)
	pp.Run(t, "wait", prof.Localpart(), reply, "30")

	// Profanity comes back as a new device: the portal is told, and (blind trust, no verified
	// device) the new device's messages decrypt.
	pp.Run(t, "down", prof.Localpart())
	pp.Run(t, "up", prof.Localpart(), profPW)
	waitNioContains(t, nio, room, "pprof@localhost's OMEMO devices changed. New:")
	text2 := uniq("omemo 0.3 from profanity's new device")
	pp.Run(t, "send", prof.Localpart(), alice.String(), text2)
	nio.WaitMessage(t, room, text2, stepTimeout)
	assertArchivedEncrypted(t, s.prosody, prof.Localpart(), text, reply, text2)
	assertArchivedEncrypted(t, s.prosody, alice.Localpart(), text, reply)
}

// assertArchivedEncrypted checks that the server's archive of an account holds OMEMO elements
// and none of the plaintexts: both sides really encrypted.
func assertArchivedEncrypted(t *testing.T, p *testenv.Prosody, localpart string, plaintexts ...string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.Dir(), "data", "localhost", "archive", localpart+".list"))
	if err != nil {
		t.Fatalf("archive of %s: %v", localpart, err)
	}
	if !strings.Contains(string(b), "eu.siacs.conversations.axolotl") && !strings.Contains(string(b), "urn:xmpp:omemo:2") {
		t.Fatalf("archive of %s has no OMEMO element", localpart)
	}
	for _, pt := range plaintexts {
		if strings.Contains(string(b), pt) {
			t.Errorf("archive of %s holds plaintext %q", localpart, pt)
		}
	}
}
