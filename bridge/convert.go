package bridge

import (
	"cmp"
	"context"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
)

// The Matrix side of a received message, 1:1 or group chat: msgconv
// converts the content, this file adds what needs the bridge's database
// (reply targets) and the OMEMO state of the portal.

// convertMessage builds the Matrix message for a received XMPP message
// that bridgev2 did not match to one it sent.
func (c *Client) convertMessage(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, in *incoming) (*bridgev2.ConvertedMessage, error) {
	if isOwnReflection(in) {
		// Sent by the bridge for a Matrix message whose pending entry is
		// gone (a restart in between): it is in Matrix already.
		return nil, bridgev2.ErrIgnoringRemoteEvent
	}
	if in.Room != nil && in.Room.Encrypted && in.OMEMO == nil {
		// Never the fallback body.
		return nil, bridgev2.ErrIgnoringRemoteEvent
	}
	content := msgconv.MatrixFromBody(in.Body)
	if f := incomingMedia(in); f != nil {
		content = c.mediaContent(ctx, p, intent, f)
	}
	c.omemoConvert(ctx, p, in, content)
	var replyTo *networkid.MessageOptionalPartID
	dbMeta := &portal.MessageMetadata{OriginID: in.OriginID, StanzaID: in.StanzaID, Markable: in.Markable}
	switch {
	case in.private():
		// No replies in private chats with occupants (mucprivate.go).
	case in.Room != nil:
		replyTo = c.groupReplyTarget(ctx, in)
		// Corrections name the message by the id its sender gave it.
		dbMeta.OriginID, dbMeta.OccupantID = cmp.Or(in.OriginID, in.XMPPID), in.Room.OccupantID
	default:
		replyTo = c.replyTarget(ctx, p, in)
	}
	return &bridgev2.ConvertedMessage{
		ReplyTo: replyTo,
		Parts: []*bridgev2.ConvertedMessagePart{{
			Type:       event.EventMessage,
			Content:    content,
			DBMetadata: dbMeta,
		}},
	}, nil
}

// convertEdit builds the Matrix edit for a XEP-0308 correction.
func (c *Client) convertEdit(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, in *incoming) (*bridgev2.ConvertedEdit, error) {
	if err := privateEditInPortal(p, in, existing); err != nil {
		return nil, err
	}
	return msgconv.EditTo(existing, c.correctedContent(ctx, p, intent, in.Body, incomingMedia(in)))
}

// replyTarget finds the bridged message an XMPP reply points at. The reply's
// to names the author; when it is missing either side of the chat may have
// written the message.
func (c *Client) replyTarget(ctx context.Context, _ *bridgev2.Portal, in *incoming) *networkid.MessageOptionalPartID {
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
