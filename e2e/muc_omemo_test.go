package e2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
)

// TestMUCOMEMO bridges OMEMO in a group chat on real Prosody and Dendrite: bob owns a
// members-only room that shows real JIDs, makes the bridged account alice a member and has an
// OMEMO 2 device (our omemoxmpp client); his encrypted groupchat message arrives decrypted in the
// portal from his ghost, and the Matrix reply goes out encrypted for his device, never as
// plaintext. A room that hides real JIDs refuses `omemo on` and shows a notice for OMEMO messages.
// It runs on Prosody (with its HTTPS upload service) and on ejabberd (MUC and HTTP upload as
// Debian configures them; its default room hides real JIDs from all but moderators).
func TestMUCOMEMO(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runMUCOMEMO(t, server)
		})
	}
}

func runMUCOMEMO(t *testing.T, server string) {
	mo := &mucOMEMOScenario{stack: newStackOn(t, server, "sqlite", testenv.ProsodyOptions{UploadHTTPS: true})}
	var bobPW string
	mo.alice, mo.alicePW = mo.account(t, "alice")
	mo.bob, bobPW = mo.account(t, "bob")
	mo.bobC = mo.peer(t, mo.bob, bobPW, "laptop")
	mo.room = jid.MustParse("secret@" + mo.xmpp.MUCDomain())
	mo.anon = jid.MustParse("hush@" + mo.xmpp.MUCDomain())
	createRoom(t, mo.bobC, mo.room, "bob", map[string]string{
		"muc#roomconfig_membersonly": "1",
		"muc#roomconfig_whois":       "anyone",
	})
	setAffiliation(t, mo.bobC, mo.room, mo.alice, "member")
	createRoom(t, mo.bobC, mo.anon, "bob", nil)
	mo.user = mo.matrixUser(t, "mxmucomemo")

	for _, st := range []step{
		{"Login", mo.testLogin},
		{"Join", mo.testJoin},
		{"EncryptedMessageFromMember", mo.testIncoming},
		{"EncryptedReplyFromMatrix", mo.testReply},
		{"EncryptedFileFromMatrix", mo.testFileFromMatrix},
		{"EncryptedFileFromMember", mo.testFileFromMember},
		{"NoTrustedDeviceNothingSent", mo.testNoTrustedDevice},
		{"SemiAnonymousRoomRefuses", mo.testSemiAnonymous},
		{"ReconfiguredSemiAnonymousRefuses", mo.testReconfiguredSemiAnonymous},
	} {
		t.Run(st.name, st.fn)
	}
}

type mucOMEMOScenario struct {
	*stack
	user    *harness.MatrixUser
	mgmt    id.RoomID
	alice   jid.JID
	alicePW string
	bob     jid.JID
	bobC    *harness.Peer
	bobX    *omemoxmpp.Client
	room    jid.JID // members-only, non-anonymous
	anon    jid.JID // semi-anonymous
	portal  id.RoomID
}

// setAffiliation gives account an affiliation in room (XEP-0045 §9.3), as the room's owner p.
func setAffiliation(t *testing.T, p *harness.Peer, room, account jid.JID, aff string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	iq := fmt.Sprintf(`<iq xmlns="jabber:client" type="set" id="aff-%d" to=%q><query xmlns="http://jabber.org/protocol/muc#admin">`+
		`<item affiliation=%q jid=%q/></query></iq>`, time.Now().UnixNano(), room.String(), aff, account.Bare().String())
	sendIQResult(t, ctx, p, iq)
}

func (mo *mucOMEMOScenario) command(t *testing.T, room id.RoomID, text string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*stepTimeout)
	defer cancel()
	answer, err := mo.user.Command(ctx, room, mo.bot, text, nil)
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

func (mo *mucOMEMOScenario) testLogin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	room, err := mo.user.OpenManagementRoom(ctx, mo.bot)
	if err != nil {
		t.Fatal(err)
	}
	mo.mgmt = room
	if _, err := mo.login(t, mo.user, room, mo.alice, mo.alicePW); err != nil {
		t.Fatal(err)
	}
	// bob's OMEMO device, once the bridge's device of alice is announced.
	mo.bobX = omemoPeer(ctx, t, mo.bobC, mo.bob, mo.alice)
}

func (mo *mucOMEMOScenario) needPortal(t *testing.T) {
	t.Helper()
	if mo.portal == "" || mo.bobX == nil {
		t.Fatal("needs the login and the portal of Join, which failed")
	}
}

func (mo *mucOMEMOScenario) testJoin(t *testing.T) {
	if mo.bobX == nil {
		t.Fatal("needs the login")
	}
	answer := mo.command(t, mo.mgmt, "join "+mo.room.String())
	if want := "Joined " + mo.room.String() + " as alice"; !strings.Contains(answer, want) {
		t.Fatalf("the bot said %q, want %q", answer, want)
	}
	ctx, cancel := stepCtx()
	defer cancel()
	room, err := mo.user.FindRoomWith(ctx, mo.ghost(mo.bob), mo.mgmt)
	if err != nil {
		t.Fatalf("no portal with bob's ghost: %v", err)
	}
	mo.portal = room
}

// sendGroupOMEMO sends body to room from p, encrypted with xc for the devices of members.
func sendGroupOMEMO(t *testing.T, ctx context.Context, p *harness.Peer, xc *omemoxmpp.Client, room jid.JID, members []jid.JID, body string) {
	t.Helper()
	out, err := xc.EncryptGroup(ctx, room, members, body)
	if err != nil {
		t.Fatalf("encrypting for %s: %v", room, err)
	}
	r, err := omemoxmpp.BuildMessage(stanza.Message{To: room, Type: stanza.GroupChatMessage, ID: fmt.Sprintf("gco-%d", time.Now().UnixNano())}, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Session.Send(ctx, r); err != nil {
		t.Fatal(err)
	}
}

func (mo *mucOMEMOScenario) testIncoming(t *testing.T) {
	mo.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("encrypted hello to the room")
	sendGroupOMEMO(t, ctx, mo.bobC, mo.bobX, mo.room, []jid.JID{mo.alice}, body)
	evt, _, err := mo.user.WaitEvent(ctx, mo.portal, 0, harness.IsMessage(mo.ghost(mo.bob), body))
	if err != nil {
		t.Fatalf("bob's OMEMO message never appeared decrypted from his ghost: %v", err)
	}
	if msg := evt.Content.AsMessage(); msg.MsgType != event.MsgText {
		t.Errorf("the decrypted message is a %s, want m.text", msg.MsgType)
	}
	if n := countBodies(t, mo.user, mo.portal, omemoxmpp.FallbackBody); n != 0 {
		t.Errorf("the OMEMO fallback body reached the portal %d times", n)
	}
	// The member's OMEMO message made the portal encrypted.
	if meta := mo.query(t, "SELECT metadata FROM portal WHERE mxid = ?", mo.portal.String()); len(meta) != 1 || !strings.Contains(meta[0], `"omemo":true`) {
		t.Errorf("portal metadata after bob's OMEMO message: %q, want omemo on", meta)
	}
	if answer := mo.command(t, mo.portal, "!xmpp omemo status"); !strings.Contains(answer, "sent OMEMO-encrypted") ||
		!strings.Contains(answer, "Matrix: ") || !strings.Contains(answer, "XMPP: OMEMO to the devices of the room's members") {
		t.Errorf("omemo status in the room portal: %q", answer)
	}
	// No plaintext is kept once bridgev2 has the message (the inbox row is cleared within a
	// minute; here it only must not be the fallback).
	if rows := mo.query(t, "SELECT sender FROM omemo_inbox WHERE peer = ?", mo.room.String()); len(rows) == 0 || rows[0] != mo.bob.String() {
		t.Errorf("inbox rows of the room: %q, want one from %s", rows, mo.bob)
	}
}

func (mo *mucOMEMOScenario) testReply(t *testing.T) {
	mo.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	reply := uniq("encrypted reply from matrix to the room")
	cur := mo.bobC.Cursor()
	resp, err := mo.user.Client.SendText(ctx, mo.portal, reply)
	if err != nil {
		t.Fatal(err)
	}
	occ := mo.room.String() + "/alice"
	m, _, err := mo.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool {
		return m.From == occ && m.OMEMO != nil && m.OMEMO.Payload != nil
	})
	if err != nil {
		t.Fatalf("bob did not get an OMEMO groupchat message from alice: %v", err)
	}
	if m.Type != "groupchat" || m.OriginID == "" || m.OriginID != m.ID {
		t.Errorf("bob got type %q, id %q, origin-id %q; want groupchat with id = origin-id", m.Type, m.ID, m.OriginID)
	}
	if m.Body != omemoxmpp.FallbackBody {
		t.Errorf("the encrypted message's body is %q, want the fallback", m.Body)
	}
	dec, err := mo.bobX.Decrypt(ctx, mo.alice, &omemoxmpp.Received{Elements: []*omemo.Encrypted{m.OMEMO}})
	if err != nil {
		t.Fatalf("bob could not decrypt the reply: %v", err)
	}
	if dec.Body != reply {
		t.Errorf("bob decrypted %q, want %q", dec.Body, reply)
	}
	// Not echoed back into Matrix, and never in plaintext in the room: bob's next OMEMO
	// message is the barrier.
	barrier := uniq("encrypted barrier after the reply")
	sendGroupOMEMO(t, ctx, mo.bobC, mo.bobX, mo.room, []jid.JID{mo.alice}, barrier)
	if _, _, err := mo.user.WaitEvent(ctx, mo.portal, 0, harness.IsMessage(mo.ghost(mo.bob), barrier)); err != nil {
		t.Fatalf("barrier never appeared: %v", err)
	}
	if n := countBodies(t, mo.user, mo.portal, reply); n != 1 {
		t.Errorf("the reply is %d times in the portal, want once (the room's reflection was bridged back)", n)
	}
	for _, got := range mo.bobC.Received() {
		if strings.Contains(got.Body, reply) {
			t.Errorf("the plaintext reached bob in a %s message from %s", got.Type, got.From)
		}
	}
	// The room's archive (Prosody's muc_mam, internal storage; ejabberd's Mnesia) has the
	// encrypted messages but never the plaintext.
	var archived bool
	err = filepath.WalkDir(mo.serverDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), reply) {
			t.Errorf("the plaintext of the reply is in Prosody's storage: %s", path)
		}
		archived = archived || (strings.Contains(path, "muc_log") && strings.Contains(string(data), "I sent you an OMEMO encrypted message"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !archived && mo.prosody != nil {
		t.Errorf("no encrypted message in the room archive under %s", mo.prosody.DataDir())
	}
	ids := mo.query(t, "SELECT id FROM message WHERE mxid = ?", resp.EventID.String())
	if len(ids) != 1 || !strings.HasPrefix(ids[0], mo.room.String()+"//sid:") {
		t.Errorf("message rows for the reply: %q, want one keyed by the room's stanza-id", ids)
	}
}

func (mo *mucOMEMOScenario) testSemiAnonymous(t *testing.T) {
	if mo.bobX == nil {
		t.Fatal("needs the login")
	}
	answer := mo.command(t, mo.mgmt, "join "+mo.anon.String())
	if !strings.Contains(answer, "Joined "+mo.anon.String()) {
		t.Fatalf("the bot said %q", answer)
	}
	ctx, cancel := stepCtx()
	defer cancel()
	bobOcc := harness.GhostMXID("muc:"+mo.anon.String()+"/bob", "localhost")
	room, err := mo.user.FindRoomWith(ctx, bobOcc, mo.mgmt, mo.portal)
	if err != nil {
		t.Fatalf("no portal with bob's occupant ghost %s: %v", bobOcc, err)
	}
	if answer := mo.command(t, room, "!xmpp omemo on"); !strings.Contains(answer, "hides real JIDs") {
		t.Errorf("omemo on in a semi-anonymous room: %q", answer)
	}
	if meta := mo.query(t, "SELECT metadata FROM portal WHERE mxid = ?", room.String()); len(meta) != 1 || strings.Contains(meta[0], `"omemo":true`) {
		t.Errorf("portal metadata after the refused omemo on: %q", meta)
	}
	sendGroupOMEMO(t, ctx, mo.bobC, mo.bobX, mo.anon, []jid.JID{mo.alice}, uniq("encrypted in a semi-anonymous room"))
	evt, _, err := mo.user.WaitEvent(ctx, room, 0, func(evt *event.Event) bool {
		return evt.Sender == bobOcc && strings.Contains(harness.Body(evt), "the room hides real JIDs")
	})
	if err != nil {
		t.Fatalf("no notice for bob's OMEMO message in the semi-anonymous room: %v", err)
	}
	if msg := evt.Content.AsMessage(); msg.MsgType != event.MsgNotice {
		t.Errorf("the notice is a %s, want m.notice", msg.MsgType)
	}
	// Plaintext still works there.
	body := uniq("plain in the semi-anonymous room")
	cur := mo.bobC.Cursor()
	if _, err := mo.user.Client.SendText(ctx, room, body); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mo.bobC.WaitMessage(ctx, cur, bodyIs(body)); err != nil {
		t.Fatalf("bob did not get the plaintext message: %v", err)
	}
}

// testReconfiguredSemiAnonymous: bob, the owner, makes the encrypted room semi-anonymous while
// the bridge is in it (the room says 104 and 173). The portal is told that OMEMO cannot be used
// any more, and a Matrix message is refused with a notice saying why: it reaches bob neither in
// plaintext nor otherwise. Made non-anonymous again (172), the room is encrypted for again.
func (mo *mucOMEMOScenario) testReconfiguredSemiAnonymous(t *testing.T) {
	mo.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	configureRoom(t, ctx, mo.bobC, mo.room, map[string]string{"muc#roomconfig_whois": "moderators"})
	if _, _, err := mo.user.WaitEvent(ctx, mo.portal, 0, harness.IsMessage("", "OMEMO cannot be used in it any more: the room hides real JIDs")); err != nil {
		t.Errorf("no notice that the reconfigured room cannot be encrypted for: %v", err)
	}
	cur := mo.bobC.Cursor()
	body := uniq("must not leave once the room hides real JIDs")
	if _, err := mo.user.Client.SendText(ctx, mo.portal, body); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mo.user.WaitEvent(ctx, mo.portal, 0, func(evt *event.Event) bool {
		b := harness.Body(evt)
		return strings.Contains(b, "Not sent") && strings.Contains(b, "the room hides real JIDs") && strings.Contains(b, "nothing was sent")
	}); err != nil {
		t.Errorf("no refusal notice for the message in the reconfigured room: %v", err)
	}

	configureRoom(t, ctx, mo.bobC, mo.room, map[string]string{"muc#roomconfig_whois": "anyone"})
	if _, _, err := mo.user.WaitEvent(ctx, mo.portal, 0, harness.IsMessage("", "non-anonymous and members-only again")); err != nil {
		t.Errorf("no notice that the room can be encrypted for again: %v", err)
	}
	// The next message goes out encrypted: the barrier; nothing from alice came before it.
	barrier := uniq("encrypted again after the room shows real JIDs")
	if _, err := mo.user.Client.SendText(ctx, mo.portal, barrier); err != nil {
		t.Fatal(err)
	}
	occ := mo.room.String() + "/alice"
	m, _, err := mo.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.From == occ })
	if err != nil {
		t.Fatalf("bob got nothing from alice after the room showed real JIDs again: %v", err)
	}
	if strings.Contains(m.Body, body) || m.OMEMO == nil {
		t.Fatalf("bob's first message from alice after the reconfiguration is not the encrypted barrier: %+v", m)
	}
	dec, err := mo.bobX.Decrypt(ctx, mo.alice, &omemoxmpp.Received{Elements: []*omemo.Encrypted{m.OMEMO}})
	if err != nil {
		t.Fatalf("bob could not decrypt alice's message: %v", err)
	}
	if dec.Body != barrier {
		t.Errorf("bob decrypted %q, want the barrier (the refused message must never arrive)", dec.Body)
	}
	for _, got := range mo.bobC.Received() {
		if strings.Contains(got.Body, body) {
			t.Errorf("the refused message reached bob in a %s message from %s", got.Type, got.From)
		}
	}
}

// sendIQResult sends an IQ given as XML text and fails t unless the answer is a result.
func sendIQResult(t *testing.T, ctx context.Context, p *harness.Peer, iq string) {
	t.Helper()
	resp, err := p.Session.SendIQ(ctx, xml.NewDecoder(strings.NewReader(iq)))
	if err != nil {
		t.Fatalf("IQ %s: %v", iq, err)
	}
	defer resp.Close()
	tok, err := resp.Token()
	if err != nil {
		t.Fatalf("IQ %s: %v", iq, err)
	}
	if start, ok := tok.(xml.StartElement); !ok || attr(start, "type") != "result" {
		t.Fatalf("IQ %s: answered %v", iq, tok)
	}
}

// testNoTrustedDevice: with bob's only device distrusted, a Matrix message in the encrypted room
// fails with a notice and reaches nobody, in plaintext or otherwise.
func (mo *mucOMEMOScenario) testNoTrustedDevice(t *testing.T) {
	mo.needPortal(t)
	dev := fmt.Sprint(mo.bobX.Manager().DeviceID())
	if answer := mo.command(t, mo.portal, "!xmpp omemo distrust "+mo.bob.String()+" "+dev); !strings.Contains(answer, "distrusted") {
		t.Fatalf("omemo distrust: %q", answer)
	}
	ctx, cancel := stepCtx()
	defer cancel()
	cur := mo.bobC.Cursor()
	body := uniq("must not leave without a trusted device")
	if _, err := mo.user.Client.SendText(ctx, mo.portal, body); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mo.user.WaitEvent(ctx, mo.portal, 0, harness.IsMessage("", "none of the members' 1 OMEMO device(s) is trusted")); err != nil {
		t.Errorf("no failure notice for the message without a trusted device: %v", err)
	}
	if answer := mo.command(t, mo.portal, "!xmpp omemo trust "+mo.bob.String()+" "+dev); !strings.Contains(answer, "trusted") {
		t.Fatalf("omemo trust: %q", answer)
	}
	// Trusted again, the next message goes out (encrypted): the barrier.
	barrier := uniq("after trusting again")
	if _, err := mo.user.Client.SendText(ctx, mo.portal, barrier); err != nil {
		t.Fatal(err)
	}
	occ := mo.room.String() + "/alice"
	got := 0
	for next := cur; ; {
		m, n, err := mo.bobC.WaitMessage(ctx, next, func(m harness.ReceivedMessage) bool { return m.From == occ })
		if err != nil {
			t.Fatalf("bob got nothing from alice after trusting again: %v", err)
		}
		next = n
		got++
		if strings.Contains(m.Body, body) {
			t.Errorf("the refused message reached the room in plaintext")
		}
		if m.OMEMO == nil {
			t.Fatalf("bob got a plaintext message from alice: %+v", m)
		}
		dec, err := mo.bobX.Decrypt(ctx, mo.alice, &omemoxmpp.Received{Elements: []*omemo.Encrypted{m.OMEMO}})
		if err != nil {
			t.Fatalf("bob could not decrypt: %v", err)
		}
		if dec.Body == body {
			t.Errorf("the message sent while no device was trusted reached bob")
		}
		if dec.Body == barrier {
			break
		}
	}
	if got != 1 {
		t.Errorf("bob got %d messages from alice, want only the barrier", got)
	}
}

// TestMUCOMEMOLibervia: OMEMO in a group chat with Libervia (python-omemo) as an independent
// member. bob (a plain client) makes a persistent members-only room that shows real JIDs, makes
// alice (the bridged account) and Libervia's account members and leaves it; `omemo on` in the
// portal encrypts it, and a Matrix message goes out OMEMO 2-encrypted for Libervia's device,
// which decrypts it. (Libervia 0.9 cannot send OMEMO to a group chat, a bug in its participant
// list, and drops OMEMO 2 group messages after decrypting them, a bug in its SCE check; the
// other direction is covered by TestMUCOMEMO with our own client.)
func TestMUCOMEMOLibervia(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Libervia, Prosody, Dendrite and the bridge")
	}
	s := newStack(t, "sqlite")
	alice, alicePW := s.account(t, "galice")
	lib, libPW := s.account(t, "glib")
	bob, bobPW := s.account(t, "gbob")
	bobC := s.peer(t, bob, bobPW, "laptop")
	room := jid.MustParse("lounge@" + s.prosody.MUCDomain())
	createRoom(t, bobC, room, "bob", map[string]string{
		"muc#roomconfig_membersonly":    "1",
		"muc#roomconfig_whois":          "anyone",
		"muc#roomconfig_persistentroom": "1",
	})
	setAffiliation(t, bobC, room, alice, "member")
	setAffiliation(t, bobC, room, lib, "member")
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	if err := bobC.SendRaw(ctx, fmt.Sprintf(`<presence xmlns="jabber:client" to="%s/bob" type="unavailable"/>`, room)); err != nil {
		t.Fatal(err)
	}

	u := s.matrixUser(t, "mxgroupomemo")
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	// Libervia learns alice's device lists over PEP notifications, which need a presence
	// subscription: a plain client of alice's account sets it up.
	phone := s.peer(t, alice, alicePW, "phone")
	l := testenv.StartLibervia(t, s.prosody)
	prof := l.AddProfile(t, lib.String(), libPW)
	subscribeLibervia(ctx, t, phone, l, prof, lib)
	l.Run(t, "ensure", prof, alice.String(), "urn:xmpp:omemo:2")
	l.Run(t, "muc-join", prof, room.String(), "lib")

	cmdCtx, cmdCancel := context.WithTimeout(context.Background(), 2*stepTimeout)
	defer cmdCancel()
	answer, err := u.Command(cmdCtx, mgmt, s.bot, "join "+room.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "Joined "+room.String()) {
		t.Fatalf("the bot said %q", answer)
	}
	portal, err := u.FindRoomWith(cmdCtx, s.ghost(lib), mgmt)
	if err != nil {
		t.Fatalf("no portal with Libervia's ghost: %v", err)
	}
	if answer, err := u.Command(cmdCtx, portal, s.bot, "!xmpp omemo on", nil); err != nil || !strings.Contains(answer, "sent OMEMO-encrypted") {
		t.Fatalf("omemo on in the members-only non-anonymous room: %q, %v", answer, err)
	}

	reply := uniq("omemo from matrix to libervia in the room")
	if _, err := u.Client.SendText(cmdCtx, portal, reply); err != nil {
		t.Fatal(err)
	}
	// Libervia 0.9 decrypts the message (python-twomemo: key exchange, ratchet, payload) and
	// then drops it: its SCE check compares the envelope's <to/> (the room, as XEP-0384 asks for
	// group chats) with the stanza's to attribute (its own JID), which never match in a room. So
	// the evidence is its log of the decrypted envelope, not its history.
	deadline := time.Now().Add(40 * time.Second)
	for {
		log := l.Run(t, "log")
		if i := strings.Index(log, "Message decrypted: "); i >= 0 && strings.Contains(log[i:], "<body xmlns='jabber:client'>"+reply+"</body>") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Libervia never decrypted %q", reply)
		}
		time.Sleep(time.Second)
	}
	for _, m := range l.History(t, prof, lib.String(), room.String()) {
		if strings.Contains(m.Body, reply) && !m.Encrypted {
			t.Errorf("Libervia received the message unencrypted: %+v", m)
		}
	}
}

// testFileFromMatrix: a file from Matrix in the encrypted room goes up encrypted (XEP-0454) and
// reaches bob only as an aesgcm link inside the OMEMO body: no link or OOB in plaintext, and the
// file's plaintext is nowhere on the server.
func (mo *mucOMEMOScenario) testFileFromMatrix(t *testing.T) {
	mo.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	web := trustingClient(t, mo.xmpp.CertFile())
	secret := randomBytes(t, 4096)
	cur := mo.bobC.Cursor()
	sendMatrixFile(ctx, t, mo.user, mo.portal, secret, "room-secret.bin", "application/octet-stream", event.MsgFile)
	occ := mo.room.String() + "/alice"
	m, _, err := mo.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool {
		return m.From == occ && m.OMEMO != nil && m.OMEMO.Payload != nil
	})
	if err != nil {
		t.Fatalf("bob did not get an OMEMO groupchat message from alice: %v", err)
	}
	if m.Type != "groupchat" || m.OOB != "" || strings.Contains(m.Body, "https://") || strings.Contains(m.Body, "aesgcm://") {
		t.Fatalf("the %s OMEMO message carries a link in plaintext: body %q, OOB %q", m.Type, m.Body, m.OOB)
	}
	dec, err := mo.bobX.Decrypt(ctx, mo.alice, &omemoxmpp.Received{Elements: []*omemo.Encrypted{m.OMEMO}})
	if err != nil {
		t.Fatalf("bob could not decrypt the file message: %v", err)
	}
	getURL, key, err := aesgcm.Parse(dec.Body)
	if err != nil {
		t.Fatalf("decrypted body %q: %v", dec.Body, err)
	}
	got, err := aesgcm.Open(key, httpGet(ctx, t, web, getURL))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatal("decrypted file differs from the Matrix upload")
	}
	assertNotOnServer(t, mo.serverDir(), secret)
}

// testFileFromMember: bob shares an aesgcm link in an OMEMO groupchat message; the portal gets the
// decrypted file from his ghost.
func (mo *mucOMEMOScenario) testFileFromMember(t *testing.T) {
	mo.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	web := trustingClient(t, mo.xmpp.CertFile())
	secret := pngBytes(t)
	ct, key, err := aesgcm.Encrypt(secret)
	if err != nil {
		t.Fatal(err)
	}
	getURL := peerUpload(ctx, t, mo.bobC, web, "room-photo.png", "application/octet-stream", ct)
	link, err := aesgcm.Link(getURL, key)
	if err != nil {
		t.Fatal(err)
	}
	cur := mo.user.Cursor(mo.portal)
	sendGroupOMEMO(t, ctx, mo.bobC, mo.bobX, mo.room, []jid.JID{mo.alice}, link)
	evt := waitMatrixFile(ctx, t, mo.user, mo.portal, cur, mo.ghost(mo.bob))
	content := evt.Content.AsMessage()
	if content.MsgType != event.MsgImage || content.Info == nil || content.Info.MimeType != "image/png" || content.Info.Size != len(secret) {
		t.Fatalf("content %+v info %+v, want the decrypted image", content, content.Info)
	}
	if content.File == nil {
		if got := matrixDownload(ctx, t, mo.user, content); !bytes.Equal(got, secret) {
			t.Fatal("Matrix has a file that differs from the shared one")
		}
	}
	assertNotOnServer(t, mo.serverDir(), secret)
}
