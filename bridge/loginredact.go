package bridge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"
)

// The password typed in the bot's room is redacted by bridgev2 (commands/login.go), which only
// logs a failure. A room the user made with the private_chat preset leaves the bot at power
// level 0, where it cannot remove the user's messages: the password then stayed readable and
// nobody was told. Here the login flow warns before the password is asked, and checks after it
// was sent whether it is really gone.

// passwordMessageMaxAge is how recent the user's message must be to be the password just typed.
const passwordMessageMaxAge = time.Minute

// redactPower reports the bot's power level in room and the level removing others' messages
// needs there.
func (xc *Connector) redactPower(ctx context.Context, room id.RoomID) (have, need int, err error) {
	pl, err := xc.Bridge.Matrix.GetPowerLevels(ctx, room)
	if err != nil {
		return 0, 0, fmt.Errorf("failed to get the power levels of %s: %w", room, err)
	}
	need = max(pl.Redact(), pl.GetEventLevel(event.EventRedaction))
	return pl.GetUserLevel(xc.Bridge.Bot.GetMXID()), need, nil
}

// redactionAdvice says how to let the bot remove password messages.
func (xc *Connector) redactionAdvice(need int) string {
	return fmt.Sprintf("give me (%s) power level %d in this room, or start a new direct chat with me "+
		"(Element's direct messages, or the `trusted_private_chat` preset, give me that power)", xc.Bridge.Bot.GetMXID(), need)
}

// passwordRoomWarning is the warning for the login's first step, "" when the bot can redact in
// the user's management room (or it cannot tell).
func (xc *Connector) passwordRoomWarning(ctx context.Context, user *bridgev2.User) string {
	if user == nil || user.ManagementRoom == "" {
		return ""
	}
	have, need, err := xc.redactPower(ctx, user.ManagementRoom)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Cannot tell whether the password message can be removed")
		return ""
	}
	if have >= need {
		return ""
	}
	return fmt.Sprintf("\n\n⚠️ I cannot delete your password message in this room (I have power level %d, removing "+
		"messages needs %d), so it would stay in the room's history. Send `cancel`, then %s; or delete the "+
		"message yourself right after sending it.", have, need, xc.redactionAdvice(need))
}

// checkPasswordRedacted finds the user's recent message in the management room that holds the
// password (bridgev2 collects the login fields one message each and submits them together, so it
// is not simply the newest one) and tells the user when it is still readable.
func (xc *Connector) checkPasswordRedacted(ctx context.Context, user *bridgev2.User, password string) {
	if user == nil || user.ManagementRoom == "" || password == "" {
		return
	}
	log := zerolog.Ctx(ctx)
	mc, ok := xc.Bridge.Matrix.(*matrix.Connector)
	if !ok {
		return
	}
	room := user.ManagementRoom
	resp, err := mc.Bot.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 30)
	if err != nil {
		log.Warn().Err(err).Msg("Failed to check that the password message was removed")
		return
	}
	var pw *event.Event
	for _, evt := range resp.Chunk {
		// A login through the provisioning API has no password message: the user's messages
		// are then older than the flow, or do not hold the password.
		if evt.Sender != user.MXID || evt.StateKey != nil || time.Since(time.UnixMilli(evt.Timestamp)) > passwordMessageMaxAge {
			continue
		}
		if evt.Unsigned.RedactedBecause != nil || len(evt.Content.VeryRaw) <= 2 {
			continue
		}
		if xc.holdsPassword(ctx, mc, evt, password) {
			pw = evt
			break
		}
	}
	if pw == nil {
		return
	}
	log.Warn().Stringer("event_id", pw.ID).Msg("The password message is still in the room")
	text := "⚠️ I could not delete the message with your password: it is still readable in this room's history. " +
		"Delete it yourself now (\"Remove\" in your client)."
	if have, need, err := xc.redactPower(ctx, room); err == nil && have < need {
		text += fmt.Sprintf(" I have power level %d here and removing messages needs %d: next time %s.", have, need, xc.redactionAdvice(need))
	}
	content := format.RenderMarkdown(text, true, false)
	content.MsgType = event.MsgNotice
	content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(pw.ID)
	if _, err := xc.Bridge.Bot.SendMessage(ctx, room, event.EventMessage, &event.Content{Parsed: &content}, nil); err != nil {
		log.Err(err).Msg("Failed to tell the user that the password message is still in the room")
	}
}

// holdsPassword reports whether a message event (decrypted first in an encrypted room) contains
// the password.
func (xc *Connector) holdsPassword(ctx context.Context, mc *matrix.Connector, evt *event.Event, password string) bool {
	if evt.Type == event.EventEncrypted {
		if mc.Crypto == nil {
			return false
		}
		if err := evt.Content.ParseRaw(evt.Type); err != nil {
			return false
		}
		dec, err := mc.Crypto.Decrypt(ctx, evt)
		if err != nil {
			return false
		}
		evt = dec
	} else if evt.Type != event.EventMessage {
		return false
	}
	if err := evt.Content.ParseRaw(event.EventMessage); err != nil && evt.Content.Parsed == nil {
		return false
	}
	msg := evt.Content.AsMessage()
	return msg != nil && strings.Contains(msg.Body, password)
}
