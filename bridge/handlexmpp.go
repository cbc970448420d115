package bridge

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// handler routes stanzas read by mellium's Serve loop. It runs inside that
// loop, so nothing here may send on the session. Messages and presences are
// taken whole (mellium's mux would split them by child element); IQs go
// through the mux, which answers unknown ones with service-unavailable.
func (c *Client) handler(ctx context.Context) xmpp.Handler {
	incoming := c.incoming
	iqs := mux.New(stanza.NSClient,
		roster.Handle(roster.Handler{Push: c.handleRosterPush}),
		ping.Handle(),
		caps.Handle(capsNode, capsInfo()),
	)
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		switch {
		case start.Name.Local == "message" && stanza.Is(start.Name, stanza.NSClient):
			st, err := stanzabuf.Read(xmlstream.MultiReader(xmlstream.Token(*start), t))
			if err != nil {
				c.login.Log.Warn().Err(err).Msg("Dropping unreadable message stanza")
				return nil
			}
			if c.collectBackfill(st) {
				return nil
			}
			select {
			case incoming <- inItem{st: st}:
			case <-ctx.Done():
			}
			return nil
		case start.Name.Local == "presence" && stanza.Is(start.Name, stanza.NSClient):
			if !c.fromRoom(*start) {
				return c.handlePresence(t, start)
			}
			// Occupant presences go through the queue, in order with the
			// room's messages.
			st, err := stanzabuf.Read(xmlstream.MultiReader(xmlstream.Token(*start), t))
			if err != nil {
				c.login.Log.Warn().Err(err).Msg("Dropping unreadable group chat presence")
				return nil
			}
			select {
			case incoming <- inItem{st: st}:
			case <-ctx.Done():
			}
			return nil
		}
		return iqs.HandleXMPP(t, start)
	})
}

// processIncoming handles buffered stanzas one at a time, in order.
func (c *Client) processIncoming(ctx context.Context, incoming <-chan inItem) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-incoming:
			c.handleItem(ctx, it)
		}
	}
}

// incomingMessage is a 1:1 message as the connector queues it: the client's
// typed message plus what decryption and delivery add.
type incomingMessage struct {
	xmppclient.Message

	// OMEMO is set by decryption for OMEMO messages (see handleomemo.go).
	OMEMO *omemoIncoming

	// ticket tracks the message's archive id for the catch-up cursor
	// (delivery.go); nil when untracked.
	ticket *archiveTicket
	// catchUpSeq is the catch-up an archive result belongs to.
	catchUpSeq uint64
}

// parseIncoming reads one message stanza received by account
// (xmppclient.ParseMessage) into the connector's queue item.
func parseIncoming(st *stanzabuf.Stanza, account jid.JID) (*incomingMessage, error) {
	m, err := xmppclient.ParseMessage(st, account)
	if err != nil {
		return nil, err
	}
	return &incomingMessage{Message: *m}, nil
}

// parseArchivedMessage reads an archive result of our own archive.
func parseArchivedMessage(a xmppclient.Archived, account jid.JID) (*incomingMessage, error) {
	m, err := xmppclient.ParseArchived(a.Message, a.ArchiveID, a.Stamp, account)
	if err != nil {
		return nil, err
	}
	return &incomingMessage{Message: *m}, nil
}

// handleMessage is the XMPP -> Matrix path for one message stanza:
// classify, decrypt, queue for bridgev2.
func (c *Client) handleMessage(ctx context.Context, st *stanzabuf.Stanza) {
	log := zerolog.Ctx(ctx)
	if c.handleAvatarEvent(ctx, st) || c.handlePEPEvent(ctx, st) {
		return
	}
	if xmppclient.AttrValue(st.Start(), "type") == string(stanza.GroupChatMessage) {
		c.handleGroupchat(ctx, st)
		return
	}
	if c.handleRoomArchived(ctx, st) {
		return
	}
	in, err := c.classify(st)
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
	if c.trackable(in) {
		in.ticket = c.ticket(in.StanzaID)
		defer in.ticket.release(ctx)
	}
	if c.mucs.Known(in.Peer) {
		// Private messages of room occupants (and the room's own
		// messages) would make a 1:1 portal with the room.
		log.Debug().Stringer("room", in.Peer).Msg("Ignoring private message in a group chat, not bridged yet")
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
	if err := c.decryptIncoming(ctx, in); err != nil {
		log.Warn().Err(err).Str("xmpp_id", in.XMPPID).Msg("Failed to decrypt message")
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
		c.queueEdit(in)
	default:
		c.queueIncoming(in)
	}
}

// classify unwraps one message stanza: an archive result of one of our
// queries, a carbon, or a plain message.
func (c *Client) classify(st *stanzabuf.Stanza) (*incomingMessage, error) {
	a, err := xmppclient.UnwrapArchived(st)
	switch {
	case errors.Is(err, xmppclient.ErrNotArchived):
		return parseIncoming(st, c.account)
	case err != nil:
		return nil, err
	}
	// mellium blanks a from of our own bare JID; anything else is someone
	// trying to inject history.
	if from := xmppclient.AttrValue(st.Start(), "from"); from != "" && from != c.account.String() {
		return nil, fmt.Errorf("%w: from %s", errForgedArchived, from)
	}
	switch c.mam.mode(a.QueryID) {
	case queryCatchUp:
		in, err := parseArchivedMessage(a, c.account)
		if in != nil {
			in.catchUpSeq = c.mam.seq(a.QueryID)
		}
		return in, err
	case querySeed:
		return nil, fmt.Errorf("%w: history from before the login", xmppclient.ErrIgnored)
	default:
		return nil, fmt.Errorf("%w: %q", errUnknownQuery, a.QueryID)
	}
}

// sentCorrection reports whether an archived correction from us is one the
// bridge itself sent from Matrix.
func (c *Client) sentCorrection(ctx context.Context, in *incomingMessage) bool {
	target := portal.MakeMessageID(in.Peer, c.account, in.Replace)
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, target)
	if err != nil || msg == nil {
		return false
	}
	meta, ok := msg.Metadata.(*portal.MessageMetadata)
	return ok && slices.Contains(meta.CorrectionIDs, in.XMPPID)
}

// decryptIncoming is where OMEMO decryption plugs in: it replaces in.Body
// with the plaintext of an <encrypted/> payload in in.Raw. Plaintext
// messages pass through unchanged.
func (c *Client) decryptIncoming(ctx context.Context, in *incomingMessage) error {
	return c.omemoDecrypt(ctx, in)
}

// sender is who sent in, as bridgev2 and as a JID.
func (c *Client) sender(in *incomingMessage) (bridgev2.EventSender, jid.JID) {
	if in.FromMe {
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: puppet.UserID(c.account)}, c.account
	}
	return bridgev2.EventSender{Sender: puppet.UserID(in.Peer)}, in.Peer
}

func (c *Client) eventMeta(in *incomingMessage, typ bridgev2.RemoteEventType) simplevent.EventMeta {
	sender, _ := c.sender(in)
	return simplevent.EventMeta{
		Type:      typ,
		PortalKey: portal.DMKey(in.Peer, c.login.ID),
		Sender:    sender,
		Timestamp: in.Timestamp,
		LogContext: func(lc zerolog.Context) zerolog.Context {
			return lc.Str("xmpp_id", in.XMPPID).Bool("carbon", in.Carbon)
		},
	}
}

func (c *Client) queueIncoming(in *incomingMessage) {
	_, senderJID := c.sender(in)
	meta := c.eventMeta(in, bridgev2.RemoteEventMessage)
	meta.CreatePortal = true
	id := portal.MakeMessageID(in.Peer, senderJID, in.XMPPID)
	meta.MutateContextFunc = func(ctx context.Context) context.Context { return withTxnSeed(ctx, string(id)) }
	meta.PostHandleFunc = func(ctx context.Context, _ *bridgev2.Portal) {
		if c.messageStored(ctx, id) {
			c.clearSending(ctx, id)
		}
	}
	in.ticket.handOff(&meta, id)
	ts := in.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	res := c.login.QueueRemoteEvent(&simplevent.Message[*incomingMessage]{
		EventMeta:          meta,
		Data:               in,
		ID:                 id,
		ConvertMessageFunc: convertOnce(c, id, meta.Sender, ts, nil, c.convertIncoming),
	})
	in.ticket.queued(c.login.Log.WithContext(c.main.Bridge.BackgroundCtx), res)
	c.countQueued(in, res)
}

// queueEdit bridges a XEP-0308 correction. The target ID includes the
// sender, so a correction can only ever replace the sender's own message.
func (c *Client) queueEdit(in *incomingMessage) {
	_, senderJID := c.sender(in)
	meta := c.eventMeta(in, bridgev2.RemoteEventEdit)
	id := portal.MakeMessageID(in.Peer, senderJID, in.XMPPID)
	meta.MutateContextFunc = func(ctx context.Context) context.Context { return withTxnSeed(ctx, "edit:"+string(id)) }
	in.ticket.handOff(&meta, "")
	res := c.login.QueueRemoteEvent(&simplevent.Message[*incomingMessage]{
		EventMeta:       meta,
		Data:            in,
		ID:              id,
		TargetMessage:   portal.MakeMessageID(in.Peer, senderJID, in.Replace),
		ConvertEditFunc: c.convertEditArmed,
	})
	in.ticket.queued(c.login.Log.WithContext(c.main.Bridge.BackgroundCtx), res)
}

// convertEditArmed is convertEdit that arms the edit's deterministic
// transaction id (txnid.go).
func (c *Client) convertEditArmed(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, in *incomingMessage) (*bridgev2.ConvertedEdit, error) {
	conv, err := c.convertEdit(ctx, portal, intent, existing, in)
	if err == nil {
		armTxnSeed(ctx)
	}
	return conv, err
}

// queueRetraction bridges a XEP-0424 retraction; like corrections it can only
// reach the sender's own messages.
func (c *Client) queueRetraction(in *incomingMessage) {
	_, senderJID := c.sender(in)
	meta := c.eventMeta(in, bridgev2.RemoteEventMessageRemove)
	in.ticket.handOff(&meta, "")
	res := c.login.QueueRemoteEvent(&simplevent.MessageRemove{
		EventMeta:     meta,
		TargetMessage: portal.MakeMessageID(in.Peer, senderJID, in.Retract),
	})
	in.ticket.queued(c.login.Log.WithContext(c.main.Bridge.BackgroundCtx), res)
}

// typingTimeout is how long a <composing/> lasts without a refresh; XEP-0085
// clients fall back to paused after about 30 seconds.
const typingTimeout = 30 * time.Second

func (c *Client) queueTyping(in *incomingMessage) {
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
func (c *Client) queueReadMarker(in *incomingMessage, id string) {
	target := portal.MakeMessageID(in.Peer, c.account, id)
	if in.FromMe {
		target = portal.MakeMessageID(in.Peer, in.Peer, id)
	}
	c.login.QueueRemoteEvent(&simplevent.Receipt{
		EventMeta:  c.eventMeta(in, bridgev2.RemoteEventReadReceipt),
		LastTarget: target,
	})
}
