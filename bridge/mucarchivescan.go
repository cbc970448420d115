package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
)

// The Matrix intake's replay after a crash asks, for every row left
// "sending" or "sent" (written, not acknowledged; intake_ack.go), whether
// the room's archive has our message. With the server's acknowledgement
// lagging behind a busy inbound stream, a kill leaves tens of such rows;
// one archive look-up each (several pages of a large archive) took
// seconds per row on Prosody, the replay crawled, the next kill came
// before it was through and left more (TestRoomKill). So the replay scans
// the room's archive once, newest first, back to the oldest row's time, and
// answers the rows from that scan. The rows replayed were all written by a
// previous process, before the scan; the scan is kept for roomScanTTL only,
// so that a message sent later in this process is never judged by it.

// roomScanPages bounds a scan (the server's page size each: 50 on
// Prosody); roomScanTTL is how long a scan answers.
const (
	roomScanPages = 60
	roomScanTTL   = 2 * time.Minute
	// roomScanSkew is how far before a row's time (its latest send) the
	// scan looks, for the clocks of the bridge and the server; a send
	// hidden by a larger skew is sent again under its id (a duplicate
	// with one id, never a loss). In a busy room every minute is pages.
	roomScanSkew = 30 * time.Second
)

// roomScan is one scan: the ids (and origin-ids) of our messages in a
// room's archive since from.
type roomScan struct {
	from, at time.Time
	ids      map[string]bool
}

// roomScanCache holds the latest scan of each room.
type roomScanCache struct {
	mu    sync.Mutex
	scans map[string]*roomScan
}

// has answers whether xmppID is among our messages in room since since,
// from a scan that covers since or a new one (scan).
func (rc *roomScanCache) has(ctx context.Context, room jid.JID, xmppID string, since time.Time,
	scan func(ctx context.Context, from time.Time) (map[string]bool, error),
) (bool, error) {
	key := room.Bare().String()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if sc := rc.scans[key]; sc != nil && !since.Before(sc.from) && time.Since(sc.at) < roomScanTTL {
		return sc.ids[xmppID], nil
	}
	at := time.Now()
	ids, err := scan(ctx, since.Add(-roomScanSkew))
	if err != nil {
		return false, err
	}
	if rc.scans == nil {
		rc.scans = map[string]*roomScan{}
	}
	rc.scans[key] = &roomScan{from: since, at: at, ids: ids}
	return ids[xmppID], nil
}

// scanRoomArchive collects the ids and origin-ids of the messages from our
// nick in room's archive since from, newest page first.
func (c *Client) scanRoomArchive(ctx context.Context, s *xmpp.Session, room jid.JID, from time.Time) (map[string]bool, error) {
	r, _ := c.mucs.Get(room)
	ids := map[string]bool{}
	q := history.Query{Start: from, Limit: 100, Last: true}
	for page := 0; page < roomScanPages; page++ {
		q.ID = c.mam.AddRoomBackfill(room)
		got, res, err := c.mam.Collected(ctx, s, q, room.Bare(), backfillQueryTimeout)
		if err != nil {
			return nil, fmt.Errorf("failed to scan the archive of %s: %w", room, err)
		}
		for _, a := range got {
			rm, err := a.RoomMessage()
			m := rm.Message
			if err != nil || (r.Nick != "" && m.Nick() != r.Nick) {
				continue
			}
			for _, id := range []string{m.ID, m.OriginID} {
				if id != "" {
					ids[id] = true
				}
			}
		}
		var more bool
		if q, more = nextOlderPage(q, res, len(got)); !more {
			break
		}
	}
	return ids, nil
}

// precheckReplay fills the room scan a replayed row of the Matrix room
// mxid will be answered from (intake.precheck), when the room is a group
// chat portal of one of our logins.
func precheckReplay(ctx context.Context, br *bridgev2.Bridge, mxid id.RoomID, since time.Time) {
	p, err := br.GetPortalByMXID(ctx, mxid)
	if err != nil || p == nil {
		return
	}
	chat, err := portal.Parse(p.PortalKey)
	if err != nil || chat.Kind != portal.MUC || p.Receiver == "" {
		return
	}
	login := br.GetCachedUserLoginByID(p.Receiver)
	if login == nil {
		return
	}
	c, ok := login.Client.(*Client)
	if !ok {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, c.main.Config.sendWait())
	defer cancel()
	if err := c.awaitReady(wctx); err != nil {
		return
	}
	s := c.currentSession()
	if s == nil {
		return
	}
	if _, err := c.roomScans.has(wctx, chat.JID, "", since, func(ctx context.Context, from time.Time) (map[string]bool, error) {
		return c.scanRoomArchive(ctx, s, chat.JID, from)
	}); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", chat.JID).Msg("Failed to scan the room's archive before a replay; the handler looks again")
	}
}
