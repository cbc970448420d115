package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
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
