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
)

// Trust follow-ups of a decrypted message. A device that is not trusted
// may simply not be in the stored device list yet (a room member whose
// list we never fetched): its list is fetched in the background, so that
// later messages are judged on it. An identity key that changed on a known
// device id is never trusted silently: the user gets a notice in the chat.

// afterTrust queues what msg's trust asks for.
func (c *Client) afterTrust(ctx context.Context, job omemoJob, msg *omemoxmpp.Message) {
	if msg.KeyChanged {
		c.omemoEnqueue(ctx, omemoTask{kind: taskKeyChanged, peer: job.Sender.Bare(), device: msg.Sender.Device,
			fingerprint: msg.Fingerprint, room: job.Room, chat: job.Peer.Bare()})
	}
	if !msg.Trusted && !job.FromMe && c.main.Config.OMEMO.Policy() == omemo.PolicyBTBV {
		c.omemoEnqueue(ctx, omemoTask{kind: taskFetchDevices, peer: job.Sender.Bare()})
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
func (c *Client) sendKeyChangeNotice(ctx context.Context, t omemoTask) {
	text := keyChangeNotice(t.peer.String(), t.device, t.fingerprint)
	keys := []networkid.PortalKey{portal.DMKey(t.peer, c.login.ID)}
	if t.room {
		keys = append([]networkid.PortalKey{c.mucKey(t.chat)}, keys...)
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
