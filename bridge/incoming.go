package bridge

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// The one XMPP → Matrix message pipeline of 1:1 chats, group chats and
// private chats with room occupants: after classification (handlexmpp.go)
// each becomes an incoming, is decrypted by decryptIncoming (decrypt.go),
// queued for bridgev2 by bridgeIncoming / queueMessage and converted by
// convertMessage. Where the protocols differ (a room's message is named by
// its stanza-id, its sender is an occupant; a private message's chat is the
// occupant) the step looks at in.Room or in.Occupant.

// incoming is one XMPP message as the connector bridges it, in a 1:1 chat
// or a group chat.
type incoming struct {
	// Message holds what every message has: Peer is the chat (the
	// contact's or the room's bare JID), the ids, Body (the plaintext once
	// decrypted), Timestamp, the references and Raw. Carbon, ChatState
	// and Markers are only set in 1:1 chats.
	xmppclient.Message

	// Room is set for group chat messages, nil in 1:1 chats.
	Room *roomFields
	// Occupant is set for a private message with a room occupant
	// (room@service/nick, mucprivate.go): the chat is the occupant's own
	// portal, and the message is never decrypted.
	Occupant jid.JID
	// privateEncrypted: a private message that was OMEMO-encrypted; its
	// body is a notice saying the bridge does not decrypt it.
	privateEncrypted bool

	// Sender is who sent a group chat message on the Matrix side (an
	// occupant's ghost, or the user); 1:1 messages derive theirs from
	// FromMe (see sender).
	Sender bridgev2.EventSender
	// ID is a group chat message's bridgev2 ID: the room's stanza-id when
	// it stamps one, which is also what replies in rooms name. 1:1
	// messages derive theirs (see messageID).
	ID networkid.MessageID
	// TxnID is, for our own group chat messages, the id we sent it with:
	// the room reflects it, and bridgev2 matches it to the pending Matrix
	// message.
	TxnID networkid.TransactionID

	// OMEMO is set by decryption for OMEMO messages (decrypt.go).
	OMEMO *omemoIncoming

	// ack acknowledges the message's archive id in the account's or the
	// room's catch-up cursor once bridgev2 handled it (delivery.go); nil
	// when untracked.
	ack *xmppclient.Ack
	// catchUpSeq is the catch-up an archive result belongs to.
	catchUpSeq uint64
}

// roomFields are what only group chat messages have.
type roomFields struct {
	Kind xmppclient.GroupchatKind
	Nick string
	// Subject is the room's new subject (Kind GroupchatSubject).
	Subject string
	// Encrypted is set for messages with an OMEMO <encrypted/> element:
	// their body is only a fallback and was dropped.
	Encrypted bool
	// OccupantID is the room's XEP-0421 id of the sender.
	OccupantID string
	// Signals are the stanza's chat state and markers.
	Signals xmppclient.Signals
	// ShowsJIDs says whether the room shows occupants' real JIDs;
	// RealJID is then the sender's (zero when unknown).
	ShowsJIDs bool
	RealJID   jid.JID
}

// sender is who sent in, as bridgev2 and as a JID (for a group chat
// message the occupant's real JID, zero when the room hides it).
func (c *Client) sender(in *incoming) (bridgev2.EventSender, jid.JID) {
	if in.private() {
		if in.FromMe {
			return bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: puppet.UserID(c.account)}, c.account
		}
		return bridgev2.EventSender{Sender: puppet.OccupantUserID(in.Occupant)}, in.Occupant
	}
	if in.Room != nil {
		if in.Sender.IsFromMe {
			return in.Sender, c.account
		}
		return in.Sender, in.Room.RealJID
	}
	if in.FromMe {
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: puppet.UserID(c.account)}, c.account
	}
	return bridgev2.EventSender{Sender: puppet.UserID(in.Peer)}, in.Peer
}

// private reports whether in is a private message with a room occupant.
func (in *incoming) private() bool { return !in.Occupant.Equal(jid.JID{}) }

// messageID is in's bridgev2 message ID.
func (c *Client) messageID(in *incoming) networkid.MessageID {
	if in.Room != nil {
		return in.ID
	}
	return c.refID(in, in.XMPPID)
}

// refID is the bridgev2 message ID of the message the sender of a 1:1 or
// private message gave xmppID (itself, or the one it corrects or
// retracts).
func (c *Client) refID(in *incoming, xmppID string) networkid.MessageID {
	_, senderJID := c.sender(in)
	if in.private() {
		return portal.PrivateMessageID(in.Occupant, senderJID, xmppID)
	}
	return portal.MakeMessageID(in.Peer, senderJID, xmppID)
}

// portalKey is the portal of in's chat.
func (c *Client) portalKey(in *incoming) networkid.PortalKey {
	if in.private() {
		return portal.PMKey(in.Occupant, c.login.ID)
	}
	if in.Room != nil {
		return c.mucKey(in.Peer)
	}
	return portal.DMKey(in.Peer, c.login.ID)
}

func (c *Client) eventMeta(in *incoming, typ bridgev2.RemoteEventType) simplevent.EventMeta {
	sender, _ := c.sender(in)
	return simplevent.EventMeta{
		Type:      typ,
		PortalKey: c.portalKey(in),
		Sender:    sender,
		Timestamp: in.Timestamp,
		LogContext: func(lc zerolog.Context) zerolog.Context {
			if in.Room != nil {
				return lc.Str("muc_nick", in.Room.Nick).Str("stanza_id", in.StanzaID)
			}
			return lc.Str("xmpp_id", in.XMPPID).Bool("carbon", in.Carbon)
		},
	}
}

// bridgeIncoming is the part of the XMPP → Matrix path every chat shares,
// after classification: decrypt, then queue for bridgev2 by what the
// message is.
func (c *Client) bridgeIncoming(ctx context.Context, in *incoming) {
	if err := c.decryptIncoming(ctx, in); err != nil {
		log := zerolog.Ctx(ctx).Warn()
		if errors.Is(err, errNothingToShow) {
			// A key transport or heartbeat: nothing went wrong.
			log = zerolog.Ctx(ctx).Debug()
		}
		if in.Room != nil {
			log = log.Stringer("room", in.Peer).Str("nick", in.Room.Nick)
		}
		log.Err(err).Str("xmpp_id", in.XMPPID).Msg("Not bridging message")
		return
	}
	if in.private() {
		// Text, files and corrections only (mucprivate.go); the body of
		// a reaction or retraction is its fallback text.
		switch {
		case in.Body == "":
		case in.Replace != "":
			c.queueEdit(ctx, in)
		default:
			c.queueMessage(in)
		}
		return
	}
	if in.Room != nil {
		// Chat states and markers of rooms went their own way before
		// (mucsignals.go); references are looked up by stanza-id.
		if !c.queueGroupRef(ctx, in) {
			c.queueMessage(in)
		}
		return
	}
	if !in.FromMe && !in.Archived && in.ChatState != "" {
		c.queueTyping(in)
	}
	for _, m := range in.Markers {
		if m.Kind == markers.Displayed {
			c.queueReadMarker(in, m.ID)
		}
	}
	switch {
	case in.Reactions != nil:
		// A body next to reactions can only be a fallback for old clients.
		c.queueReactions(ctx, in, *in.Reactions)
	case in.Retract != "":
		// The body of a retraction is only a fallback notice.
		c.queueRetraction(in)
	case in.Body == "":
	case in.Replace != "":
		c.queueEdit(ctx, in)
	default:
		c.queueMessage(in)
	}
}

// queueMessage queues a new message for bridgev2, with the exactly-once
// sending of txnid.go and sending.go: a transaction id derived from the
// message id, and the sending mark checked after a crash between the
// Matrix send and bridgev2's row.
func (c *Client) queueMessage(in *incoming) {
	meta := c.eventMeta(in, bridgev2.RemoteEventMessage)
	meta.CreatePortal = true
	id := c.messageID(in)
	meta.MutateContextFunc = func(ctx context.Context) context.Context { return withTxnSeed(ctx, string(id)) }
	storedCheck := c.storedOnce(id)
	stored := storedCheck
	var recovered *portal.MessageMetadata
	if in.Room != nil {
		if isOwnReflection(in) || (in.Room.Encrypted && in.OMEMO == nil) {
			// Nothing to store (convertMessage ignores it, or bridgev2
			// matches it to the Matrix event it came from).
			stored = nil
		}
		recovered = &portal.MessageMetadata{OriginID: cmp.Or(in.OriginID, in.XMPPID), StanzaID: in.StanzaID, OccupantID: in.Room.OccupantID}
	}
	// The sending mark is written ahead, in a group commit with the marks
	// of the messages queued meanwhile (sendingmarks.go).
	marks := c.main.sendingMarksOf(c.login.ID)
	var batch *markBatch
	if stored != nil {
		batch = marks.prepare(c.backgroundCtx(), id, meta.PortalKey.ID)
	}
	meta.PostHandleFunc = func(ctx context.Context, _ *bridgev2.Portal) {
		if storedCheck(ctx) {
			c.clearSending(ctx, id)
		} else {
			marks.dropFresh(ctx, id)
		}
	}
	c.ackAfterHandling(in.ack, &meta, stored)
	ts := in.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	res := c.login.QueueRemoteEvent(&simplevent.Message[*incoming]{
		EventMeta:          meta,
		Data:               in,
		ID:                 id,
		TransactionID:      in.TxnID,
		ConvertMessageFunc: convertOnce(c, id, meta.Sender, ts, recovered, batch, c.convertMessage),
	})
	ackUnqueued(c.backgroundCtx(), in.ack, res)
	c.countQueued(in, res)
}

// groupchatEcho completes the pending Matrix message when the room reflects
// it: the reflection carries the room's stanza-id.
func groupchatEcho(rm bridgev2.RemoteMessage, db *database.Message) (bool, error) {
	if m, ok := rm.(*simplevent.Message[*incoming]); ok {
		if meta, ok := db.Metadata.(*portal.MessageMetadata); ok {
			meta.StanzaID = m.Data.StanzaID
		}
	}
	return true, nil
}
