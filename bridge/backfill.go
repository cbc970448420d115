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
	"mellium.im/xmpp"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// History backfill of 1:1 chats from the account's own archive (XEP-0313),
// through bridgev2's backfill: FetchMessages is called when a portal is
// created (forward, the newest messages) and, with the backfill queue on,
// for older pages (backward; the cursor is the oldest archive id fetched).
//
// Archived messages go through the same classification as live and
// catch-up ones (parseArchivedMessage) and get the same message IDs, so a
// message that arrives live, by catch-up and by backfill is bridged once:
// bridgev2 drops a live event whose ID it has, and backfill is deduplicated
// against the database (AggressiveDeduplication).
//
// The results of a backfill query are taken out of the stream in the Serve
// loop (collectBackfill), not queued behind live messages: the query runs
// inside the portal's event loop while it creates the room, and that loop
// may be what the message queue is waiting for.
//
// OMEMO messages are never decrypted here: a message the bridge's device
// decrypted before has its plaintext (or its failure notice) in the inbox
// until bridgev2 stored it; one never decrypted cannot be decrypted out of
// order without moving the live ratchets. A message that carries a key for
// our device is left to the live path (catch-up decrypts it in order), one
// without (sent before the device existed, or by the bridge itself from
// Matrix) becomes a notice.

var _ bridgev2.BackfillingNetworkAPI = (*Client)(nil)

const (
	backfillQueryTimeout = time.Minute
	backfillMaxPages     = 10
	backfillDefaultCount = 50
)

// omemoHistoryNotice stands in for archived OMEMO messages the bridge's
// device cannot read.
const omemoHistoryNotice = "[OMEMO message from before the bridge's device existed (not encrypted for it), its text cannot be shown]"

// omemoSentNotice stands in for archived OMEMO messages the bridge sent
// from Matrix (OMEMO never encrypts for the sending device) that are not in
// the portal.
const omemoSentNotice = "[OMEMO message sent from Matrix through the bridge, its text is not kept]"

// collectBackfill takes the results of our backfill queries out of the
// stream; it runs in the Serve loop, so the query's <fin/> (read after
// them) finds them all collected. It reports whether st was consumed.
func (c *Client) collectBackfill(in xmppclient.Inbound) bool {
	if !c.mam.Collecting() || in.Kind != xmppclient.KindArchived || in.Err != nil {
		return false
	}
	a := in.Archived
	// The Router looked the result's query up as it read it.
	if a.Query.Mode != xmppclient.QueryBackfill {
		return false
	}
	from := in.From
	if room := a.Query.Room; room != "" {
		// A query of a room's archive (mucarchive.go): only the room answers.
		if from != room {
			c.login.Log.Warn().Str("from", from).Str("room", room).Msg("Dropping forged room archive result")
			return true
		}
	} else if from != "" && from != c.account.String() {
		c.login.Log.Warn().Str("from", from).Msg("Dropping forged archive result")
		return true
	}
	return c.mam.Collect(a)
}

// fetchArchivePage runs one archive query with its own query id.
func (c *Client) fetchArchivePage(ctx context.Context, s *xmpp.Session, q history.Query) ([]xmppclient.Archived, history.Result, error) {
	q.ID = c.mam.AddBackfill()
	return c.mam.Collected(ctx, s, q, c.account, backfillQueryTimeout)
}

// archiveQuery is where FetchMessages starts reading: newest first (last
// page, paging backwards with RSM <before/>) or oldest first after an id.
func archiveQuery(contact jid.JID, p bridgev2.FetchMessagesParams) history.Query {
	q := history.Query{With: contact}
	anchorID := ""
	if p.AnchorMessage != nil {
		anchorID = messageStanzaID(p.AnchorMessage)
	}
	switch {
	case p.Forward && p.AnchorMessage == nil:
		q.Last = true
	case p.Forward && anchorID != "":
		q.PageID = anchorID
	case p.Forward:
		q.Start = p.AnchorMessage.Timestamp
	case p.Cursor != "":
		q.Last, q.PageID = true, string(p.Cursor)
	case anchorID != "":
		q.Last, q.PageID = true, anchorID
	case p.AnchorMessage != nil:
		q.Last, q.End = true, p.AnchorMessage.Timestamp
	default:
		q.Last = true
	}
	return q
}

// FetchMessages implements bridgev2.BackfillingNetworkAPI for 1:1 chats.
func (c *Client) FetchMessages(ctx context.Context, p bridgev2.FetchMessagesParams) (*bridgev2.FetchMessagesResponse, error) {
	chat, err := portal.Parse(p.Portal.PortalKey)
	if err != nil {
		return nil, err
	}
	if chat.Kind != portal.DM || p.ThreadRoot != "" {
		// Room history is not backfilled yet (the room's archive, not ours).
		return &bridgev2.FetchMessagesResponse{Forward: p.Forward}, nil
	}
	s := c.currentSession()
	if s == nil {
		return nil, xmppclient.ErrNotConnected
	}
	log := zerolog.Ctx(ctx).With().Str("action", "archive backfill").Stringer("contact", chat.JID).Logger()
	ctx = log.WithContext(ctx)
	want := p.Count
	if want <= 0 {
		want = backfillDefaultCount
	}
	q := archiveQuery(chat.JID, p)
	var all []xmppclient.Archived
	complete := false
	for page := 0; page < backfillMaxPages && len(all) < want; page++ {
		q.Limit = uint64(want - len(all))
		got, res, err := c.fetchArchivePage(ctx, s, q)
		if err != nil {
			if page == 0 {
				return nil, fmt.Errorf("failed to query the archive: %w", err)
			}
			log.Warn().Err(err).Msg("Archive query failed, backfilling what was fetched")
			break
		}
		next := res.Set.Last
		if q.Last {
			all = append(got, all...)
			next = res.Set.First.ID
		} else {
			all = append(all, got...)
		}
		if res.Complete || len(got) == 0 || next == "" || next == q.PageID {
			complete = true
			break
		}
		q.PageID = next
	}
	msgs := c.backfillMessages(ctx, p.Portal, chat.JID, all)
	resp := &bridgev2.FetchMessagesResponse{
		Messages:                msgs,
		HasMore:                 !complete,
		Forward:                 p.Forward,
		AggressiveDeduplication: true,
	}
	if len(all) > 0 {
		resp.Cursor = networkid.PaginationCursor(all[0].ArchiveID)
	}
	log.Debug().Int("archived", len(all)).Int("messages", len(msgs)).Bool("complete", complete).Msg("Fetched history from the archive")
	return resp, nil
}

// backfillMessages turns archive results into bridgev2 backfill messages,
// oldest first.
func (c *Client) backfillMessages(ctx context.Context, p *bridgev2.Portal, contact jid.JID, results []xmppclient.Archived) []*bridgev2.BackfillMessage {
	log := zerolog.Ctx(ctx)
	ins := make([]*incoming, 0, len(results))
	for _, a := range results {
		in, err := parseArchivedMessage(a, c.account)
		if err != nil {
			log.Debug().Err(err).Str("archive_id", a.ArchiveID).Msg("Not backfilling archived message")
			continue
		}
		if !in.Peer.Equal(contact.Bare()) {
			continue
		}
		if !c.historyOMEMO(ctx, in) {
			continue
		}
		ins = append(ins, in)
	}
	entries := foldHistory(ins, c.account)
	out := make([]*bridgev2.BackfillMessage, 0, len(entries))
	for _, e := range entries {
		sender, _ := c.sender(e.In)
		intent, ok := p.GetIntentFor(ctx, sender, c.login, bridgev2.RemoteEventMessage)
		if !ok {
			continue
		}
		conv, err := c.convertMessage(ctx, p, intent, e.In)
		if err != nil {
			log.Warn().Err(err).Str("xmpp_id", e.In.XMPPID).Msg("Failed to convert archived message")
			continue
		}
		if conv.ReplyTo == nil && e.ReplyTo != "" {
			conv.ReplyTo = &networkid.MessageOptionalPartID{MessageID: e.ReplyTo}
		}
		ts := e.In.Timestamp
		if ts.IsZero() {
			ts = time.Now()
		}
		bm := &bridgev2.BackfillMessage{ConvertedMessage: conv, Sender: sender, ID: e.ID, Timestamp: ts}
		for _, r := range e.Reactions {
			rs, _ := c.sender(r.In)
			for _, emoji := range r.Emojis {
				bm.Reactions = append(bm.Reactions, &bridgev2.BackfillReaction{
					Sender: rs, EmojiID: networkid.EmojiID(emoji), Emoji: emoji, Timestamp: r.In.Timestamp,
				})
			}
		}
		out = append(out, bm)
	}
	return out
}

// historyOMEMO puts what is known about an archived OMEMO message into in
// (see the top of this file); false when it is not to be backfilled.
func (c *Client) historyOMEMO(ctx context.Context, in *incoming) bool {
	rcv, err := in.Message.OMEMO()
	if errors.Is(err, omemoxmpp.ErrNotEncrypted) {
		return true
	}
	_, senderJID := c.sender(in)
	if err == nil && xmppclient.Payloadless(rcv) {
		// A heartbeat or key transport (the bridge's own among them):
		// never a message.
		return false
	}
	if err == nil {
		e, ierr := c.inboxGet(ctx, string(portal.MakeMessageID(in.Peer, senderJID, in.XMPPID)))
		if ierr != nil {
			zerolog.Ctx(ctx).Warn().Err(ierr).Msg("Failed to look up archived OMEMO message in the inbox")
			return false
		}
		if e != nil {
			applyInbox(in, e)
			return e.Kind != inboxEmpty && in.Body != ""
		}
		oc := c.omemoClient()
		if oc == nil {
			return false
		}
		own := oc.Manager().DeviceID()
		for _, el := range rcv.Elements {
			if el.KeyFor(c.account.String(), own) != nil {
				// Ours to decrypt, in order, on the live path.
				return false
			}
		}
		if in.FromMe && rcv.Elements[0].SenderDevice == own {
			in.Body, in.Replace, in.Reactions, in.Retract = omemoSentNotice, "", nil, ""
			in.OMEMO = &omemoIncoming{Failed: true}
			return true
		}
	}
	in.Body, in.Replace, in.Reactions, in.Retract = omemoHistoryNotice, "", nil, ""
	in.OMEMO = &omemoIncoming{Failed: true}
	return true
}

// historyEntry is one message to backfill, with what later archive entries
// of the same batch did to it.
type historyEntry struct {
	In        *incoming
	ID        networkid.MessageID
	ReplyTo   networkid.MessageID
	Reactions []historyReactions
}

// historyReactions is one sender's latest reaction set to a message.
type historyReactions struct {
	In     *incoming
	Emojis []string
}

// foldHistory orders a batch of archived messages into backfill entries:
// corrections replace the text of their message, retractions remove it,
// reactions (the sender's latest set) are attached to it. Corrections,
// retractions and reactions whose target is not in the batch are dropped:
// a backfilled message never appears twice, and an edit of a message
// outside the batch has nothing to edit.
func foldHistory(ins []*incoming, account jid.JID) []*historyEntry {
	var entries []*historyEntry
	byID := map[networkid.MessageID]*historyEntry{}
	senderOf := func(in *incoming) jid.JID {
		if in.FromMe {
			return account.Bare()
		}
		return in.Peer.Bare()
	}
	find := func(in *incoming, id string) *historyEntry {
		for _, author := range []jid.JID{in.Peer, account} {
			if e := byID[portal.MakeMessageID(in.Peer, author, id)]; e != nil {
				return e
			}
		}
		return nil
	}
	for _, in := range ins {
		sender := senderOf(in)
		switch {
		case in.Reactions != nil:
			target := find(in, in.Reactions.ID)
			if target == nil {
				continue
			}
			target.Reactions = slicesDeleteSender(target.Reactions, sender, account)
			if len(in.Reactions.Emojis) > 0 {
				target.Reactions = append(target.Reactions, historyReactions{In: in, Emojis: in.Reactions.Emojis})
			}
		case in.Retract != "":
			id := portal.MakeMessageID(in.Peer, sender, in.Retract)
			if e := byID[id]; e != nil {
				e.In = nil
			}
		case in.Body == "":
		case in.Replace != "":
			if e := byID[portal.MakeMessageID(in.Peer, sender, in.Replace)]; e != nil && e.In != nil {
				corrected := *e.In
				corrected.Body, corrected.OMEMO = in.Body, in.OMEMO
				e.In = &corrected
			}
		default:
			e := &historyEntry{In: in, ID: portal.MakeMessageID(in.Peer, sender, in.XMPPID)}
			if byID[e.ID] != nil {
				continue
			}
			if in.ReplyTo != nil {
				if t := find(in, in.ReplyTo.ID); t != nil {
					e.ReplyTo = t.ID
				}
			}
			byID[e.ID] = e
			entries = append(entries, e)
		}
	}
	out := entries[:0]
	for _, e := range entries {
		if e.In != nil {
			out = append(out, e)
		}
	}
	return out
}

func slicesDeleteSender(rs []historyReactions, sender, account jid.JID) []historyReactions {
	out := rs[:0]
	for _, r := range rs {
		s := r.In.Peer.Bare()
		if r.In.FromMe {
			s = account.Bare()
		}
		if !s.Equal(sender) {
			out = append(out, r)
		}
	}
	return out
}

// messageStanzaID is the archive id kept with a bridged message.
func messageStanzaID(msg *database.Message) string {
	if meta, ok := msg.Metadata.(*portal.MessageMetadata); ok {
		return meta.StanzaID
	}
	return ""
}
