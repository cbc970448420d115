package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
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

// queuePrivate bridges a private message of an occupant (or ours to one,
// from another client) into the occupant's private portal: text, a shared
// file (downloaded into Matrix as in 1:1 chats) or a correction. An OMEMO
// message is a notice: the bridge does not decrypt private messages.
func (c *Client) queuePrivate(ctx context.Context, in *incoming, occ jid.JID) {
	log := zerolog.Ctx(ctx).With().Stringer("occupant", occ).Str("xmpp_id", in.XMPPID).Logger()
	if in.Body == "" {
		return
	}
	body := in.Body
	_, err := in.Message.OMEMO()
	encrypted := err == nil
	if encrypted {
		// The body is only the OMEMO fallback text.
		body = "sent an OMEMO-encrypted private message; private messages through a group chat are not decrypted by the bridge"
	}
	sender := bridgev2.EventSender{Sender: puppet.OccupantUserID(occ)}
	senderJID := occ
	if in.FromMe {
		sender = bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: puppet.UserID(c.account)}
		senderJID = c.account
	}
	ts := in.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	id := portal.MakeMessageID(occ, senderJID, in.XMPPID)
	log.Debug().Bool("from_me", in.FromMe).Bool("correction", in.Replace != "").Msg("Private message with a group chat occupant")
	meta := simplevent.EventMeta{
		Type:         bridgev2.RemoteEventMessage,
		PortalKey:    portal.PMKey(occ, c.login.ID),
		Sender:       sender,
		Timestamp:    ts,
		CreatePortal: true,
	}
	if in.Replace != "" && !encrypted {
		meta.Type, meta.CreatePortal = bridgev2.RemoteEventEdit, false
		// The archive cursor passes it once bridgev2 has handled it.
		c.ackAfterHandling(in.ack, &meta, nil)
		res := c.login.QueueRemoteEvent(&simplevent.Message[string]{
			EventMeta:     meta,
			Data:          body,
			ID:            id,
			TargetMessage: portal.MakeMessageID(occ, senderJID, in.Replace),
			ConvertEditFunc: func(ctx context.Context, p *bridgev2.Portal, _ bridgev2.MatrixAPI, existing []*database.Message, body string) (*bridgev2.ConvertedEdit, error) {
				// Message IDs name the room, not the nick: only a message of
				// this portal may be corrected from it.
				for _, m := range existing {
					if m.Room != p.PortalKey {
						return nil, fmt.Errorf("correction of a message in another chat (%s)", m.Room.ID)
					}
				}
				return msgconv.EditFromBody(existing, body)
			},
		})
		ackUnqueued(c.backgroundCtx(), in.ack, res)
		return
	}
	// The archive cursor passes it only once bridgev2 has stored it: a
	// crash before that finds it again in the catch-up.
	c.ackAfterHandling(in.ack, &meta, c.storedOnce(id))
	res := c.login.QueueRemoteEvent(&simplevent.Message[string]{
		EventMeta: meta,
		Data:      body,
		ID:        id,
		ConvertMessageFunc: func(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, body string) (*bridgev2.ConvertedMessage, error) {
			content := msgconv.MatrixFromBody(body)
			if !encrypted {
				if f := incomingMedia(in); f != nil {
					content = c.mediaContent(ctx, p, intent, f)
				}
			}
			return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
				Type:       event.EventMessage,
				Content:    content,
				DBMetadata: &portal.MessageMetadata{OriginID: in.OriginID},
			}}}, nil
		},
	})
	ackUnqueued(c.backgroundCtx(), in.ack, res)
}

// pmChatInfo is the portal info of a private chat with occupant occ.
func (c *Client) pmChatInfo(occ jid.JID) *bridgev2.ChatInfo {
	me := puppet.UserID(c.account)
	other := puppet.OccupantUserID(occ)
	name := fmt.Sprintf("%s (private, %s)", occ.Resourcepart(), occ.Bare())
	topic := fmt.Sprintf("Private messages with %s, an occupant of the group chat %s. The room relays them; they are not encrypted.", occ.Resourcepart(), occ.Bare())
	return &bridgev2.ChatInfo{
		Name:  &name,
		Topic: &topic,
		Type:  ptr.Ptr(database.RoomTypeDM),
		Members: &bridgev2.ChatMemberList{
			IsFull:      true,
			OtherUserID: other,
			MemberMap: bridgev2.ChatMemberMap{
				me: {EventSender: bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: me}, Membership: event.MembershipJoin,
					MemberEventExtra: map[string]any{"is_direct": true}},
				other: {EventSender: bridgev2.EventSender{Sender: other}, Membership: event.MembershipJoin, UserInfo: c.occupantInfo(occ.Bare(), occ.Resourcepart())},
			},
		},
		ExtraUpdates: func(ctx context.Context, p *bridgev2.Portal) bool {
			meta, _ := p.Metadata.(*portal.Metadata)
			return meta.SetKind(portal.PM)
		},
	}
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
			ID:        portal.MakeMessageID(occ, c.account, out.ID),
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
		Body: msgconv.BodyFromMatrix(ctx, msg.Content), Replace: target.ID}
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
