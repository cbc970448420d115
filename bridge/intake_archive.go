package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// intakeArchivePages bounds the archive pages read to find an interrupted
// send (100 messages each, or the server's page size). The pages are read
// newest first (RSM <before/>): the send is among the last messages before
// the crash, and in a busy chat the time window (since, less the margin for
// clock skew) holds far more than these pages; read oldest first, a
// send of a few seconds ago was not reached and was sent a second time
// (TestRoomKill, Prosody's 50-message pages).
const intakeArchivePages = 5

// nextOlderPage is q for the page before res (newest first); ok is false
// when res was the oldest.
func nextOlderPage(q history.Query, res history.Result, got int) (history.Query, bool) {
	if res.Complete || got == 0 || res.Set.First.ID == "" || res.Set.First.ID == q.PageID {
		return q, false
	}
	q.PageID = res.Set.First.ID
	return q, true
}

// inArchive reports whether the archive of the chat to (XEP-0313: the
// account's for a contact, the room's for a room) holds a message with id
// xmppID that we sent there since since. The server archives what it
// routed, so a stanza that got out before a crash is there; one that died
// in the socket is not. It is asked only on recovery, for an event
// recorded as "sending" but not "sent".
func (c *Client) inArchive(ctx context.Context, to jid.JID, room bool, xmppID string, since time.Time) (bool, error) {
	if err := c.awaitReady(ctx); err != nil {
		return false, err
	}
	s := c.currentSession()
	if s == nil {
		return false, xmppclient.ErrNotConnected
	}
	if room {
		// The replay's rows of a room are answered from one scan
		// (mucarchivescan.go).
		return c.roomScans.has(ctx, to, xmppID, since, func(ctx context.Context, from time.Time) (map[string]bool, error) {
			return c.scanRoomArchive(ctx, s, to, from)
		})
	}
	return c.archiveHasSent(ctx, s, to, room, xmppID, since)
}

// archiveHasSent is inArchive on s, without waiting for the login to be
// ready (stream management asks it while the session is set up). In a room
// our message is the one with our id (or origin-id) from our nick; in the
// account's archive the one with our id from our account.
func (c *Client) archiveHasSent(ctx context.Context, s *xmpp.Session, to jid.JID, room bool, xmppID string, since time.Time) (bool, error) {
	q := history.Query{Start: since.Add(-10 * time.Minute), Limit: 100, Last: true} // margin for clock skew with the server; newest first (intakeArchivePages)
	fetch := c.fetchArchivePage
	sent := func(a xmppclient.Archived) bool {
		from, err := jid.Parse(a.From())
		return err == nil && from.Bare().Equal(c.account) && a.ID() == xmppID
	}
	if room {
		r, _ := c.mucs.Get(to)
		fetch = func(ctx context.Context, s *xmpp.Session, q history.Query) ([]xmppclient.Archived, history.Result, error) {
			q.ID = c.mam.AddRoomBackfill(to)
			return c.mam.Collected(ctx, s, q, to.Bare(), backfillQueryTimeout)
		}
		sent = func(a xmppclient.Archived) bool {
			rm, err := a.RoomMessage()
			m := rm.Message
			return err == nil && (m.ID == xmppID || m.OriginID == xmppID) && (r.Nick == "" || m.Nick() == r.Nick)
		}
	} else {
		q.With = to.Bare()
	}
	for page := 0; page < intakeArchivePages; page++ {
		got, res, err := fetch(ctx, s, q)
		if err != nil {
			return false, fmt.Errorf("failed to query the archive of %s for %s: %w", to, xmppID, err)
		}
		for _, a := range got {
			if sent(a) {
				zerolog.Ctx(ctx).Debug().Str("xmpp_id", xmppID).Str("archive_id", a.ArchiveID).Bool("room", room).Msg("Interrupted send found in the archive")
				return true, nil
			}
		}
		var more bool
		if q, more = nextOlderPage(q, res, len(got)); !more {
			return false, nil
		}
	}
	return false, nil
}

// archivedCheck is sendOnce's look at the archive for out.
func (c *Client) archivedCheck(ctx context.Context, out *xmppclient.Outgoing) func(time.Time) (bool, error) {
	return func(since time.Time) (bool, error) {
		return c.inArchive(ctx, out.To, false, out.ID, since)
	}
}
