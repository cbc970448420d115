package bridge

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
)

// outgoingMessage is a message on its way to XMPP, before encryption.
type outgoingMessage struct {
	To   jid.JID
	Type stanza.MessageType
	// ID is both the id attribute and the origin-id, so that replies,
	// receipts and corrections from any client point back to it.
	ID   string
	Body string
}

// HandleMatrixMessage implements bridgev2.NetworkAPI: the Matrix -> XMPP
// path for text messages.
func (c *Client) HandleMatrixMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return nil, err
	}
	if chat.Kind != portal.DM {
		return nil, fmt.Errorf("%w: group chats are not bridged yet", bridgev2.ErrUnsupportedMessageType)
	}
	switch msg.Content.MsgType {
	case event.MsgText, event.MsgNotice, event.MsgEmote:
	default:
		return nil, bridgev2.ErrUnsupportedMessageType
	}
	out := &outgoingMessage{
		To:   chat.JID,
		Type: stanza.ChatMessage,
		ID:   random.String(24),
		Body: bodyFromMatrix(msg.Content),
	}
	if err := c.sendMessage(ctx, out); err != nil {
		return nil, err
	}
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{
			ID:        MakeMessageID(chat.JID, c.account, out.ID),
			SenderID:  puppet.UserID(c.account),
			Timestamp: time.Now(),
			Metadata:  &MessageMetadata{OriginID: out.ID},
		},
	}, nil
}

// sendMessage is the one place where a message leaves for XMPP, and where
// OMEMO encryption plugs in: it will replace the body with an <encrypted/>
// payload (plus a fallback body) for the recipient's devices.
func (c *Client) sendMessage(ctx context.Context, out *outgoingMessage) error {
	s := c.currentSession()
	if s == nil {
		return errNotConnected
	}
	payload := xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(out.Body)), xml.StartElement{Name: xml.Name{Local: "body"}}),
		sid.OriginID{ID: out.ID}.TokenReader(),
	)
	msg := stanza.Message{To: out.To, ID: out.ID, Type: out.Type}
	if err := s.Send(ctx, msg.Wrap(payload)); err != nil {
		return fmt.Errorf("failed to send message to %s: %w", out.To, err)
	}
	zerolog.Ctx(ctx).Debug().Str("xmpp_id", out.ID).Msg("Sent message to XMPP")
	return nil
}
