package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/mxomemo/xmpp-bridge/xmpp/correct"
	"github.com/mxomemo/xmpp-bridge/xmpp/fallback"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmpp/retract"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
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

// incomingMessage is a 1:1 message as the bridge sees it, after carbons have
// been unwrapped and checked.
type incomingMessage struct {
	// Peer is the contact's bare JID: the chat the message belongs to.
	Peer jid.JID
	// FromMe is set for messages our account sent from another client.
	FromMe bool
	// Carbon is set when the message arrived as a carbon copy.
	Carbon bool
	// Archived is set for results of our archive catch-up.
	Archived bool

	Type      stanza.MessageType
	XMPPID    string
	OriginID  string
	StanzaID  string
	Body      string
	Timestamp time.Time

	messageRefs
	// ChatState is the XEP-0085 state, if any.
	ChatState chatstates.State
	// Markable and Markers are the XEP-0333 request and markers.
	Markable bool
	Markers  []markers.Marker

	// OMEMO is set by decryption for OMEMO messages (see handleomemo.go).
	OMEMO *omemoIncoming

	// Raw is the (unwrapped) message, for payloads handled later in the
	// pipeline such as OMEMO's <encrypted/>.
	Raw *stanzabuf.Stanza

	// ticket tracks the message's archive id for the catch-up cursor
	// (delivery.go); nil when untracked.
	ticket *archiveTicket
	// catchUpSeq is the catch-up an archive result belongs to.
	catchUpSeq uint64
}

// messageRefs are the references of a message to an earlier one, the same
// in 1:1 chats and group chats (only what the ids name differs).
type messageRefs struct {
	// Replace is the id of the message this one corrects (XEP-0308).
	Replace string
	// Retract is the id of the message this one retracts (XEP-0424).
	Retract string
	// ReplyTo is the message this one replies to (XEP-0461); its To may
	// be zero when the sender did not name the author.
	ReplyTo *reply.Reply
	// Reactions is the sender's full reaction set to one message (XEP-0444).
	Reactions *reactions.Reactions
}

// parseRefs reads the references of a message. Malformed ones are ignored,
// so that a broken element cannot cost the user the message text.
func parseRefs(st *stanzabuf.Stanza) messageRefs {
	var refs messageRefs
	if id, ok, err := correct.Parse(st.Reader()); err == nil && ok {
		refs.Replace = id
	}
	if id, ok, err := retract.Parse(st.Reader()); err == nil && ok {
		refs.Retract = id
	}
	if rep, ok, err := reply.Parse(st.Reader()); err == nil && ok {
		refs.ReplyTo = &rep
	}
	if r, ok, err := reactions.Parse(st.Reader()); err == nil && ok {
		refs.Reactions = &r
	}
	return refs
}

// stripReplyFallback removes the quote of a reply's body: Matrix shows the
// reply relation, so the quoted fallback goes.
func stripReplyFallback(st *stanzabuf.Stanza, body string) string {
	if body == "" {
		return body
	}
	if fbs, err := fallback.Parse(st.Reader()); err == nil {
		if stripped, err := reply.Strip(body, fbs); err == nil {
			return stripped
		}
	}
	return body
}

// errIgnored marks stanzas that are valid but not bridged (yet).
var errIgnored = errors.New("not bridged")

type messageFields struct {
	XMLName xml.Name           `xml:"message"`
	ID      string             `xml:"id,attr"`
	From    jid.JID            `xml:"from,attr"`
	To      jid.JID            `xml:"to,attr"`
	Type    stanza.MessageType `xml:"type,attr"`
	Bodies  []struct {
		Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
		Text string `xml:",chardata"`
	} `xml:"body"`
	Delay *struct {
		Stamp time.Time `xml:"stamp,attr"`
	} `xml:"urn:xmpp:delay delay"`
}

// parseIncoming classifies one message stanza received by account. It is
// pure so that the carbon and id rules can be tested without a server.
func parseIncoming(st *stanzabuf.Stanza, account jid.JID) (*incomingMessage, error) {
	account = account.Bare()
	inner := st
	in := &incomingMessage{}
	var carbonDelay time.Time
	c, err := carbons.Parse(st.Reader(), account)
	switch {
	case err == nil:
		in.Carbon, in.FromMe = true, c.Sent
		inner, err = stanzabuf.Read(c.Inner())
		if err != nil {
			return nil, fmt.Errorf("failed to read carbon: %w", err)
		}
		carbonDelay = c.Delay.Time
	case errors.Is(err, carbons.ErrNotCarbon):
	default:
		// Forged or malformed carbons are dropped, never bridged.
		return nil, err
	}
	return fillIncoming(inner, account, in, carbonDelay)
}

// parseArchivedMessage classifies an archive result of our own archive.
func parseArchivedMessage(a archived, account jid.JID) (*incomingMessage, error) {
	in := &incomingMessage{Archived: true, StanzaID: a.ArchiveID}
	return fillIncoming(a.Message, account.Bare(), in, a.Stamp)
}

// fillIncoming reads an (unwrapped) message into in. defaultTime is the
// time of the wrapper (carbon or archive), used when the message has none.
func fillIncoming(inner *stanzabuf.Stanza, account jid.JID, in *incomingMessage, defaultTime time.Time) (*incomingMessage, error) {
	in.Raw = inner

	var f messageFields
	if err := inner.Decode(&f); err != nil {
		return nil, fmt.Errorf("failed to decode message: %w", err)
	}
	ids, err := sid.Extract(inner.Reader())
	if err != nil {
		return nil, err
	}
	// The optional extensions below are ignored when malformed, so that a
	// broken chat state cannot cost the user the message text.
	in.ChatState, _ = chatstates.Parse(inner.Reader())
	if m, err := markers.Parse(inner.Reader()); err == nil {
		in.Markable, in.Markers = m.Markable, m.Markers
	}
	in.messageRefs = parseRefs(inner)
	in.Type = f.Type
	switch f.Type {
	case stanza.ChatMessage, stanza.NormalMessage, "":
	default:
		return nil, fmt.Errorf("%w: %s message", errIgnored, f.Type)
	}

	switch {
	case in.Archived:
		// Our archive holds what we sent (from one of our resources) and
		// what we received.
		if f.From.Bare().Equal(account) {
			in.FromMe, in.Peer = true, f.To.Bare()
		} else {
			in.Peer = f.From.Bare()
		}
	case in.FromMe:
		in.Peer = f.To.Bare()
	case in.Carbon:
		in.Peer = f.From.Bare()
	case f.From.Equal(jid.JID{}):
		// mellium blanks a from of our own bare JID; nothing but carbons
		// should come from there.
		return nil, fmt.Errorf("%w: message without sender", errIgnored)
	case f.From.Bare().Equal(account):
		// Sent by another of our clients to our own account.
		in.Peer, in.FromMe = account, true
	default:
		in.Peer = f.From.Bare()
	}
	if in.Peer.Equal(jid.JID{}) {
		return nil, fmt.Errorf("%w: no peer", errIgnored)
	}

	for _, b := range f.Bodies {
		if in.Body == "" || b.Lang == "" {
			in.Body = b.Text
		}
		if b.Lang == "" {
			break
		}
	}
	if in.ReplyTo != nil {
		in.Body = stripReplyFallback(inner, in.Body)
	}
	in.OriginID = ids.OriginID
	if in.StanzaID == "" {
		in.StanzaID, _ = ids.StanzaIDBy(account)
	}
	in.XMPPID = f.ID
	if in.XMPPID == "" {
		in.XMPPID = in.OriginID
	}
	if in.XMPPID == "" && in.StanzaID != "" {
		in.XMPPID = "sid:" + in.StanzaID
	}
	if in.XMPPID == "" {
		// Last resort for clients that send no id: the same stanza seen
		// twice (offline delivery, then a carbon) still hashes the same.
		h := sha256.New()
		enc := xml.NewEncoder(h)
		r := inner.Reader()
		for t, err := r.Token(); err == nil; t, err = r.Token() {
			_ = enc.EncodeToken(t)
		}
		_ = enc.Flush()
		in.XMPPID = "hash:" + hex.EncodeToString(h.Sum(nil))[:32]
	}
	switch {
	case f.Delay != nil && !f.Delay.Stamp.IsZero():
		in.Timestamp = f.Delay.Stamp
	case !defaultTime.IsZero():
		in.Timestamp = defaultTime
	}
	return in, nil
}

// handleMessage is the XMPP -> Matrix path for one message stanza:
// classify, decrypt, queue for bridgev2.
func (c *Client) handleMessage(ctx context.Context, st *stanzabuf.Stanza) {
	log := zerolog.Ctx(ctx)
	if c.handleAvatarEvent(ctx, st) || c.handlePEPEvent(ctx, st) {
		return
	}
	if attrValue(st.Start(), "type") == string(stanza.GroupChatMessage) {
		c.handleGroupchat(ctx, st)
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
	case errors.Is(err, errIgnored):
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
	if c.mucs.known(in.Peer) {
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
	a, err := parseArchived(st)
	switch {
	case errors.Is(err, errNotArchived):
		return parseIncoming(st, c.account)
	case err != nil:
		return nil, err
	}
	// mellium blanks a from of our own bare JID; anything else is someone
	// trying to inject history.
	if from := attrValue(st.Start(), "from"); from != "" && from != c.account.String() {
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
		return nil, fmt.Errorf("%w: history from before the login", errIgnored)
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
		ConvertMessageFunc: c.convertOnce(id, meta.Sender, ts, c.convertIncoming),
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
