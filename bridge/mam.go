package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/history"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Catch-up after a reconnect: while the bridge was away, messages may have
// gone only to the user's other clients (the server keeps offline messages
// only when no client at all is online). The account's archive (XEP-0313)
// has them; the bridge asks for everything after its cursor (a watermark of
// what is stored on Matrix, see delivery.go and xmppclient/cursor.go) and feeds the
// results through the normal message path, where bridgev2's message IDs
// make anything already bridged a no-op.

const (
	mamPageSize = 50
	// mamMaxPages bounds one catch-up; the cursor only moves over what was
	// stored, so the next catch-up continues where this one stopped.
	mamMaxPages = 200
	// mamQueryTimeout bounds one page: live messages wait for the
	// catch-up, so a server that never answers must not hold them.
	mamQueryTimeout = time.Minute
)

// Errors for archive results.
var (
	errUnknownQuery   = errors.New("archive result for a query we did not make")
	errForgedArchived = errors.New("archive result not sent by our own account")
)

// catchUp pages through the archive after the cursor; the results go
// through the incoming queue. It reports whether it reached the end of the
// archive.
func (c *Client) catchUp(ctx context.Context, s *xmpp.Session, seq uint64) bool {
	log := zerolog.Ctx(ctx).With().Str("action", "archive catch-up").Logger()
	c.metaMu.Lock()
	after, since := c.meta().LastArchiveID, c.meta().ArchiveSince
	c.metaMu.Unlock()
	if after == "" && since.IsZero() {
		// A login from before ArchiveSince existed: start from now.
		qid := c.mam.Add(xmppclient.QuerySeed)
		res, err := xmppclient.Fetch(ctx, s, history.Query{ID: qid, Limit: 1, Last: true}, c.account, mamQueryTimeout)
		if err != nil {
			log.Warn().Err(err).Msg("Archive not available")
			return false
		}
		c.mam.Done(qid)
		c.noteArchiveID(ctx, xmppclient.AccountLane, res.Set.Last)
		return true
	}
	ctx = log.WithContext(ctx)
	return xmppclient.CatchUp(ctx, s, c.account, after, since, xmppclient.CatchUpIDs{Queries: &c.mam, Seq: seq},
		mamPageSize, mamMaxPages, mamQueryTimeout)
}
