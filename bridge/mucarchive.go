package bridge

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Group chat catch-up (see docs/delivery.md): a room's messages are
// archived by the room (XEP-0313 on the room JID), not by the account, and
// the bridge joins without MUC history. Each saved room keeps its own
// watermark (SavedRoom.LastArchiveID), the room's stanza-id up to which
// every message is stored on Matrix, moved by the same rules as the
// account's (xmppclient/cursor.go). On every join the room's archive is asked for
// what came after it, or, while nothing of the room is stored yet, for
// what came since the login first joined it (SavedRoom.JoinedAt, saved
// with the room before the join command answers), so that a crash before
// the room's first stored message loses nothing either; live messages of the room wait until the last page
// has been handled, so that the portal gets them in the room's order. A
// message seen both in the archive and live has the same bridgev2 message
// id (the room's stanza-id) and is bridged once.

// A room without an archive (no XEP-0313 in its disco#info) has no
// catch-up; what it gives instead is its discussion history (XEP-0045
// §7.2.15), the last messages it keeps in memory (20 by default on Prosody
// and ejabberd). On a rejoin such a room is asked for its history since
// the newest message stored in the portal (less roomHistoryMargin for the
// two clocks), and never since before the login first joined it. The
// history goes through the same path as live messages: a message already
// stored has the same bridgev2 message id (the sender's nick and the id
// it gave the message) and is dropped by bridgev2; one cut by a crash
// during its Matrix send is found by its sending mark (sending.go). A
// history message with no id at all cannot be told from one already
// bridged and is skipped.

// roomHistoryMax is how many history messages a rejoin asks for; rooms cap
// it at their own history length.
const roomHistoryMax = 100

// roomHistoryMargin is how long before the newest stored message the
// history asked for starts.
const roomHistoryMargin = 2 * time.Minute

// rejoinHistory is the history a rejoin of saved asks for if the room
// keeps no archive: none while nothing of the room was stored and the
// first join's time is unknown.
func (c *Client) rejoinHistory(ctx context.Context, saved SavedRoom) xmppclient.JoinOptions {
	room, err := jid.Parse(saved.JID)
	if err != nil || c.main == nil || c.main.Bridge == nil {
		return xmppclient.JoinOptions{}
	}
	var since time.Time
	last, err := c.main.Bridge.DB.Message.GetLastPartAtOrBeforeTime(ctx, c.mucKey(room), time.Now().Add(time.Hour))
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", room).Msg("Failed to read the room's newest stored message")
	} else if last != nil {
		since = last.Timestamp.Add(-roomHistoryMargin)
	}
	if joined := saved.joinedSince(); joined.After(since) {
		since = joined
	}
	if since.IsZero() {
		return xmppclient.JoinOptions{}
	}
	return xmppclient.JoinOptions{HistoryWithoutArchive: roomHistoryMax, HistorySince: since}
}

// idlessHistory reports whether m is a message of a room's discussion
// history (delayed, not from an archive query) without any id to tell it
// from the same message bridged live before.
func idlessHistory(m mucroom.Message, catchUpSeq uint64) bool {
	return catchUpSeq == 0 && !m.Delay.IsZero() && m.StanzaID == "" && m.ID == "" && m.OriginID == ""
}

// startRoomCatchUp queues the start mark of room's catch-up
// (startCatchUp, before the join presence, so that the room's live
// messages wait behind it) and returns what ends it: with the joined
// session (and when that join began), the catch-up runs in the background;
// with none (the join failed), the room's cursor stays.
func (c *Client) startRoomCatchUp(room jid.JID) func(s *xmpp.Session, mam bool, joinStarted time.Time) {
	c.mu.Lock()
	loopCtx := c.loopCtx
	c.mu.Unlock()
	if loopCtx == nil {
		return func(*xmpp.Session, bool, time.Time) {}
	}
	run := c.startCatchUp(loopCtx, room.Bare().String())
	return func(s *xmpp.Session, mam bool, joinStarted time.Time) {
		run(s, func(ctx context.Context, s *xmpp.Session, seq uint64) bool {
			return c.roomCatchUp(ctx, s, room.Bare(), seq, mam, joinStarted)
		})
	}
}

// savedRoom is room's entry in the login metadata.
func (c *Client) savedRoom(room jid.JID) (SavedRoom, bool) {
	key := room.Bare().String()
	for _, r := range c.savedRooms() {
		if r.JID == key {
			return r, true
		}
	}
	return SavedRoom{}, false
}

// joinedSince is the earliest time a room's messages are bridged from:
// when the login first joined it, a second early for the server's
// second-precision times (as the account's ArchiveSince); zero when not
// known.
func (saved SavedRoom) joinedSince() time.Time {
	if saved.JoinedAt == 0 {
		return time.Time{}
	}
	return time.UnixMilli(saved.JoinedAt).UTC().Truncate(time.Second).Add(-time.Second)
}

// roomCatchUp pages through room's archive after its cursor; a room
// without one (nothing of it stored yet) gets its history (muchistory.go)
// and, once the login has joined it before, everything since that first
// join. The results go through the incoming queue. It reports whether it
// reached the end (or had nothing to do: a room without an archive, or a
// first join with history backfill off, whose live messages set the
// cursor).
func (c *Client) roomCatchUp(ctx context.Context, s *xmpp.Session, room jid.JID, seq uint64, mam bool, joinStarted time.Time) bool {
	log := zerolog.Ctx(ctx).With().Str("action", "room archive catch-up").Stringer("room", room).Logger()
	saved, _ := c.savedRoom(room)
	backfill, initial := c.roomHistorySize()
	since := saved.joinedSince()
	if saved.JoinedAt != 0 && saved.JoinedAt == joinStarted.UnixMilli() {
		// The first join itself (rememberRoom may have saved it before
		// this runs): its history and live messages are all there is;
		// the time only guards a rejoin after a crash. This join's own
		// start, not the room's latest: a later join may have begun.
		since = time.Time{}
	}
	plan, ok := roomArchiveStart(saved.LastArchiveID, since, backfill, initial)
	if !mam || !ok {
		return true
	}
	ctx = log.WithContext(ctx)
	ids := xmppclient.CatchUpIDs{Queries: &c.mam, Seq: seq, Room: room}
	after := plan.after
	if plan.history > 0 {
		last, ok := xmppclient.CatchUpNewest(ctx, s, room, plan.history, plan.since, ids, mamQueryTimeout)
		if !ok || plan.since.IsZero() {
			return ok
		}
		// What came since the first join follows the history.
		after = last
	}
	return xmppclient.CatchUp(ctx, s, room, after, plan.since, ids, mamPageSize, mamMaxPages, mamQueryTimeout)
}

// handleRoomArchived handles a result of a room archive query; it reports
// whether st was one.
func (c *Client) handleRoomArchived(ctx context.Context, in xmppclient.Inbound) bool {
	a := in.Archived
	if in.Err != nil || a.Query.Mode != xmppclient.QueryRoomCatchUp {
		return false
	}
	log := zerolog.Ctx(ctx)
	room := a.Query.Room
	if from := in.From; from != room {
		log.Warn().Str("from", from).Str("room", room).Msg("Dropping forged room archive result")
		return true
	}
	rm, err := a.RoomMessage()
	m := rm.Message
	if err != nil {
		log.Warn().Err(err).Msg("Dropping malformed room archive result")
		return true
	}
	if m.From.Bare().String() != room {
		log.Warn().Stringer("from", m.From).Str("room", room).Msg("Dropping room archive result from elsewhere")
		return true
	}
	// The archive id is the room's stanza-id (XEP-0313 §5.1.2), which
	// keys the live copy too.
	m.StanzaID = a.ArchiveID
	if m.Delay.IsZero() {
		m.Delay = a.Stamp
	}
	if m.Delay.IsZero() {
		m.Delay = time.Now()
	}
	c.processGroupchat(ctx, xmppclient.RoomMessage{Raw: rm.Raw, Message: m}, a.Query.Seq)
	return true
}
