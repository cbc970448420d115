package bridge

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Trust follow-ups of a decrypted message. A device that is not trusted
// may simply not be in the stored device list yet (a room member whose
// list we never fetched): its list is fetched in the background, so that
// later messages are judged on it. An identity key that changed on a known
// device id is never trusted silently: the user gets a notice in the chat.

// afterTrust queues what msg's trust asks for.
func (c *Client) afterTrust(ctx context.Context, job omemoJob, msg *omemoxmpp.Message) {
	if msg.KeyChanged {
		c.omemoEnqueue(ctx, xmppclient.OMEMOTask{Kind: xmppclient.TaskKeyChanged, Peer: job.Sender.Bare(), Device: msg.Sender.Device,
			Fingerprint: msg.Fingerprint, Room: job.Room, Chat: job.Peer.Bare()})
	}
	if !msg.Trusted && !job.FromMe && c.main.Config.OMEMO.Policy() == omemo.PolicyBTBV {
		c.omemoEnqueue(ctx, xmppclient.OMEMOTask{Kind: xmppclient.TaskFetchDevices, Peer: job.Sender.Bare()})
	}
}

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
