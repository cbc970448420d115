package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// TestMUCOMEMOMembers: the bridge reads a room's affiliation lists once and then follows the
// room's announcements, so an affiliation change by the owner while the bridge is in the room
// changes whom the next OMEMO message is encrypted for, without a restart. bob owns a
// members-only non-anonymous room with alice (the bridged account) and dave as members; dave is
// removed while absent (not a recipient any more), carol is added while absent (her device
// decrypts the next message), then joins and is removed while present (not a recipient). On
// Prosody the room gets no IQ from the bridge after the first encrypted message.
func TestMUCOMEMOMembers(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runMUCOMEMOMembers(t, server)
		})
	}
}

type mucMembersScenario struct {
	*stack
	user                *harness.MatrixUser
	mgmt, portal        id.RoomID
	alice, bob          jid.JID
	carol, dave         jid.JID
	bobC, carolC, daveC *harness.Peer
	bobX, carolX, daveX *omemoxmpp.Client
	room                jid.JID
	// iqs is the count of IQ gets the room had received (Prosody) after the first encrypted
	// message; -1 before.
	iqs int
}

func runMUCOMEMOMembers(t *testing.T, server string) {
	mm := &mucMembersScenario{stack: newStackOn(t, server, "sqlite", testenv.ProsodyOptions{}), iqs: -1}
	var alicePW, bobPW, carolPW, davePW string
	mm.alice, alicePW = mm.account(t, "alice")
	mm.bob, bobPW = mm.account(t, "bob")
	mm.carol, carolPW = mm.account(t, "carol")
	mm.dave, davePW = mm.account(t, "dave")
	mm.bobC = mm.peer(t, mm.bob, bobPW, "laptop")
	mm.carolC = mm.peer(t, mm.carol, carolPW, "laptop")
	mm.daveC = mm.peer(t, mm.dave, davePW, "laptop")
	mm.room = jid.MustParse("council@" + mm.xmpp.MUCDomain())
	createRoom(t, mm.bobC, mm.room, "bob", map[string]string{
		"muc#roomconfig_membersonly":    "1",
		"muc#roomconfig_whois":          "anyone",
		"muc#roomconfig_persistentroom": "1",
	})
	setAffiliation(t, mm.bobC, mm.room, mm.alice, "member")
	setAffiliation(t, mm.bobC, mm.room, mm.dave, "member")
	mm.user = mm.matrixUser(t, "mxmembers")

	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	mm.mgmt = mm.loginUser(ctx, t, mm.user, mm.alice, alicePW)
	// Everyone's OMEMO device, once the bridge's device of alice is announced.
	mm.bobX = omemoPeer(ctx, t, mm.bobC, mm.bob, mm.alice)
	mm.carolX = omemoPeer(ctx, t, mm.carolC, mm.carol, mm.alice)
	mm.daveX = omemoPeer(ctx, t, mm.daveC, mm.dave, mm.alice)

	steps := []step{
		{"JoinAndEncrypt", mm.testJoin},
		{"AbsentMemberRemoved", mm.testAbsentRemoved},
		{"AbsentUserAdded", mm.testAbsentAdded},
		{"PresentMemberRemoved", mm.testPresentRemoved},
	}
	if mm.prosody != nil {
		// Counted in Prosody's log, which shows each stanza's top tag (ejabberd's does not).
		steps = append(steps, step{"NoRoomIQsAfterTheFirstRead", mm.testNoIQs})
	}
	for _, st := range steps {
		t.Run(st.name, st.fn)
	}
}

func (mm *mucMembersScenario) needPortal(t *testing.T) {
	t.Helper()
	if mm.portal == "" {
		t.Fatal("needs the portal of JoinAndEncrypt, which failed")
	}
}

// roomIQGets is what the room has received in IQ gets so far: Prosody's count, -1 elsewhere.
func (mm *mucMembersScenario) roomIQGets() int {
	if mm.prosody == nil {
		return -1
	}
	return roomIQs(mm.prosody, mm.room.String())
}

// send sends body from Matrix into the portal and returns the bare JIDs the OMEMO 2 message
// that reached bob carries keys for, with the message as bob got it (decrypted by him to
// check it is this one).
func (mm *mucMembersScenario) send(t *testing.T, body string) ([]string, harness.ReceivedMessage) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	cur := mm.bobC.Cursor()
	if _, err := mm.user.Client.SendText(ctx, mm.portal, body); err != nil {
		t.Fatal(err)
	}
	occ := mm.room.String() + "/alice"
	m, _, err := mm.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool {
		return m.From == occ && m.OMEMO != nil && m.OMEMO.Payload != nil
	})
	if err != nil {
		t.Fatalf("bob did not get an OMEMO groupchat message from alice: %v", err)
	}
	dec, err := mm.bobX.Decrypt(ctx, mm.alice, &omemoxmpp.Received{Elements: []*omemo.Encrypted{m.OMEMO}})
	if err != nil {
		t.Fatalf("bob could not decrypt: %v", err)
	}
	if dec.Body != body {
		t.Fatalf("bob decrypted %q, want %q", dec.Body, body)
	}
	var jids []string
	for _, k := range m.OMEMO.Keys {
		if !slices.Contains(jids, k.JID) {
			jids = append(jids, k.JID)
		}
	}
	slices.Sort(jids)
	return jids, m
}

// barrier: bob's OMEMO message reaches the portal, so the bridge has read everything the room
// sent before it (the announcement of the affiliation change bob just made among it).
func (mm *mucMembersScenario) barrier(t *testing.T) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("barrier from bob")
	sendGroupOMEMO(t, ctx, mm.bobC, mm.bobX, mm.room, []jid.JID{mm.alice}, body)
	if _, _, err := mm.user.WaitEvent(ctx, mm.portal, 0, harness.IsMessage(mm.ghost(mm.bob), body)); err != nil {
		t.Fatalf("bob's barrier never reached the portal: %v", err)
	}
}

// wantRecipient fails t unless who is (in) or is not (!in) among the recipients.
func wantRecipient(t *testing.T, recipients []string, who jid.JID, in bool) {
	t.Helper()
	if slices.Contains(recipients, who.String()) != in {
		t.Errorf("recipients %q: %s among them is %v, want %v", recipients, who, !in, in)
	}
}

func (mm *mucMembersScenario) testJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*stepTimeout)
	defer cancel()
	answer, err := mm.user.Command(ctx, mm.mgmt, mm.bot, "join "+mm.room.String(), nil)
	if err != nil || !strings.Contains(answer, "Joined "+mm.room.String()) {
		t.Fatalf("join: %q, %v", answer, err)
	}
	room, err := mm.user.FindRoomWith(ctx, mm.ghost(mm.bob), mm.mgmt)
	if err != nil {
		t.Fatalf("no portal with bob's ghost: %v", err)
	}
	mm.portal = room
	if answer, err := mm.user.Command(ctx, room, mm.bot, "!xmpp omemo on", nil); err != nil || !strings.Contains(answer, "sent OMEMO-encrypted") {
		t.Fatalf("omemo on: %q, %v", answer, err)
	}
	got, _ := mm.send(t, uniq("first encrypted message"))
	wantRecipient(t, got, mm.bob, true)
	wantRecipient(t, got, mm.dave, true) // a member who is not in the room
	wantRecipient(t, got, mm.carol, false)
	mm.iqs = mm.roomIQGets()
}

func (mm *mucMembersScenario) testAbsentRemoved(t *testing.T) {
	mm.needPortal(t)
	setAffiliation(t, mm.bobC, mm.room, mm.dave, "none")
	mm.barrier(t)
	got, m := mm.send(t, uniq("after dave was removed"))
	wantRecipient(t, got, mm.bob, true)
	wantRecipient(t, got, mm.dave, false)
	ctx, cancel := stepCtx()
	defer cancel()
	if _, err := mm.daveX.Decrypt(ctx, mm.alice, &omemoxmpp.Received{Elements: []*omemo.Encrypted{m.OMEMO}}); err == nil {
		t.Error("dave, no longer a member, decrypted the message")
	}
}

func (mm *mucMembersScenario) testAbsentAdded(t *testing.T) {
	mm.needPortal(t)
	setAffiliation(t, mm.bobC, mm.room, mm.carol, "member")
	mm.barrier(t)
	body := uniq("after carol was added")
	got, m := mm.send(t, body)
	wantRecipient(t, got, mm.carol, true)
	wantRecipient(t, got, mm.dave, false)
	// carol is not in the room: she decrypts the stanza bob got.
	ctx, cancel := stepCtx()
	defer cancel()
	dec, err := mm.carolX.Decrypt(ctx, mm.alice, &omemoxmpp.Received{Elements: []*omemo.Encrypted{m.OMEMO}})
	if err != nil {
		t.Fatalf("carol, the new member, could not decrypt: %v", err)
	}
	if dec.Body != body {
		t.Errorf("carol decrypted %q, want %q", dec.Body, body)
	}
}

func (mm *mucMembersScenario) testPresentRemoved(t *testing.T) {
	mm.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	roomJoin(ctx, t, mm.carolC, mm.room, "carol")
	got, _ := mm.send(t, uniq("carol in the room"))
	wantRecipient(t, got, mm.carol, true)
	cur := mm.carolC.PresenceCursor()
	setAffiliation(t, mm.bobC, mm.room, mm.carol, "none")
	// Removed from a members-only room, she is put out of it (status 321).
	if _, err := mm.carolC.WaitPresence(ctx, cur, func(p harness.ReceivedPresence) bool {
		return p.From == mm.room.String()+"/carol" && p.Type == "unavailable"
	}); err != nil {
		t.Fatalf("carol was not put out of the room: %v", err)
	}
	mm.barrier(t)
	got, _ = mm.send(t, uniq("after carol was removed while present"))
	wantRecipient(t, got, mm.bob, true)
	wantRecipient(t, got, mm.carol, false)
}

func (mm *mucMembersScenario) testNoIQs(t *testing.T) {
	mm.needPortal(t)
	if mm.iqs < 0 {
		t.Fatal("needs the count after the first message (JoinAndEncrypt)")
	}
	for i := range 3 {
		mm.send(t, fmt.Sprint(uniq("steady"), i))
	}
	// Prosody's log is written as it goes; a moment for the last lines.
	time.Sleep(200 * time.Millisecond)
	if n := mm.roomIQGets() - mm.iqs; n != 0 {
		t.Errorf("the room got %d IQ gets after the first encrypted message (8 more messages, 3 affiliation changes), want 0", n)
	}
}
