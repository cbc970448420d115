package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// router is the login's xmppclient.Router: where a stanza enters. It
// classifies each message once and puts it on the login's ordered stream
// (taken by handleEvent); results of backfill queries are taken out
// for their caller (backfill.go).
func (c *Client) router() *xmppclient.Router {
	return &xmppclient.Router{
		Rooms:      c.mucs,
		Roster:     c.roster,
		Queries:    &c.mam,
		RosterPush: c.handleRosterPush,
		AvatarHash: c.handleAvatarUpdate,
		Presence:   c.handleContactPresence,
		Intercept:  c.collectBackfill,
		Queue: func(ctx context.Context, in xmppclient.Inbound) {
			c.stream.Put(ctx, xmppclient.Event{In: in})
		},
	}
}

// parseArchivedMessage reads an archive result of our own archive.
func parseArchivedMessage(a xmppclient.Archived, account jid.JID) (*incoming, error) {
	m, err := xmppclient.ParseArchived(a.Message, a.ArchiveID, a.Stamp, account)
	if err != nil {
		return nil, err
	}
	return &incoming{Message: *m}, nil
}

// handleMessage is the XMPP -> Matrix path for one message stanza:
// classify, decrypt, queue for bridgev2.
func (c *Client) handleMessage(ctx context.Context, inb xmppclient.Inbound) {
	log := zerolog.Ctx(ctx)
	switch inb.Kind {
	case xmppclient.KindPubSub:
		if inb.Err != nil {
			log.Warn().Err(inb.Err).Msg("Ignoring malformed pubsub notification")
			return
		}
		if c.handleAvatarEvent(ctx, inb.Event) || c.handlePEPEvent(ctx, inb.Event) || c.handleBookmarkEvent(ctx, inb.Event) {
			return
		}
		// Another node: read on as a message (it carries nothing bridged).
	case xmppclient.KindChat:
		if ok, cfg := c.mucs.ApplyAnnouncement(inb); ok {
			log.Debug().Str("from", inb.From).Msg("Followed a group chat's affiliation or configuration change")
			c.roomReconfigured(ctx, cfg)
			return
		}
		if c.handleInvite(ctx, inb) {
			return
		}
	case xmppclient.KindGroupchat:
		c.handleGroupchat(ctx, inb)
		return
	case xmppclient.KindArchived:
		if c.handleRoomArchived(ctx, inb) {
			return
		}
	}
	in, err := c.classify(inb)
	switch {
	case errors.Is(err, carbons.ErrForged):
		log.Warn().Err(err).Msg("Dropping forged carbon")
		return
	case errors.Is(err, errForgedArchived), errors.Is(err, errUnknownQuery):
		log.Warn().Err(err).Msg("Dropping forged archive result")
		return
	case errors.Is(err, xmppclient.ErrIgnored):
		log.Trace().Err(err).Msg("Ignoring message")
		return
	case err != nil:
		log.Warn().Err(err).Msg("Dropping malformed message")
		return
	}
	if in.ack = c.ticket(xmppclient.AccountLane, in.StanzaID, in.Archived, in.catchUpSeq); in.ack != nil {
		defer in.ack.Release(ctx)
	}
	if occ, ok := c.privateOccupant(in); ok {
		// A private message with a room occupant: its own portal
		// (mucprivate.go), never a 1:1 chat with the room.
		in.Occupant = occ
		if !c.bridgedBefore(ctx, in) {
			c.bridgeIncoming(ctx, in)
		}
		return
	}
	if c.mucs.Known(in.Peer) {
		// The room's own non-groupchat messages would make a 1:1 portal
		// with the room.
		log.Debug().Stringer("room", in.Peer).Msg("Ignoring a group chat's own message")
		return
	}
	if in.Archived && in.FromMe && in.Replace != "" && c.sentCorrection(ctx, in) {
		return
	}
	if in.Archived && in.FromMe && strings.HasPrefix(in.XMPPID, bridgeIDPrefix) {
		log.Debug().Str("xmpp_id", in.XMPPID).Msg("Not bridging back an archived message the bridge sent")
		return
	}
	// Before the message, so that a contact outside the roster has its name in the portal.
	c.messageNick(ctx, in)
	c.bridgeIncoming(ctx, in)
}

// classify reads one message the router classified: an archive result of
// one of our queries, or a plain message or carbon.
func (c *Client) classify(inb xmppclient.Inbound) (*incoming, error) {
	switch {
	case inb.Kind != xmppclient.KindArchived:
		m, err := xmppclient.ParseMessage(inb.Stanza, c.account)
		if err != nil {
			return nil, err
		}
		return &incoming{Message: *m}, nil
	case inb.Err != nil:
		return nil, inb.Err
	}
	a := inb.Archived
	// mellium blanks a from of our own bare JID; anything else is someone
	// trying to inject history.
	if from := inb.From; from != "" && from != c.account.String() {
		return nil, fmt.Errorf("%w: from %s", errForgedArchived, from)
	}
	switch a.Query.Mode {
	case xmppclient.QueryCatchUp:
		in, err := parseArchivedMessage(a, c.account)
		if in != nil {
			in.catchUpSeq = a.Query.Seq
		}
		return in, err
	case xmppclient.QuerySeed:
		return nil, fmt.Errorf("%w: history from before the login", xmppclient.ErrIgnored)
	default:
		return nil, fmt.Errorf("%w: %q", errUnknownQuery, a.QueryID)
	}
}

// sentCorrection reports whether an archived correction from us is one the
// bridge itself sent from Matrix.
func (c *Client) sentCorrection(ctx context.Context, in *incoming) bool {
	target := portal.MakeMessageID(in.Peer, c.account, in.Replace)
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, target)
	if err != nil || msg == nil {
		return false
	}
	meta, ok := msg.Metadata.(*portal.MessageMetadata)
	return ok && slices.Contains(meta.CorrectionIDs, in.XMPPID)
}

// queueEdit bridges a XEP-0308 correction. The target ID includes the
// sender, so a correction can only ever replace the sender's own message.
func (c *Client) queueEdit(ctx context.Context, in *incoming) {
	meta := c.eventMeta(in, bridgev2.RemoteEventEdit)
	id := c.refID(in, in.XMPPID)
	meta.MutateContextFunc = func(ctx context.Context) context.Context { return withTxnSeed(ctx, "edit:"+string(id)) }
	c.ackAfterHandling(in.ack, &meta, nil)
	res := c.login.QueueRemoteEvent(&simplevent.Message[*incoming]{
		EventMeta:       meta,
		Data:            in,
		ID:              id,
		TargetMessage:   c.editTarget(ctx, in),
		ConvertEditFunc: c.convertEditArmed,
	})
	ackUnqueued(c.login.Log.WithContext(c.main.Bridge.BackgroundCtx), in.ack, res)
}

// convertEditArmed is convertEdit that arms the edit's deterministic
// transaction id (txnid.go).
func (c *Client) convertEditArmed(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, in *incoming) (*bridgev2.ConvertedEdit, error) {
	conv, err := c.convertEdit(ctx, portal, intent, existing, in)
	if err == nil {
		armTxnSeed(ctx)
	}
	return conv, err
}

// queueRetraction bridges a XEP-0424 retraction; like corrections it can only
// reach the sender's own messages.
func (c *Client) queueRetraction(in *incoming) {
	_, senderJID := c.sender(in)
	meta := c.eventMeta(in, bridgev2.RemoteEventMessageRemove)
	c.ackAfterHandling(in.ack, &meta, nil)
	res := c.login.QueueRemoteEvent(&simplevent.MessageRemove{
		EventMeta:     meta,
		TargetMessage: portal.MakeMessageID(in.Peer, senderJID, in.Retract),
	})
	ackUnqueued(c.login.Log.WithContext(c.main.Bridge.BackgroundCtx), in.ack, res)
}

// typingTimeout is how long a <composing/> lasts without a refresh; XEP-0085
// clients fall back to paused after about 30 seconds.
const typingTimeout = 30 * time.Second

func (c *Client) queueTyping(in *incoming) {
	timeout := time.Duration(0)
	if in.ChatState == chatstates.Composing && in.Body == "" {
		timeout = typingTimeout
	}
	c.login.QueueRemoteEvent(&simplevent.Typing{
		EventMeta: c.eventMeta(in, bridgev2.RemoteEventTyping),
		Timeout:   timeout,
	})
}

// queueReadMarker bridges a XEP-0333 displayed marker: from the contact it
// marks our message read; from our other client (a sent carbon) it marks the
// contact's message read by the user.
func (c *Client) queueReadMarker(in *incoming, id string) {
	target := portal.MakeMessageID(in.Peer, c.account, id)
	if in.FromMe {
		target = portal.MakeMessageID(in.Peer, in.Peer, id)
	}
	c.login.QueueRemoteEvent(&simplevent.Receipt{
		EventMeta:  c.eventMeta(in, bridgev2.RemoteEventReadReceipt),
		LastTarget: target,
	})
}

// groupchatMessageID keys a groupchat message: by the room's stanza-id,
// else by the sender's nick and id (rooms without XEP-0359 support).
func groupchatMessageID(m mucroom.Message) networkid.MessageID {
	id := m.ID
	if id == "" {
		id = m.OriginID
	}
	if id == "" && m.StanzaID == "" {
		h := sha256.Sum256([]byte(m.Nick() + "\x00" + m.Delay.UTC().Format(time.RFC3339Nano) + "\x00" + m.Body))
		id = "hash:" + hex.EncodeToString(h[:16])
	}
	return portal.RoomMessageID(m.From.Bare(), m.StanzaID, m.Nick(), id)
}

// classifyGroupchat classifies a groupchat message from room
// (xmppclient.ClassifyGroupchat) and names its sender and IDs.
func classifyGroupchat(m mucroom.Message, room xmppclient.Room, account jid.JID, login networkid.UserLoginID, encrypted bool, refs xmppclient.Refs) *incoming {
	return groupchatFrom(xmppclient.ClassifyGroupchat(m, room.JID, encrypted, refs), m, room, account, login)
}

// groupchatFrom makes the client's groupchat message xg (m parsed) an
// incoming message with its sender and IDs on the Matrix side.
func groupchatFrom(xg xmppclient.Groupchat, m mucroom.Message, room xmppclient.Room, account jid.JID, login networkid.UserLoginID) *incoming {
	in := &incoming{
		Message: xmppclient.Message{
			Peer: xg.Room, XMPPID: xg.XMPPID, OriginID: xg.OriginID, StanzaID: xg.StanzaID,
			Body: xg.Body, Timestamp: xg.Timestamp, Refs: xg.Refs, Markable: xg.Signals.Markable, Raw: xg.Raw,
		},
		Room: &roomFields{
			Kind: xg.Kind, Nick: xg.Nick, Subject: xg.Subject, Encrypted: xg.Encrypted,
			OccupantID: xg.OccupantID, Signals: xg.Signals,
			ShowsJIDs: roomShowsJIDs(room), RealJID: room.Occupants[xg.Nick].RealJID.Bare(),
		},
	}
	switch xg.Kind {
	case xmppclient.GroupchatSubject:
		if xg.Nick != "" {
			in.Sender = roomSender(room, xg.Nick, account, login)
		}
	case xmppclient.GroupchatMessage:
		in.Sender = roomSender(room, xg.Nick, account, login)
		in.ID = groupchatMessageID(m)
		if in.Sender.IsFromMe {
			txn := m.OriginID
			if txn == "" {
				txn = m.ID
			}
			in.TxnID = networkid.TransactionID(txn)
		}
	}
	in.FromMe = in.Sender.IsFromMe
	return in
}

// handleGroupchat is the XMPP → Matrix path for type=groupchat messages.
func (c *Client) handleGroupchat(ctx context.Context, in xmppclient.Inbound) {
	if in.Err != nil {
		zerolog.Ctx(ctx).Warn().Err(in.Err).Msg("Dropping malformed groupchat message")
		return
	}
	// Live only: an archived affiliation or configuration is not today's.
	_, cfg := c.mucs.ApplyRoomMessage(in.Room.Message)
	c.roomReconfigured(ctx, cfg)
	c.processGroupchat(ctx, in.Room, 0)
}

// processGroupchat bridges a groupchat message, live or (catchUpSeq != 0)
// from the room's archive.
func (c *Client) processGroupchat(ctx context.Context, rm xmppclient.RoomMessage, catchUpSeq uint64) {
	log := zerolog.Ctx(ctx)
	m := rm.Message
	// The sender is the one occupant this message reads.
	room, ok := c.mucs.GetFor(m.From, m.Nick())
	if !ok {
		log.Debug().Stringer("room", m.From.Bare()).Msg("Ignoring groupchat message from a room we are not in")
		return
	}
	in := groupchatFrom(xmppclient.ReadGroupchat(rm, room), m, room, c.account, c.login.ID)
	in.catchUpSeq, in.Archived = catchUpSeq, catchUpSeq != 0
	g := in.Room
	if catchUpSeq == 0 {
		c.groupSignals(room, m, g.Signals, m.Body != "" || g.Encrypted)
	}
	// The room's watermark (mucarchive.go) moves over this stanza-id once
	// bridgev2 stored the message, or at once when nothing is queued.
	if g.Kind != xmppclient.GroupchatSubject {
		in.ack = c.ticket(room.JID.Bare().String(), m.StanzaID, false, catchUpSeq)
		defer in.ack.Release(ctx)
	}
	switch g.Kind {
	case xmppclient.GroupchatSubject:
		c.mucs.SetSubject(room.JID, g.Subject)
		if synced, ok := c.mucs.TakeSync(room.JID); ok {
			// The end of our join: the portal gets the topic with the
			// rest of the room's state.
			c.queueRoomResync(synced)
		} else if room.Joined {
			c.queueTopic(in)
		}
	case xmppclient.GroupchatMessage:
		if idlessHistory(m, catchUpSeq) {
			log.Debug().Stringer("room", room.JID).Str("nick", g.Nick).Msg("Skipping a history message without an id (it may have been bridged already)")
			return
		}
		c.bridgeIncoming(ctx, in)
	default:
		log.Trace().Stringer("room", room.JID).Str("nick", g.Nick).Msg("Ignoring groupchat message without text")
	}
}

// mucSubjectWait is how long after our own presence a room's portal waits
// for the subject before it is synced without one.
const mucSubjectWait = 3 * time.Second

// queueTopic bridges a subject change as the room topic. The bridge bot
// sets it: ghosts have no power to change state in portal rooms, and
// bridgev2 would only fall back to the bot after a refused request.
func (c *Client) queueTopic(in *incoming) {
	subject := in.Room.Subject
	c.login.QueueRemoteEvent(&simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type:      bridgev2.RemoteEventChatInfoChange,
			PortalKey: c.mucKey(in.Peer),
			Timestamp: in.Timestamp,
			LogContext: func(lc zerolog.Context) zerolog.Context {
				return lc.Str("muc_nick", in.Room.Nick)
			},
		},
		ChatInfoChange: &bridgev2.ChatInfoChange{ChatInfo: &bridgev2.ChatInfo{Topic: &subject}},
	})
}
