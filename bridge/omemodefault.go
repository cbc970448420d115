package bridge

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
)

// The device lists are fetched by the client (xmppclient.DeviceFetches),
// also without a presence subscription.

// encryptByDefault decides for a 1:1 chat that is neither on nor off
// (omemo.default): encrypted when the contact publishes OMEMO devices, and
// the chat is marked so; otherwise plaintext, and the room is told once.
func (c *Client) encryptByDefault(ctx context.Context, p *bridgev2.Portal, meta *portal.Metadata, contact jid.JID) (bool, error) {
	set, err := c.omemo.Refresh(ctx, contact)
	if err != nil {
		// OMEMO is not up for this login (yet): do not guess.
		return false, fmt.Errorf("failed to check whether %s uses OMEMO: %w", contact.Bare(), err)
	}
	if len(set) > 0 {
		markEncrypted(meta)
		if err := p.Save(ctx); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to save portal after enabling OMEMO by default")
		}
		return true, nil
	}
	if !meta.PlainNoticed {
		meta.PlainNoticed = true
		if err := p.Save(ctx); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to save portal")
		}
		if p.MXID != "" {
			_, err := c.main.Bridge.Bot.SendMessage(ctx, p.MXID, event.EventMessage, &event.Content{
				Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: contact.Bare().String() +
					" publishes no OMEMO device: messages in this chat are sent NOT encrypted. They will be encrypted as soon as the contact has OMEMO (or `omemo on` refuses to send unencrypted)."},
			}, nil)
			if err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send the not-encrypted notice")
			}
		}
	}
	return false, nil
}
