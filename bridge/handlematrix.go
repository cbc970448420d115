package bridge

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/correct"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmpp/retract"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// outgoingMessage is a message on its way to XMPP, before encryption.
type outgoingMessage struct {
	To   jid.JID
	Type stanza.MessageType
	// ID is both the id attribute and the origin-id, so that replies,
	// receipts and corrections from any client point back to it.
	ID   string
	Body string
	// Replace is the id of our earlier message this one corrects.
	Replace string
	// ReplyTo names the message this one replies to.
	ReplyTo *reply.Reply
	// Media is set for a shared file (media.go).
	Media *outgoingMedia
}

var (
	_ bridgev2.EditHandlingNetworkAPI        = (*Client)(nil)
	_ bridgev2.ReadReceiptHandlingNetworkAPI = (*Client)(nil)
	_ bridgev2.TypingHandlingNetworkAPI      = (*Client)(nil)
	_ bridgev2.RedactionHandlingNetworkAPI   = (*Client)(nil)
)

// HandleMatrixMessage implements bridgev2.NetworkAPI: the Matrix -> XMPP
// path for text messages.
func (c *Client) HandleMatrixMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return nil, err
	}
	if err := c.awaitReady(ctx); err != nil {
		return nil, err
	}
	switch msg.Content.MsgType {
	case event.MsgText, event.MsgNotice, event.MsgEmote:
	case event.MsgImage, event.MsgVideo, event.MsgAudio, event.MsgFile:
		if chat.Kind == portal.DM {
			return c.handleMatrixMedia(ctx, msg, chat.JID)
		}
	default:
		return nil, bridgev2.ErrUnsupportedMessageType
	}
	if chat.Kind == portal.MUC {
		return c.handleMatrixGroupchat(ctx, msg, chat.JID)
	}
	out := &outgoingMessage{
		To:   chat.JID,
		Type: stanza.ChatMessage,
		ID:   matrixMessageID(msg.Event),
		Body: msgconv.BodyFromMatrix(ctx, msg.Content),
	}
	if msg.ReplyTo != nil {
		if target, err := portal.ParseMessageID(msg.ReplyTo.ID); err == nil {
			author, _ := jid.Parse(target.Sender)
			out.ReplyTo = &reply.Reply{To: author, ID: target.ID}
		}
	}
	already, err := c.main.intake.sendOnce(ctx, eventID(msg.Event), out.ID, func() error {
		return c.sendMessage(ctx, out)
	}, c.archivedCheck(ctx, out))
	if err != nil {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	if !already {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
	}
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{
			ID:        portal.MakeMessageID(chat.JID, c.account, out.ID),
			SenderID:  puppet.UserID(c.account),
			Timestamp: time.Now(),
			Metadata:  &portal.MessageMetadata{OriginID: out.ID},
		},
	}, nil
}

// sendMessage is the one place where a 1:1 message leaves for XMPP;
// wrapOutgoing (omemochat.go) adds the body, plain or as an OMEMO
// <encrypted/> payload with a fallback body, as the portal decides.
func (c *Client) sendMessage(ctx context.Context, out *outgoingMessage) error {
	return c.withSession(ctx, func(s *xmpp.Session) error {
		// The body is added by wrapOutgoing, plain or OMEMO-encrypted.
		payload := append([]xml.TokenReader{markers.Markable{}.TokenReader()}, out.payload()...)
		msg := stanza.Message{To: out.To, ID: out.ID, Type: out.Type}
		r, err := c.wrapOutgoing(ctx, msg, out, payload)
		if err != nil {
			return err
		}
		if err := s.Send(ctx, r); err != nil {
			return fmt.Errorf("%w: failed to send message to %s: %w", errSessionLost, out.To, err)
		}
		zerolog.Ctx(ctx).Debug().Str("xmpp_id", out.ID).Msg("Sent message to XMPP")
		return nil
	})
}

// payload is what every outgoing message with a body carries besides the
// body, in 1:1 chats and group chats: the origin-id, an active chat state
// and the references to an earlier message.
func (out *outgoingMessage) payload() []xml.TokenReader {
	payload := []xml.TokenReader{
		sid.OriginID{ID: out.ID}.TokenReader(),
		chatstates.Active.TokenReader(),
	}
	if out.Replace != "" {
		payload = append(payload, correct.Replace{ID: out.Replace}.TokenReader())
	}
	if out.ReplyTo != nil {
		payload = append(payload, out.ReplyTo.TokenReader())
	}
	return payload
}

// sendSignal sends a bodyless message (chat state, marker): these carry no
// content, so they bypass sendMessage and its encryption.
func (c *Client) sendSignal(ctx context.Context, r xml.TokenReader) error {
	s := c.currentSession()
	if s == nil {
		return xmppclient.ErrNotConnected
	}
	return s.Send(ctx, r)
}

// HandleMatrixEdit implements bridgev2.EditHandlingNetworkAPI with a
// XEP-0308 correction of our own message.
func (c *Client) HandleMatrixEdit(ctx context.Context, msg *bridgev2.MatrixEdit) error {
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return err
	}
	if err := refuseFileEdit(msg.Content); err != nil {
		return err
	}
	if err := c.awaitReady(ctx); err != nil {
		return err
	}
	target, err := portal.ParseMessageID(msg.EditTarget.ID)
	if err != nil {
		return err
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupCorrection(ctx, msg, chat.JID)
	}
	if target.Sender != c.account.String() {
		return refusal(errors.New("only your own messages can be corrected on XMPP"))
	}
	out := &outgoingMessage{
		To:      chat.JID,
		Type:    stanza.ChatMessage,
		ID:      matrixMessageID(msg.Event),
		Body:    msgconv.BodyFromMatrix(ctx, msg.Content),
		Replace: target.ID,
	}
	if _, err := c.main.intake.sendOnce(ctx, eventID(msg.Event), out.ID, func() error {
		return c.sendMessage(ctx, out)
	}, c.archivedCheck(ctx, out)); err != nil {
		return err
	}
	// bridgev2 saves EditTarget after this returns.
	if meta, ok := msg.EditTarget.Metadata.(*portal.MessageMetadata); ok {
		meta.CorrectionIDs = append(meta.CorrectionIDs, out.ID)
	}
	return nil
}

// HandleMatrixMessageRemove implements bridgev2.RedactionHandlingNetworkAPI
// with a XEP-0424 retraction of our own message.
func (c *Client) HandleMatrixMessageRemove(ctx context.Context, msg *bridgev2.MatrixMessageRemove) error {
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return err
	}
	if err := c.awaitReady(ctx); err != nil {
		return err
	}
	target, err := portal.ParseMessageID(msg.TargetMessage.ID)
	if err != nil {
		return err
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupRetraction(ctx, chat.JID, msg.TargetMessage)
	}
	if target.Sender != c.account.String() {
		return refusal(errors.New("only your own messages can be retracted on XMPP"))
	}
	m := stanza.Message{To: chat.JID, ID: matrixMessageID(msg.Event), Type: stanza.ChatMessage}
	_, err = c.main.intake.sendOnce(ctx, eventID(msg.Event), m.ID, func() error {
		return c.withSession(ctx, func(s *xmpp.Session) error {
			if err := s.Send(ctx, retract.Message(m, target.ID)); err != nil {
				return fmt.Errorf("%w: failed to send retraction: %w", errSessionLost, err)
			}
			return nil
		})
	}, nil) // retractions carry no body: servers do not archive them
	return err
}

// HandleMatrixReadReceipt implements bridgev2.ReadReceiptHandlingNetworkAPI
// with a XEP-0333 displayed marker, sent only for messages that asked for
// markers.
func (c *Client) HandleMatrixReadReceipt(ctx context.Context, msg *bridgev2.MatrixReadReceipt) error {
	if msg.ExactMessage == nil {
		return nil
	}
	meta, ok := msg.ExactMessage.Metadata.(*portal.MessageMetadata)
	if !ok || !meta.Markable {
		return nil
	}
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return err
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupMarker(ctx, chat.JID, msg)
	}
	if chat.Kind != portal.DM {
		return nil
	}
	target, err := portal.ParseMessageID(msg.ExactMessage.ID)
	if err != nil || target.Sender != chat.JID.String() {
		return err
	}
	m := stanza.Message{To: chat.JID, ID: random.String(24), Type: stanza.ChatMessage}
	return c.sendSignal(ctx, markers.Message(m, markers.Marker{Kind: markers.Displayed, ID: target.ID}))
}

// HandleMatrixTyping implements bridgev2.TypingHandlingNetworkAPI with
// XEP-0085 chat states.
func (c *Client) HandleMatrixTyping(ctx context.Context, msg *bridgev2.MatrixTyping) error {
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return err
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupTyping(ctx, chat.JID, msg.IsTyping)
	}
	if chat.Kind != portal.DM {
		return nil
	}
	state := chatstates.Paused
	if msg.IsTyping {
		state = chatstates.Composing
	}
	m := stanza.Message{To: chat.JID, ID: random.String(24), Type: stanza.ChatMessage}
	return c.sendSignal(ctx, chatstates.Message(m, state))
}

// bridgeIDPrefix marks the ids of the messages the bridge sends for Matrix messages. Those are in
// Matrix already, so when one comes back from the archive (a restart cut bridgev2 off between
// sending it and storing it) it is not bridged a second time.
const bridgeIDPrefix = "mxb-"

func newMessageID() string { return bridgeIDPrefix + random.String(20) }

// matrixMessageID is the XMPP id of the stanza sent for a Matrix event:
// derived from the event ID (intakeXMPPID) so that a stanza sent again
// after a crash is recognisably the same message; random for the rare
// caller without an event.
func matrixMessageID(evt *event.Event) string {
	if evt == nil || evt.ID == "" {
		return newMessageID()
	}
	return intakeXMPPID(evt.ID)
}

func eventID(evt *event.Event) id.EventID {
	if evt == nil {
		return ""
	}
	return evt.ID
}
