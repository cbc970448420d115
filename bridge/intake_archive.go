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

// inOwnArchive reports whether the account's archive (XEP-0313) holds a
// message with id xmppID that we sent to contact since since. The server
// archives what it routed, so a stanza that got out before a crash is
// there; one that died in the socket is not. It is asked only on recovery,
// for an event recorded as "sending" but not "sent".
func (c *Client) inOwnArchive(ctx context.Context, contact jid.JID, xmppID string, since time.Time) (bool, error) {
	if err := c.awaitReady(ctx); err != nil {
		return false, err
	}
	s := c.currentSession()
	if s == nil {
		return false, xmppclient.ErrNotConnected
	}
	return c.ownArchiveHas(ctx, s, contact, xmppID, since)
}

// ownArchiveHas is inOwnArchive on s, without waiting for the login to be
// ready (stream management asks it while the session is set up).
func (c *Client) ownArchiveHas(ctx context.Context, s *xmpp.Session, contact jid.JID, xmppID string, since time.Time) (bool, error) {
	q := history.Query{With: contact.Bare(), Start: since.Add(-10 * time.Minute), Last: true} // margin for clock skew with the server
	for page := 0; page < intakeArchivePages; page++ {
		q.Limit = 100
		got, res, err := c.fetchArchivePage(ctx, s, q)
		if err != nil {
			return false, fmt.Errorf("failed to query the archive for %s: %w", xmppID, err)
		}
		for _, a := range got {
			from, err := jid.Parse(a.From())
			if err == nil && from.Bare().Equal(c.account) && a.ID() == xmppID {
				zerolog.Ctx(ctx).Debug().Str("xmpp_id", xmppID).Str("archive_id", a.ArchiveID).Msg("Interrupted send found in the archive")
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
		return c.inOwnArchive(ctx, out.To, out.ID, since)
	}
}
