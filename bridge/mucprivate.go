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
// the nick is, not the account behind it). Text only, both ways, never
// OMEMO: the occupant's devices are those of an account the room may hide.

// errPMUnsupported answers what private chats with occupants cannot carry.
var errPMUnsupported = errors.New("private messages with group chat occupants carry text only")

// pmFeatures is what a private chat with an occupant supports.
var pmFeatures = &event.RoomFeatures{
	ID:            "net.mxomemo.xmpp.capabilities.pm.2026_12_07.1",
	Formatting:    dmFeatures.Formatting,
	MaxTextLength: dmFeatures.MaxTextLength,
}

// privateOccupant reports whether in is a private message with a room
// occupant and returns the occupant (xmppclient.PrivateOccupant).
func (c *Client) privateOccupant(in *incomingMessage) (jid.JID, bool) {
	return xmppclient.PrivateOccupant(in.Raw, in.FromMe, c.mucs)
}

// queuePrivate bridges a private message of an occupant (or ours to one,
// from another client) into the occupant's private portal.
func (c *Client) queuePrivate(ctx context.Context, in *incomingMessage, occ jid.JID) {
	log := zerolog.Ctx(ctx).With().Stringer("occupant", occ).Str("xmpp_id", in.XMPPID).Logger()
	if in.Body == "" {
		return
	}
	body := in.Body
	if _, err := in.Message.OMEMO(); err == nil {
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
	log.Debug().Bool("from_me", in.FromMe).Msg("Private message with a group chat occupant")
	c.login.QueueRemoteEvent(&simplevent.Message[string]{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventMessage,
			PortalKey:    portal.PMKey(occ, c.login.ID),
			Sender:       sender,
			Timestamp:    ts,
			CreatePortal: true,
		},
		Data: body,
		ID:   id,
		ConvertMessageFunc: func(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, body string) (*bridgev2.ConvertedMessage, error) {
			return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
				Type:    event.EventMessage,
				Content: msgconv.MatrixFromBody(body),
			}}}, nil
		},
	})
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

// handleMatrixPrivate sends a Matrix text message of a private portal to
// the occupant, in plaintext as the portal's topic says.
func (c *Client) handleMatrixPrivate(ctx context.Context, msg *bridgev2.MatrixMessage, occ jid.JID) (*bridgev2.MatrixMessageResponse, error) {
	switch msg.Content.MsgType {
	case event.MsgText, event.MsgNotice, event.MsgEmote:
	default:
		return nil, errPMUnsupported
	}
	xmppID := matrixMessageID(msg.Event)
	out := &xmppclient.Outgoing{To: occ, Private: true, ID: xmppID, Body: msgconv.BodyFromMatrix(ctx, msg.Content)}
	already, err := c.main.intake.sendOnce(ctx, eventID(msg.Event), xmppID, func() error {
		return c.Send(ctx, sendTarget{portal: msg.Portal, private: true}, out)
	}, nil)
	if err != nil {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	if !already {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
	}
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{
			ID:        portal.MakeMessageID(occ, c.account, xmppID),
			SenderID:  puppet.UserID(c.account),
			Timestamp: time.Now(),
			Metadata:  &portal.MessageMetadata{OriginID: xmppID},
		},
	}, nil
}
