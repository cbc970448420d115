package bridge

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// handleMUCPresence applies a presence from one of the login's rooms and
// tells bridgev2 what changed. It runs in the incoming queue, in order with
// the room's messages.
func (c *Client) handleMUCPresence(ctx context.Context, st *stanzabuf.Stanza) {
	log := zerolog.Ctx(ctx)
	p, err := mucroom.ParsePresence(st.Reader())
	if err != nil {
		log.Warn().Err(err).Msg("Dropping malformed group chat presence")
		return
	}
	room, out, ok := c.mucs.ApplyPresence(p)
	if !ok {
		return
	}
	switch out.Change {
	case xmppclient.ChangeSelfJoined:
		// The portal is synced when the subject arrives, or after a while
		// from a room that sends none.
		time.AfterFunc(mucSubjectWait, func() {
			if room, ok := c.mucs.TakeSync(room.JID); ok {
				c.queueRoomResync(room)
			}
		})
	case xmppclient.ChangeSelfLeft:
		log.Info().Stringer("room", room.JID).Ints("status", out.Status).Msg("We are no longer in the group chat")
		if text := leftRoomText(out.Status); text != "" {
			c.queueRoomNotice(room.JID, text)
		}
	case xmppclient.ChangeJoinFailed:
		log.Debug().Stringer("room", room.JID).Msg("Group chat refused the join")
	case xmppclient.ChangeOccupantJoined:
		c.queueMemberChange(room, out.Occupant, event.MembershipJoin)
	case xmppclient.ChangeOccupantLeft:
		renamed := slices.Contains(out.Status, mucroom.StatusNickChanged) && !out.Occupant.RealJID.Equal(jid.JID{})
		if id, _ := roomGhost(room, out.Occupant, c.account); !renamed && !roomHasGhost(room, id, "", c.account) {
			// A nick change keeps a real-JID ghost; an occupant ghost is
			// the old nick's and leaves, the new nick's joins.
			c.queueMemberChange(room, out.Occupant, event.MembershipLeave)
		}
	}
}

// leftRoomText says why the room put us out (§7.2.8 status codes); ""
// when we left ourselves.
func leftRoomText(status []int) string {
	has := func(code int) bool { return slices.Contains(status, code) }
	switch {
	case has(mucroom.StatusBanned):
		return "You were banned from this group chat."
	case has(mucroom.StatusKicked):
		return "You were kicked from this group chat. The bridge rejoins it when it reconnects; `leave` forgets it."
	case has(mucroom.StatusRemoved):
		return "You were removed from this members-only group chat."
	case has(mucroom.StatusShutdown):
		return "The group chat service is shutting down; the bridge rejoins the room when it reconnects."
	}
	return ""
}

// mucKey is the portal of room for this login.
func (c *Client) mucKey(room jid.JID) networkid.PortalKey {
	return portal.MUCKey(room, c.login.ID, true)
}

// queueRoomResync creates the portal of a room we just joined, or brings
// an existing one up to date with the full member list.
func (c *Client) queueRoomResync(room xmppclient.Room) {
	c.login.QueueRemoteEvent(&simplevent.ChatResync{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventChatResync,
			PortalKey:    c.mucKey(room.JID),
			CreatePortal: true,
		},
		ChatInfo: c.mucChatInfo(room),
	})
}

// queueMemberChange bridges an occupant entering or leaving after our join.
func (c *Client) queueMemberChange(room xmppclient.Room, o xmppclient.Occupant, membership event.Membership) {
	member, ok := c.occupantMember(room, o, membership)
	if !ok {
		return
	}
	c.login.QueueRemoteEvent(&simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type:      bridgev2.RemoteEventChatInfoChange,
			PortalKey: c.mucKey(room.JID),
			Sender:    member.EventSender,
			Timestamp: time.Now(),
		},
		ChatInfoChange: &bridgev2.ChatInfoChange{
			MemberChanges: &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{}.Set(member)},
		},
	})
}

// queueRoomNotice posts a notice from the bridge bot into the room's
// portal, if there is one.
func (c *Client) queueRoomNotice(room jid.JID, text string) {
	c.login.QueueRemoteEvent(&simplevent.Message[string]{
		EventMeta: simplevent.EventMeta{
			Type:      bridgev2.RemoteEventMessage,
			PortalKey: c.mucKey(room),
			Timestamp: time.Now(),
		},
		Data: text,
		ID:   portal.MakeMessageID(room, jid.JID{}, "notice:"+random.String(16)),
		ConvertMessageFunc: func(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, text string) (*bridgev2.ConvertedMessage, error) {
			return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
				Type:    event.EventMessage,
				Content: &event.MessageEventContent{MsgType: event.MsgNotice, Body: text},
			}}}, nil
		},
	})
}

// groupchat is a classified groupchat message (xmppclient.Groupchat) with
// who sent it on the Matrix side and its bridgev2 IDs.
type groupchat struct {
	xmppclient.Groupchat
	Sender bridgev2.EventSender
	// ID is the bridgev2 message ID: the room's stanza-id when it stamps
	// one, which is also what replies to groupchat messages name.
	ID networkid.MessageID
	// TxnID is, for our own messages, the id we sent it with: the room
	// reflects it, and bridgev2 matches it to the pending Matrix message.
	TxnID networkid.TransactionID
	// OccupantID is the room's XEP-0421 id of the sender (occupantid.go).
	OccupantID string
	// OMEMO is what decryption said about an encrypted message
	// (mucomemo.go); Body is then its plaintext or a notice.
	OMEMO *omemoIncoming
	// ticket settles the message's stanza-id in the room's watermark
	// (mucarchive.go).
	ticket *archiveTicket
}

// groupchatMessageID keys a groupchat message: by the room's stanza-id,
// else by the sender's nick and id (rooms without XEP-0359 support).
func groupchatMessageID(m mucroom.Message) networkid.MessageID {
	room := m.From.Bare()
	if m.StanzaID != "" {
		return portal.MakeMessageID(room, jid.JID{}, "sid:"+m.StanzaID)
	}
	id := m.ID
	if id == "" {
		id = m.OriginID
	}
	if id == "" {
		h := sha256.Sum256([]byte(m.Nick() + "\x00" + m.Delay.UTC().Format(time.RFC3339Nano) + "\x00" + m.Body))
		id = "hash:" + hex.EncodeToString(h[:16])
	}
	return portal.MakeMessageID(room, jid.JID{}, "nick:"+m.Nick()+"/"+id)
}

// classifyGroupchat classifies a groupchat message from room
// (xmppclient.ClassifyGroupchat) and names its sender and IDs.
func classifyGroupchat(m mucroom.Message, room xmppclient.Room, account jid.JID, login networkid.UserLoginID, encrypted bool, refs xmppclient.Refs) groupchat {
	g := groupchat{Groupchat: xmppclient.ClassifyGroupchat(m, room.JID, encrypted, refs)}
	switch g.Kind {
	case xmppclient.GroupchatSubject:
		if g.Nick != "" {
			g.Sender = roomSender(room, g.Nick, account, login)
		}
	case xmppclient.GroupchatMessage:
		g.Sender = roomSender(room, g.Nick, account, login)
		g.ID = groupchatMessageID(m)
		if g.Sender.IsFromMe {
			txn := m.OriginID
			if txn == "" {
				txn = m.ID
			}
			g.TxnID = networkid.TransactionID(txn)
		}
	}
	return g
}

// handleGroupchat is the XMPP → Matrix path for type=groupchat messages.
func (c *Client) handleGroupchat(ctx context.Context, st *stanzabuf.Stanza) {
	log := zerolog.Ctx(ctx)
	m, err := mucroom.ParseMessage(st.Reader())
	if err != nil {
		log.Warn().Err(err).Msg("Dropping malformed groupchat message")
		return
	}
	c.processGroupchat(ctx, st, m, 0)
}

// processGroupchat bridges a groupchat message, live or (catchUpSeq != 0)
// from the room's archive.
func (c *Client) processGroupchat(ctx context.Context, st *stanzabuf.Stanza, m mucroom.Message, catchUpSeq uint64) {
	log := zerolog.Ctx(ctx)
	room, ok := c.mucs.Get(m.From)
	if !ok {
		log.Debug().Stringer("room", m.From.Bare()).Msg("Ignoring groupchat message from a room we are not in")
		return
	}
	_, encErr := omemoxmpp.FindEncrypted(st.Reader())
	encrypted := !errors.Is(encErr, omemoxmpp.ErrNotEncrypted)
	refs := xmppclient.ParseRefs(st)
	if refs.ReplyTo != nil {
		m.Body = xmppclient.StripReplyFallback(st, m.Body)
	}
	g := classifyGroupchat(m, room, c.account, c.login.ID, encrypted, refs)
	g.Raw = st
	if catchUpSeq == 0 {
		c.groupSignals(ctx, st, room, m, m.Body != "" || encrypted)
	}
	g.OccupantID = roomOccupantID(room, st)
	// The room's watermark (mucarchive.go) moves over this stanza-id once
	// bridgev2 stored the message, or at once when nothing is queued.
	if g.Kind != xmppclient.GroupchatSubject {
		g.ticket = c.roomTicket(room.JID, m.StanzaID, catchUpSeq)
		defer g.ticket.release(ctx)
	}
	switch g.Kind {
	case xmppclient.GroupchatSubject:
		c.mucs.SetSubject(room.JID, g.Subject)
		if synced, ok := c.mucs.TakeSync(room.JID); ok {
			// The end of our join: the portal gets the topic with the
			// rest of the room's state.
			c.queueRoomResync(synced)
		} else if room.Joined {
			c.queueTopic(g)
		}
	case xmppclient.GroupchatMessage:
		if g.Encrypted && !c.decryptGroupchat(ctx, st, &g, room) {
			return
		}
		if c.queueGroupRef(ctx, g) {
			return
		}
		c.queueGroupchat(g)
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
func (c *Client) queueTopic(g groupchat) {
	subject := g.Subject
	c.login.QueueRemoteEvent(&simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type:      bridgev2.RemoteEventChatInfoChange,
			PortalKey: c.mucKey(g.Room),
			Timestamp: g.Timestamp,
			LogContext: func(lc zerolog.Context) zerolog.Context {
				return lc.Str("muc_nick", g.Nick)
			},
		},
		ChatInfoChange: &bridgev2.ChatInfoChange{ChatInfo: &bridgev2.ChatInfo{Topic: &subject}},
	})
}

func (c *Client) queueGroupchat(g groupchat) {
	meta := simplevent.EventMeta{
		Type:         bridgev2.RemoteEventMessage,
		PortalKey:    c.mucKey(g.Room),
		Sender:       g.Sender,
		Timestamp:    g.Timestamp,
		CreatePortal: true,
		LogContext: func(lc zerolog.Context) zerolog.Context {
			return lc.Str("muc_nick", g.Nick).Str("stanza_id", g.StanzaID)
		},
	}
	stored := g.ID
	if isOwnReflection(g) || (g.Encrypted && g.OMEMO == nil) {
		// Nothing to store (convertGroupchat ignores it, or bridgev2
		// matches it to the Matrix event it came from).
		stored = ""
	}
	// The same exactly-once sending as 1:1 messages (txnid.go, sending.go):
	// a transaction id derived from the message id (the room's stanza-id
	// names it), and the sending mark checked against the room after a
	// crash between the Matrix send and bridgev2's row.
	id := g.ID
	meta.MutateContextFunc = func(ctx context.Context) context.Context { return withTxnSeed(ctx, string(id)) }
	meta.PostHandleFunc = func(ctx context.Context, _ *bridgev2.Portal) {
		if c.messageStored(ctx, id) {
			c.clearSending(ctx, id)
		}
	}
	g.ticket.handOff(&meta, stored)
	ts := g.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	recovered := &portal.MessageMetadata{OriginID: cmp.Or(g.OriginID, g.XMPPID), StanzaID: g.StanzaID, OccupantID: g.OccupantID}
	res := c.login.QueueRemoteEvent(&simplevent.Message[groupchat]{
		EventMeta:          meta,
		Data:               g,
		ID:                 g.ID,
		TransactionID:      g.TxnID,
		ConvertMessageFunc: convertOnce(c, id, meta.Sender, ts, recovered, c.convertGroupchat),
	})
	g.ticket.queued(c.backgroundCtx(), res)
	if !g.Encrypted || (g.OMEMO != nil && !g.OMEMO.Failed) {
		// Undecryptable OMEMO messages were counted as such.
		c.countResult(res)
	}
}

// convertGroupchat builds the Matrix message of a groupchat message that
// bridgev2 did not match to one it sent.
func (c *Client) convertGroupchat(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, g groupchat) (*bridgev2.ConvertedMessage, error) {
	if isOwnReflection(g) {
		// Sent by the bridge for a Matrix message whose pending entry is
		// gone (a restart in between): it is in Matrix already.
		return nil, bridgev2.ErrIgnoringRemoteEvent
	}
	if g.Encrypted && g.OMEMO == nil {
		// Never the fallback body.
		return nil, bridgev2.ErrIgnoringRemoteEvent
	}
	content := msgconv.MatrixFromBody(g.Body)
	if f := sharedFile(g.Body, g.OMEMO, g.Raw); f != nil {
		content = c.mediaContent(ctx, p, intent, f)
	}
	room, _ := c.mucs.Get(g.Room)
	c.convertOMEMO(ctx, p, g.OMEMO, content, groupOMEMOAllowed(room) == nil)
	return &bridgev2.ConvertedMessage{
		ReplyTo: c.groupReplyTarget(ctx, g),
		Parts: []*bridgev2.ConvertedMessagePart{{
			Type:    event.EventMessage,
			Content: content,
			// Corrections name the message by the id its sender gave it.
			DBMetadata: &portal.MessageMetadata{OriginID: cmp.Or(g.OriginID, g.XMPPID), StanzaID: g.StanzaID, OccupantID: g.OccupantID, Markable: groupMarkable(g.Raw)},
		}},
	}, nil
}

// groupchatEcho completes the pending Matrix message when the room reflects
// it: the reflection carries the room's stanza-id.
func groupchatEcho(rm bridgev2.RemoteMessage, db *database.Message) (bool, error) {
	if m, ok := rm.(*simplevent.Message[groupchat]); ok {
		if meta, ok := db.Metadata.(*portal.MessageMetadata); ok {
			meta.StanzaID = m.Data.StanzaID
		}
	}
	return true, nil
}

// fromRoom reports whether a stanza comes from one of the login's rooms.
// It runs in mellium's Serve loop, for every presence.
func (c *Client) fromRoom(start xml.StartElement) bool {
	from := xmppclient.AttrValue(start, "from")
	if from == "" {
		return false
	}
	j, err := jid.Parse(from)
	return err == nil && c.mucs.Known(j)
}
