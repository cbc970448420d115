package bridge

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// An identity key that changed on a known device id is never trusted
// silently: the client queues a TaskKeyChanged (xmppclient.OMEMO.AfterTrust),
// and the user gets this notice in the chat.

// keyChangeNotice is the notice about a changed identity key.
func keyChangeNotice(sender string, device uint32, fingerprint string) string {
	return fmt.Sprintf("⚠️ The OMEMO identity key of %s's device %d changed (new fingerprint `%s`). "+
		"Messages from it are marked untrusted and nothing is encrypted for it until you compare the fingerprint "+
		"with the contact and run `omemo trust %s %d` (or `verify`). If the contact did not reinstall, someone may be impersonating them.",
		sender, device, fingerprint, sender, device)
}

// sendKeyChangeNotice posts keyChangeNotice in the chat the message came
// in (and in the sender's 1:1 chat, for a room message).
func (c *Client) sendKeyChangeNotice(ctx context.Context, t xmppclient.OMEMOTask) {
	text := keyChangeNotice(t.Peer.String(), t.Device, t.Fingerprint)
	keys := []networkid.PortalKey{portal.DMKey(t.Peer, c.login.ID)}
	if t.Room {
		keys = append([]networkid.PortalKey{c.mucKey(t.Chat)}, keys...)
	}
	for _, key := range keys {
		p, err := c.main.Bridge.GetExistingPortalByKey(ctx, key)
		if err != nil || p == nil || p.MXID == "" {
			continue
		}
		_, err = c.main.Bridge.Bot.SendMessage(ctx, p.MXID, event.EventMessage, &event.Content{
			Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: text},
		}, nil)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send OMEMO key change notice")
		}
	}
}
