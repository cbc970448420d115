package bridge

import (
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
)

// refusal marks err as an action XMPP cannot carry (an edit of a contact's message, a reaction
// XEP-0444 cannot hold, a message without the id a correction needs): bridgev2 then answers the
// Matrix event with "⚠️ Your message was not bridged: <err>" in the room. bridgev2's own errors
// of this kind (ErrEditTargetTooOld, …) are quiet by default — the reason only reached the log.
func refusal(err error) error {
	return bridgev2.WrapErrorInStatus(err).
		WithStatus(event.MessageStatusFail).
		WithErrorReason(event.MessageStatusUnsupported).
		WithErrorAsMessage().
		WithIsCertain(true).
		WithSendNotice(true)
}
