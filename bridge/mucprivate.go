package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Private messages with room occupants (XEP-0045 §7.5): a type=chat
// message to or from room@service/nick, marked with an empty
// <x xmlns='http://jabber.org/protocol/muc#user'/>. Each occupant the login
// talks to privately gets a portal of its own (portal.PMKey), named after
// the nick and the room, with the occupant's ghost (the room decides who
// the nick is, not the account behind it). Text, files and corrections
// both ways, never OMEMO: the occupant's devices are those of an account
// the room may hide (xmppclient.ErrPrivateEncrypted).

// errPMUnsupported answers what private chats with occupants cannot carry.
var errPMUnsupported = errors.New("private messages through a group chat carry text, files and corrections only (no reactions, retractions or OMEMO)")

// pmFeatures is what a private chat with an occupant supports.
var pmFeatures = &event.RoomFeatures{
	ID:            "net.mxomemo.xmpp.capabilities.pm.2026_12_07.2",
	Formatting:    dmFeatures.Formatting,
	MaxTextLength: dmFeatures.MaxTextLength,
	File:          msgconv.FileFeatures,
	Edit:          event.CapLevelFullySupported,
}

// privateOccupant reports whether in is a private message with a room
// occupant and returns the occupant (xmppclient.PrivateOccupant).
func (c *Client) privateOccupant(in *incoming) (jid.JID, bool) {
	return xmppclient.PrivateOccupant(in.Raw, in.FromMe, c.mucs)
}

// privateEncryptedText replaces the body (only the OMEMO fallback text) of
// an encrypted private message: the bridge does not decrypt them.
const privateEncryptedText = "sent an OMEMO-encrypted private message; private messages through a group chat are not decrypted by the bridge"

// markPrivateEncrypted is the decryption step of a private message: an
// OMEMO message becomes a notice that it was not decrypted (a new message,
// also when it corrects one: its text is unknown).
func markPrivateEncrypted(in *incoming) {
	if in.Body == "" {
		return
	}
	if _, err := in.Message.OMEMO(); err == nil {
		in.Body, in.Replace, in.privateEncrypted = privateEncryptedText, "", true
	}
}

// bridgedBefore reports whether a private message was bridged by an
// earlier version, under the ID without the nick
// (portal.LegacyPrivateMessageID): then bridgev2 would not recognise it by
// its new ID.
func (c *Client) bridgedBefore(ctx context.Context, in *incoming) bool {
	_, senderJID := c.sender(in)
	return c.messageExists(ctx, portal.LegacyPrivateMessageID(in.Occupant, senderJID, in.XMPPID))
}

// editTarget is the ID of the message a correction corrects: the sender's
// own, in the same chat; for a private message the legacy ID when only
// that is stored (bridged by an earlier version).
func (c *Client) editTarget(ctx context.Context, in *incoming) networkid.MessageID {
	target := c.refID(in, in.Replace)
	if !in.private() || c.messageExists(ctx, target) {
		return target
	}
	_, senderJID := c.sender(in)
	if legacy := portal.LegacyPrivateMessageID(in.Occupant, senderJID, in.Replace); c.messageExists(ctx, legacy) {
		return legacy
	}
	return target
}

// messageExists reports whether bridgev2 stored a message with id.
func (c *Client) messageExists(ctx context.Context, id networkid.MessageID) bool {
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, id)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to look up a bridged message")
	}
	return err == nil && msg != nil
}

// privateEditInPortal refuses a private correction whose target is in
// another chat: a legacy ID names the room, not the nick, so another
// occupant's message could match it.
func privateEditInPortal(p *bridgev2.Portal, in *incoming, existing []*database.Message) error {
	if !in.private() {
		return nil
	}
	for _, m := range existing {
		if m.Room != p.PortalKey {
			return fmt.Errorf("correction of a message in another chat (%s)", m.Room.ID)
		}
	}
	return nil
}

// pmChatInfo is the portal info of a private chat with occupant occ
// (portal.PMInfo).
func (c *Client) pmChatInfo(occ jid.JID) *bridgev2.ChatInfo {
	return portal.PMInfo(occ, c.selfSender(), bridgev2.ChatMember{
		EventSender: bridgev2.EventSender{Sender: puppet.OccupantUserID(occ)},
		UserInfo:    c.occupantInfo(occ.Bare(), occ.Resourcepart()),
	})
}

// handleMatrixPrivate sends a Matrix message of a private portal to the
// occupant, in plaintext as the portal's topic says: text, or a file
// uploaded to the account's XEP-0363 service and shared as its link with
// XEP-0066 (a caption follows as a second message).
func (c *Client) handleMatrixPrivate(ctx context.Context, msg *bridgev2.MatrixMessage, occ jid.JID) (*bridgev2.MatrixMessageResponse, error) {
	out := &xmppclient.Outgoing{To: occ, Private: true, ID: matrixMessageID(msg.Event)}
	media := false
	switch msg.Content.MsgType {
	case event.MsgText, event.MsgNotice, event.MsgEmote:
		out.Body = msgconv.BodyFromMatrix(ctx, msg.Content)
	case event.MsgImage, event.MsgVideo, event.MsgAudio, event.MsgFile:
		media = true
	default:
		return nil, errPMUnsupported
	}
	target := sendTarget{portal: msg.Portal, private: true}
	already, err := c.main.intake.sendOnce(ctx, eventID(msg.Event), out.ID, func() error {
		if media && out.Media == nil {
			// Uploaded once, also when the send is retried.
			if err := c.awaitReady(ctx); err != nil {
				return err
			}
			s := c.currentSession()
			if s == nil {
				return xmppclient.ErrNotConnected
			}
			if err := c.uploadMatrixMedia(ctx, s, msg.Content, false, out); err != nil {
				return err
			}
		}
		return c.Send(ctx, target, out)
	}, nil)
	if err != nil {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	if !already {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
		if caption := msgconv.Caption(msg.Content); media && caption != "" {
			capOut := &xmppclient.Outgoing{To: occ, Private: true, ID: newMessageID(), Body: caption}
			if err := c.Send(ctx, target, capOut); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send the caption of a file")
			}
		}
	}
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{
			ID:        portal.PrivateMessageID(occ, c.account, out.ID),
			SenderID:  puppet.UserID(c.account),
			Timestamp: time.Now(),
			Metadata:  &portal.MessageMetadata{OriginID: out.ID},
		},
	}, nil
}

// sendPrivateCorrection sends a Matrix edit of our own private message as
// a XEP-0308 correction to the occupant.
func (c *Client) sendPrivateCorrection(ctx context.Context, msg *bridgev2.MatrixEdit, occ jid.JID, target portal.ParsedMessageID) error {
	if target.Sender != c.account.String() {
		return refusal(errors.New("only your own messages can be corrected on XMPP"))
	}
	out := &xmppclient.Outgoing{To: occ, Private: true, ID: matrixMessageID(msg.Event),
		Body: msgconv.BodyFromMatrix(ctx, msg.Content), Replace: target.PrivateGivenID()}
	if _, err := c.main.intake.sendOnce(ctx, eventID(msg.Event), out.ID, func() error {
		return c.Send(ctx, sendTarget{portal: msg.Portal, private: true}, out)
	}, nil); err != nil {
		return err
	}
	if meta, ok := msg.EditTarget.Metadata.(*portal.MessageMetadata); ok {
		meta.CorrectionIDs = append(meta.CorrectionIDs, out.ID)
	}
	return nil
}
