package bridge

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/puppet"
)

// Errors of the Matrix → group chat path, shown as message statuses.
var (
	errGroupOMEMO = errors.New("this group chat is marked OMEMO-encrypted, but OMEMO cannot be used in it")
	errNotInRoom  = errors.New("the bridge is not in this group chat right now (reconnecting, or you left it); use `join` to enter it again")
)

// handleMatrixGroupchat sends a Matrix message to the room as a
// type=groupchat message with our origin-id, OMEMO-encrypted when the
// portal is. The room reflects it to us with its stanza-id; bridgev2
// matches the reflection to this message by the origin-id (the transaction
// ID) instead of bridging it back.
func (c *Client) handleMatrixGroupchat(ctx context.Context, msg *bridgev2.MatrixMessage, room jid.JID) (*bridgev2.MatrixMessageResponse, error) {
	out := &outgoingMessage{To: room.Bare(), Type: stanza.GroupChatMessage, ID: newMessageID(), Body: bodyFromMatrix(msg.Content)}
	if msg.ReplyTo != nil {
		if r, ok := c.mucs.get(room); ok {
			out.ReplyTo = groupReply(r, msg.ReplyTo, c.account)
		}
	}
	s, stanzaOut, encrypted, err := c.groupchatOut(ctx, msg.Portal, room, out)
	if err != nil {
		return nil, err
	}
	txn := networkid.TransactionID(out.ID)
	db := &database.Message{
		SenderID:  puppet.UserID(c.account),
		Timestamp: time.Now(),
		Metadata:  &MessageMetadata{OriginID: out.ID},
	}
	msg.AddPendingToSave(db, txn, groupchatEcho)
	if err := s.Send(ctx, stanzaOut); err != nil {
		msg.RemovePending(txn)
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, fmt.Errorf("failed to send message to %s: %w", room, err)
	}
	c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
	zerolog.Ctx(ctx).Debug().Str("xmpp_id", out.ID).Stringer("room", room).Bool("omemo", encrypted).Msg("Sent groupchat message to XMPP")
	return &bridgev2.MatrixMessageResponse{DB: db, Pending: true}, nil
}

// groupchatOut builds the stanza of a message with a body for the room,
// OMEMO-encrypted when the portal is (never plaintext then).
func (c *Client) groupchatOut(ctx context.Context, p *bridgev2.Portal, room jid.JID, out *outgoingMessage) (*xmpp.Session, xml.TokenReader, bool, error) {
	r, ok := c.mucs.get(room)
	if !ok || !r.Joined {
		return nil, nil, false, groupSendStatus(errNotInRoom)
	}
	encrypted := false
	if meta, _ := p.Metadata.(*PortalMetadata); meta != nil && meta.OMEMO {
		if err := groupOMEMOAllowed(r); err != nil {
			// Never plaintext where the user expects encryption.
			return nil, nil, false, groupSendStatus(fmt.Errorf("%w: %w; nothing was sent", errGroupOMEMO, err))
		}
		encrypted = true
	}
	s := c.currentSession()
	if s == nil {
		return nil, nil, false, errNotConnected
	}
	if !encrypted {
		return s, groupchatStanza(out), false, nil
	}
	st, err := c.encryptGroupchat(ctx, s, r, out)
	if err != nil {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, nil, true, err
	}
	return s, st, true, nil
}

// sendGroupCorrection sends a XEP-0308 correction of the user's own
// groupchat message, naming it by the id we sent it with.
func (c *Client) sendGroupCorrection(ctx context.Context, msg *bridgev2.MatrixEdit, room jid.JID) error {
	if err := c.ownGroupMessage(msg.EditTarget); err != nil {
		return err
	}
	orig := groupOriginID(msg.EditTarget)
	if orig == "" {
		return fmt.Errorf("%w: the message has no id to correct", bridgev2.ErrEditTargetTooOld)
	}
	out := &outgoingMessage{To: room.Bare(), Type: stanza.GroupChatMessage, ID: newMessageID(), Body: bodyFromMatrix(msg.Content), Replace: orig}
	s, stanzaOut, _, err := c.groupchatOut(ctx, msg.Portal, room, out)
	if err != nil {
		return err
	}
	if err := s.Send(ctx, stanzaOut); err != nil {
		return fmt.Errorf("failed to send correction to %s: %w", room, err)
	}
	return nil
}

// groupchatStanza is a plaintext groupchat message: the body, the
// origin-id (also the id attribute) and an active chat state.
func groupchatStanza(out *outgoingMessage) xml.TokenReader {
	body := xmlstream.Wrap(xmlstream.Token(xml.CharData(out.Body)), xml.StartElement{Name: xml.Name{Local: "body"}})
	msg := stanza.Message{To: out.To.Bare(), ID: out.ID, Type: stanza.GroupChatMessage}
	return msg.Wrap(xmlstream.MultiReader(append([]xml.TokenReader{body}, out.payload()...)...))
}

// groupSendStatus is the message status for a Matrix message that was not
// sent to a group chat.
func groupSendStatus(err error) error {
	return groupSendStatusText(err, "Not sent: "+err.Error())
}

// groupSendStatusText is groupSendStatus with the text shown in Matrix.
func groupSendStatusText(err error, text string) error {
	return bridgev2.WrapErrorInStatus(err).
		WithStatus(event.MessageStatusFail).
		WithErrorReason(event.MessageStatusGenericError).
		WithMessage(text).
		WithIsCertain(true).
		WithSendNotice(true)
}
