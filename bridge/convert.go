package bridge

import (
	"context"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
)

// The Matrix side of a received 1:1 message: msgconv converts the content,
// this file adds what needs the bridge's database (reply targets) and the
// OMEMO state of the portal.

// convertIncoming builds the Matrix message for a received XMPP message.
func (c *Client) convertIncoming(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, in *incomingMessage) (*bridgev2.ConvertedMessage, error) {
	content := msgconv.MatrixFromBody(in.Body)
	if f := incomingMedia(in); f != nil {
		content = c.mediaContent(ctx, p, intent, f)
	}
	c.omemoConvert(ctx, p, in, content)
	return &bridgev2.ConvertedMessage{
		ReplyTo: c.replyTarget(ctx, p, in),
		Parts: []*bridgev2.ConvertedMessagePart{{
			ID:         "",
			Type:       event.EventMessage,
			Content:    content,
			DBMetadata: &portal.MessageMetadata{OriginID: in.OriginID, StanzaID: in.StanzaID, Markable: in.Markable},
		}},
	}, nil
}

// replyTarget finds the bridged message an XMPP reply points at. The reply's
// to names the author; when it is missing either side of the chat may have
// written the message.
func (c *Client) replyTarget(ctx context.Context, _ *bridgev2.Portal, in *incomingMessage) *networkid.MessageOptionalPartID {
	if in.ReplyTo == nil {
		return nil
	}
	var authors []jid.JID
	if to := in.ReplyTo.To.Bare(); !to.Equal(jid.JID{}) {
		authors = []jid.JID{to}
	}
	if id := c.findMessage(ctx, in.Peer, in.ReplyTo.ID, authors...); id != "" {
		return &networkid.MessageOptionalPartID{MessageID: id}
	}
	return nil
}

// convertEdit builds the Matrix edit for a XEP-0308 correction.
func (c *Client) convertEdit(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, in *incomingMessage) (*bridgev2.ConvertedEdit, error) {
	return msgconv.EditTo(existing, c.correctedContent(ctx, p, intent, in.Body, sharedFile(&in.Message, in.Body, in.OMEMO)))
}
