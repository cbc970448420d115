package e2e

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// Corrections, replies, reactions and retractions in the plaintext room, both ways: what names a
// groupchat message is the room's stanza-id (replies, reactions, retractions) or the id its sender
// gave it (corrections).
func (mc *mucScenario) featureSteps() []step {
	return []step{
		{"CorrectionFromOccupant", mc.testCorrectionFromOccupant},
		{"ReplyFromOccupant", mc.testReplyFromOccupant},
		{"ReactionFromOccupant", mc.testReactionFromOccupant},
		{"RetractionFromOccupant", mc.testRetractionFromOccupant},
		{"EditFromMatrix", mc.testEditFromMatrix},
		{"ReplyToOccupantFromMatrix", mc.testReplyFromMatrix},
		{"ReactionFromMatrix", mc.testReactionFromMatrix},
		{"RedactionFromMatrix", mc.testRedactionFromMatrix},
		{"FileFromMatrix", mc.testFileFromMatrix},
		{"FileFromOccupant", mc.testFileFromOccupant},
	}
}

// testFileFromMatrix: an image from Matrix reaches bob as the upload's https link with a XEP-0066
// element (plaintext room), and is not bridged back when the room reflects it.
func (mc *mucScenario) testFileFromMatrix(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	web := trustingClient(t, mc.xmpp.CertFile())
	img := pngBytes(t)
	cur := mc.bobC.Cursor()
	sendMatrixFile(ctx, t, mc.user, mc.portal, img, "room-pixel.png", "image/png", event.MsgImage)
	m, _, err := mc.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.From == mc.room.String()+"/alice" && m.Body != "" })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Body, mc.uploadURL()) || m.OOB != m.Body || m.Type != "groupchat" {
		t.Fatalf("%s body %q, OOB %q: want the same %s… URL in a groupchat message", m.Type, m.Body, m.OOB, mc.uploadURL())
	}
	if got := httpGet(ctx, t, web, m.Body); !bytes.Equal(got, img) {
		t.Fatalf("downloaded %d bytes that differ from the %d uploaded", len(got), len(img))
	}
	mc.barrier(t, "barrier after the file")
	if n := countBodies(t, mc.user, mc.portal, m.Body); n != 0 {
		t.Errorf("the room's reflection of the file appeared as a link message (%d times)", n)
	}
}

// testFileFromOccupant: bob shares a file (his own upload, link + OOB); it arrives in the portal
// as a Matrix file from his ghost.
func (mc *mucScenario) testFileFromOccupant(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	web := trustingClient(t, mc.xmpp.CertFile())
	data := randomBytes(t, 3000)
	getURL := peerUpload(ctx, t, mc.bobC, web, "minutes.pdf", "application/pdf", data)
	cur := mc.user.Cursor(mc.portal)
	mc.sendRoomRaw(t, fmt.Sprintf(`<body>%s</body><x xmlns="jabber:x:oob"><url>%s</url></x>`, xmlEscape(getURL), xmlEscape(getURL)), uniq("gcfile"))
	evt := waitMatrixFile(ctx, t, mc.user, mc.portal, cur, mc.ghost(mc.bob))
	content := evt.Content.AsMessage()
	if content.MsgType != event.MsgFile || content.Body != "minutes.pdf" || content.Info == nil || content.Info.Size != len(data) {
		t.Fatalf("content %+v info %+v, want the file minutes.pdf", content, content.Info)
	}
	if got := matrixDownload(ctx, t, mc.user, content); !bytes.Equal(got, data) {
		t.Fatalf("Matrix has %d bytes that differ from the %d shared", len(got), len(data))
	}
}

// barrier waits until bob's next groupchat message is in the portal: what the bridge would have
// bridged back before it is there by then.
func (mc *mucScenario) barrier(t *testing.T, label string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq(label)
	sendGroupchat(t, ctx, mc.bobC, mc.room, body)
	if _, _, err := mc.user.WaitEvent(ctx, mc.portal, 0, harness.IsMessage(mc.ghost(mc.bob), body)); err != nil {
		t.Fatalf("barrier never appeared: %v", err)
	}
}

// bobSaysInRoom sends a groupchat message from bob with id and origin-id both xmppID, and returns
// its Matrix event and the stanza-id the room gave it (read from the bridge's message key).
func (mc *mucScenario) bobSaysInRoom(t *testing.T, body string) (xmppID, stanzaID string, evt *event.Event) {
	t.Helper()
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	xmppID = fmt.Sprintf("bobgc-%d", time.Now().UnixNano())
	mc.sendRoomRaw(t, fmt.Sprintf(`<body>%s</body><origin-id xmlns="urn:xmpp:sid:0" id=%q/>`, html.EscapeString(body), xmppID), xmppID)
	evt, _, err := mc.user.WaitEvent(ctx, mc.portal, 0, harness.IsMessage(mc.ghost(mc.bob), body))
	if err != nil {
		t.Fatalf("%q never appeared in the portal: %v", body, err)
	}
	return xmppID, mc.roomStanzaID(ctx, t, evt.ID, body), evt
}

// roomStanzaID is the room's stanza-id of the bridged message evt (body), read from the bridge's
// message key.
func (mc *mucScenario) roomStanzaID(ctx context.Context, t *testing.T, evt id.EventID, body string) string {
	t.Helper()
	// bridgev2 stores the message after sending it to Matrix.
	prefix := mc.room.String() + "//sid:"
	var ids []string
	for ids = mc.query(t, "SELECT id FROM message WHERE mxid = ?", evt.String()); len(ids) == 0 && ctx.Err() == nil; {
		time.Sleep(50 * time.Millisecond)
		ids = mc.query(t, "SELECT id FROM message WHERE mxid = ?", evt.String())
	}
	if len(ids) != 1 || !strings.HasPrefix(ids[0], prefix) {
		t.Fatalf("message rows of %q: %q, want one keyed by the room's stanza-id", body, ids)
	}
	return strings.TrimPrefix(ids[0], prefix)
}

// sendRoomRaw sends a groupchat message from bob with the given children.
func (mc *mucScenario) sendRoomRaw(t *testing.T, children, xmppID string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	raw := fmt.Sprintf(`<message xmlns="jabber:client" to=%q id=%q type="groupchat">%s</message>`, mc.room.String(), xmppID, children)
	if err := mc.bobC.SendRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
}

func (mc *mucScenario) testCorrectionFromOccupant(t *testing.T) {
	orig, _, origEvt := mc.bobSaysInRoom(t, uniq("helo room typo"))
	fixed := uniq("hello room fixed")
	mc.sendRoomRaw(t, fmt.Sprintf(`<body>%s</body><replace xmlns="urn:xmpp:message-correct:0" id=%q/>`, html.EscapeString(fixed), orig), "fix-"+orig)
	waitEditOf(t, mc.user, mc.portal, origEvt.ID, mc.ghost(mc.bob), fixed)
}

func (mc *mucScenario) testReplyFromOccupant(t *testing.T) {
	_, sid, origEvt := mc.bobSaysInRoom(t, uniq("room question"))
	ctx, cancel := stepCtx()
	defer cancel()
	answer := uniq("room answer")
	mc.sendRoomRaw(t, fmt.Sprintf(`<body>%s</body><reply xmlns="urn:xmpp:reply:0" to=%q id=%q/>`,
		html.EscapeString(answer), mc.room.String()+"/bob", sid), fmt.Sprintf("re-%d", time.Now().UnixNano()))
	evt, _, err := mc.user.WaitEvent(ctx, mc.portal, 0, harness.IsMessage(mc.ghost(mc.bob), answer))
	if err != nil {
		t.Fatalf("the reply never appeared: %v", err)
	}
	if got := evt.Content.AsMessage().RelatesTo.GetReplyTo(); got != origEvt.ID {
		t.Fatalf("the reply points to %q, want %s", got, origEvt.ID)
	}
}

func (mc *mucScenario) testReactionFromOccupant(t *testing.T) {
	_, sid, origEvt := mc.bobSaysInRoom(t, uniq("react in the room"))
	mc.sendRoomRaw(t, fmt.Sprintf(`<reactions xmlns="urn:xmpp:reactions:0" id=%q><reaction>👍</reaction></reactions>`, sid),
		fmt.Sprintf("react-%d", time.Now().UnixNano()))
	waitReactionOf(t, mc.user, mc.portal, origEvt.ID, mc.ghost(mc.bob))
}

func (mc *mucScenario) testRetractionFromOccupant(t *testing.T) {
	_, sid, origEvt := mc.bobSaysInRoom(t, uniq("retract me from the room"))
	ctx, cancel := stepCtx()
	defer cancel()
	const fallbackBody = "This person attempted to retract a previous message."
	mc.sendRoomRaw(t, fmt.Sprintf(`<retract xmlns="urn:xmpp:message-retract:1" id=%q/><body>%s</body>`, sid, fallbackBody),
		fmt.Sprintf("retract-%d", time.Now().UnixNano()))
	if err := mc.user.WaitRedacted(ctx, mc.portal, origEvt.ID); err != nil {
		t.Fatal(err)
	}
	if n := countBodies(t, mc.user, mc.portal, fallbackBody); n != 0 {
		t.Errorf("the retraction's fallback body appeared as a message (%d times)", n)
	}
}

// userSaysInRoom sends a plain message from Matrix to the room and returns its event ID and the
// message bob got.
func (mc *mucScenario) userSaysInRoom(t *testing.T, body string) (id.EventID, harness.ReceivedMessage) {
	t.Helper()
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	cur := mc.bobC.Cursor()
	resp, err := mc.user.Client.SendText(ctx, mc.portal, body)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := mc.bobC.WaitMessage(ctx, cur, bodyIs(body))
	if err != nil {
		t.Fatalf("bob did not get %q: %v", body, err)
	}
	return resp.EventID, m
}

func (mc *mucScenario) testEditFromMatrix(t *testing.T) {
	origEvt, got := mc.userSaysInRoom(t, uniq("matrix room typo"))
	ctx, cancel := stepCtx()
	defer cancel()
	fixed := uniq("matrix room fixed")
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: fixed}
	content.SetEdit(origEvt)
	cur := mc.bobC.Cursor()
	if _, err := mc.user.Client.SendMessageEvent(ctx, mc.portal, event.EventMessage, content); err != nil {
		t.Fatal(err)
	}
	m, _, err := mc.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.Replace != "" })
	if err != nil {
		t.Fatalf("bob got no correction: %v", err)
	}
	if m.Replace != got.OriginID || m.Body != fixed || m.Type != "groupchat" || m.From != mc.room.String()+"/alice" {
		t.Fatalf("bob got a %s correction from %s of %q to %q, want a groupchat correction from alice of %q to %q",
			m.Type, m.From, m.Replace, m.Body, got.OriginID, fixed)
	}
	// The room's reflection of the correction is not bridged back: bob's next message is the barrier.
	mc.barrier(t, "barrier after the correction")
	if n := countBodies(t, mc.user, mc.portal, fixed); n != 0 {
		t.Errorf("the room's reflection of the correction appeared as a new message (%d times)", n)
	}
}

func (mc *mucScenario) testReplyFromMatrix(t *testing.T) {
	_, sid, origEvt := mc.bobSaysInRoom(t, uniq("ask the matrix user"))
	ctx, cancel := stepCtx()
	defer cancel()
	answer := uniq("matrix answers in the room")
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: answer}
	content.SetReply(origEvt)
	cur := mc.bobC.Cursor()
	if _, err := mc.user.Client.SendMessageEvent(ctx, mc.portal, event.EventMessage, content); err != nil {
		t.Fatal(err)
	}
	m, _, err := mc.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return strings.Contains(m.Body, answer) })
	if err != nil {
		t.Fatalf("bob got no reply: %v", err)
	}
	if want := mc.room.String() + "/bob"; m.ReplyID != sid || m.ReplyTo != want || m.Type != "groupchat" {
		t.Fatalf("%s reply points to %q by %q, want the stanza-id %q by %s", m.Type, m.ReplyID, m.ReplyTo, sid, want)
	}
}

func (mc *mucScenario) testReactionFromMatrix(t *testing.T) {
	_, sid, origEvt := mc.bobSaysInRoom(t, uniq("like this in the room"))
	ctx, cancel := stepCtx()
	defer cancel()
	cur := mc.bobC.Cursor()
	if _, err := mc.user.Client.SendReaction(ctx, mc.portal, origEvt.ID, "🎉"); err != nil {
		t.Fatal(err)
	}
	m, _, err := mc.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.ReactionsTo != "" })
	if err != nil {
		t.Fatalf("bob got no reactions: %v", err)
	}
	if m.ReactionsTo != sid || !slices.Equal(m.Reactions, []string{"🎉"}) || m.Type != "groupchat" {
		t.Fatalf("%s reactions %q to %q, want [🎉] to the stanza-id %q", m.Type, m.Reactions, m.ReactionsTo, sid)
	}
	// The room reflects the reaction to us too; it must not turn into a second one.
	time.Sleep(time.Second)
	n := 0
	for _, evt := range mc.user.Timeline(mc.portal) {
		if evt.Type == event.EventReaction && evt.Content.AsReaction().RelatesTo.EventID == origEvt.ID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d reactions to the message in the portal, want 1", n)
	}
}

func (mc *mucScenario) testRedactionFromMatrix(t *testing.T) {
	mc.needPortal(t)
	skipWithoutAppserviceRedactions(t)
	evtID, _ := mc.userSaysInRoom(t, uniq("matrix regrets in the room"))
	ctx, cancel := stepCtx()
	defer cancel()
	cur := mc.bobC.Cursor()
	if _, err := mc.user.Client.RedactEvent(ctx, mc.portal, evtID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mc.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.Retract != "" && m.Type == "groupchat" }); err != nil {
		t.Fatalf("bob got no retraction: %v", err)
	}
}

// testCorrectionByOtherOccupant: carol sends a correction naming bob's message id; it must not edit
// bob's message (corrections reach only the corrector's own messages).
func (mc *mucScenario) testCorrectionByOtherOccupant(t *testing.T) {
	orig, _, origEvt := mc.bobSaysInRoom(t, uniq("bob's own words"))
	ctx, cancel := stepCtx()
	defer cancel()
	forged := uniq("carol rewrites bob")
	raw := fmt.Sprintf(`<message xmlns="jabber:client" to=%q id=%q type="groupchat"><body>%s</body><replace xmlns="urn:xmpp:message-correct:0" id=%q/></message>`,
		mc.room.String(), uniq("carolfix"), html.EscapeString(forged), orig)
	if err := mc.carolC.SendRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	mc.barrier(t, "barrier after carol's correction")
	for _, evt := range mc.user.Timeline(mc.portal) {
		if evt.Type == event.EventMessage && evt.Content.AsMessage().RelatesTo.GetReplaceID() == origEvt.ID {
			t.Fatalf("carol's correction edited bob's message: %s from %s", evt.ID, evt.Sender)
		}
	}
}
