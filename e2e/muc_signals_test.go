package e2e

import (
	"context"
	"fmt"
	"html"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// testTypingInRoom: an occupant's chat states in the room (XEP-0085 §5.5) make its ghost type in
// the portal and stop, seen in the Matrix user's /sync (m.typing).
func (mc *mucScenario) testTypingInRoom(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	carol := mc.ghost(mc.carol)
	typingOf := func(want bool) func(*event.Event) bool {
		return func(evt *event.Event) bool {
			if evt.Type != event.EphemeralEventTyping {
				return false
			}
			ids, _ := evt.Content.Raw["user_ids"].([]any)
			return slices.Contains(ids, any(carol.String())) == want
		}
	}
	cur := mc.user.Cursor(mc.portal)
	send := func(state string) {
		t.Helper()
		raw := fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id="cs-%d"><%s xmlns="http://jabber.org/protocol/chatstates"/>`+
			`<no-store xmlns="urn:xmpp:hints"/></message>`, mc.room.String(), time.Now().UnixNano(), state)
		if err := mc.carolC.SendRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	send("composing")
	_, next, err := mc.user.WaitEvent(ctx, mc.portal, cur, typingOf(true))
	if err != nil {
		t.Fatalf("carol's ghost never typed in the portal: %v", err)
	}
	send("paused")
	if _, _, err := mc.user.WaitEvent(ctx, mc.portal, next, typingOf(false)); err != nil {
		t.Fatalf("carol's ghost never stopped typing: %v", err)
	}
}

// testMarkerInRoom: an occupant's displayed marker naming a message by the room's stanza-id
// (XEP-0333 in groupchats) is its ghost's read receipt of that message in the portal.
func (mc *mucScenario) testMarkerInRoom(t *testing.T) {
	_, stanzaID, evt := mc.bobSaysInRoom(t, uniq("read this, carol"))
	ctx, cancel := stepCtx()
	defer cancel()
	carol := mc.ghost(mc.carol)
	cur := mc.user.Cursor(mc.portal)
	raw := fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id="mk-%d"><displayed xmlns="urn:xmpp:chat-markers:0" id=%q/>`+
		`<store xmlns="urn:xmpp:hints"/></message>`, mc.room.String(), time.Now().UnixNano(), stanzaID)
	if err := mc.carolC.SendRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mc.user.WaitEvent(ctx, mc.portal, cur, receiptOf(carol, evt.ID)); err != nil {
		t.Fatalf("no read receipt of carol's ghost on %s: %v", evt.ID, err)
	}
}

// receiptOf matches an m.receipt in which user read evt.
func receiptOf(user id.UserID, evt id.EventID) func(*event.Event) bool {
	return func(e *event.Event) bool {
		if e.Type != event.EphemeralEventReceipt {
			return false
		}
		byType, _ := e.Content.Raw[evt.String()].(map[string]any)
		read, _ := byType["m.read"].(map[string]any)
		_, ok := read[user.String()]
		return ok
	}
}

// pushEphemeral hands the bridge one appservice transaction with the ephemeral events evts, as a
// homeserver with MSC2409 (Synapse, `receive_ephemeral`) does. Dendrite v0.15.2 never sends typing
// or receipts to appservices, so the tests push what Synapse would push.
func (mc *mucScenario) pushEphemeral(ctx context.Context, t *testing.T, evts ...map[string]any) {
	t.Helper()
	pushTransaction(ctx, t, mc.cfg, "edu", map[string]any{"events": []any{}, "ephemeral": evts})
}

// testTypingFromMatrix: the Matrix user typing in the portal (an m.typing EDU, as Synapse pushes it)
// is a chat state in the room (XEP-0085 §5.5) that the other occupants get: composing, then paused.
func (mc *mucScenario) testTypingFromMatrix(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	typing := func(users ...id.UserID) map[string]any {
		return map[string]any{"type": "m.typing", "room_id": mc.portal, "content": map[string]any{"user_ids": users}}
	}
	stateFromRoom := func(state string) func(harness.ReceivedMessage) bool {
		return func(m harness.ReceivedMessage) bool {
			from, err := jid.Parse(m.From)
			return err == nil && from.Bare().Equal(mc.room) && from.Resourcepart() != "carol" && m.Type == "groupchat" && m.ChatState == state && m.Body == ""
		}
	}
	cur := mc.carolC.Cursor()
	mc.pushEphemeral(ctx, t, typing(mc.user.UserID()))
	m, next, err := mc.carolC.WaitMessage(ctx, cur, stateFromRoom("composing"))
	if err != nil {
		t.Fatalf("carol never saw the Matrix user typing in the room: %v", err)
	}
	t.Logf("typing reached the room as %s's <composing/>", m.From)
	mc.pushEphemeral(ctx, t, typing())
	if _, _, err := mc.carolC.WaitMessage(ctx, next, stateFromRoom("paused")); err != nil {
		t.Fatalf("carol never saw the Matrix user stop typing: %v", err)
	}
}

// testMarkerFromMatrix: the Matrix user's read receipt (an m.receipt EDU) of an occupant's message
// that asked for markers is a displayed marker in the room naming the room's stanza-id (XEP-0333
// in groupchats); a receipt of a message that did not ask for markers sends nothing.
func (mc *mucScenario) testMarkerFromMatrix(t *testing.T) {
	mc.needPortal(t)
	ctx, cancel := stepCtx()
	defer cancel()
	carolSays := func(body string, markable bool) (id.EventID, string) {
		t.Helper()
		extra := ""
		if markable {
			extra = `<markable xmlns="urn:xmpp:chat-markers:0"/>`
		}
		raw := fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id="mkb-%d"><body>%s</body>%s</message>`,
			mc.room.String(), time.Now().UnixNano(), html.EscapeString(body), extra)
		if err := mc.carolC.SendRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
		evt, _, err := mc.user.WaitEvent(ctx, mc.portal, 0, harness.IsMessage(mc.ghost(mc.carol), body))
		if err != nil {
			t.Fatalf("%q never appeared in the portal: %v", body, err)
		}
		return evt.ID, mc.roomStanzaID(ctx, t, evt.ID, body)
	}
	receipt := func(evt id.EventID) map[string]any {
		return map[string]any{"type": "m.receipt", "room_id": mc.portal, "content": map[string]any{
			evt.String(): map[string]any{"m.read": map[string]any{mc.user.UserID().String(): map[string]any{"ts": time.Now().UnixMilli()}}},
		}}
	}
	displayed := func(m harness.ReceivedMessage) bool {
		from, err := jid.Parse(m.From)
		return err == nil && from.Bare().Equal(mc.room) && m.Type == "groupchat" && m.Displayed != ""
	}
	plainEvt, plainSID := carolSays(uniq("no markers asked"), false)
	markEvt, markSID := carolSays(uniq("tell me when you read this"), true)
	cur := mc.carolC.Cursor()
	mc.pushEphemeral(ctx, t, receipt(plainEvt))
	mc.pushEphemeral(ctx, t, receipt(markEvt))
	// The bridge handles a portal's events in order: a marker for the first receipt would come
	// first.
	m, _, err := mc.carolC.WaitMessage(ctx, cur, displayed)
	if err != nil {
		t.Fatalf("carol never got a displayed marker for her markable message: %v", err)
	}
	if m.Displayed != markSID {
		t.Fatalf("first displayed marker names %q, want the markable message's stanza-id %q (the other message's is %q)", m.Displayed, markSID, plainSID)
	}
	t.Logf("the receipt reached the room as %s's <displayed id=%q/>", m.From, m.Displayed)
}
