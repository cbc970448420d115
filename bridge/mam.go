package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
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

// queryMode says what to do with the results of one of our MAM queries.
type queryMode int

const (
	// querySeed only learns the newest archive id (at the first connect,
	// history from before the login is not bridged).
	querySeed queryMode = iota + 1
	// queryCatchUp bridges the results.
	queryCatchUp
	// queryBackfill collects the results for FetchMessages (backfill.go).
	queryBackfill
)

// mamQueries remembers the queries of this client; results naming any
// other queryid are forged.
type mamQueries struct {
	mu sync.Mutex
	m  map[string]queryMode
	// seqs names the catch-up (delivery.go) each catch-up query is part of.
	seqs map[string]uint64
	// pages holds the results of running backfill queries.
	pages map[string][]xmppclient.Archived
	// rooms names the room each room catch-up query asks (mucarchive.go).
	rooms map[string]string
}

func (q *mamQueries) add(mode queryMode) string {
	id := random.String(16)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = map[string]queryMode{}
	}
	q.m[id] = mode
	return id
}

// addCatchUp is add(queryCatchUp) for catch-up seq.
func (q *mamQueries) addCatchUp(seq uint64) string {
	id := q.add(queryCatchUp)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seqs == nil {
		q.seqs = map[string]uint64{}
	}
	q.seqs[id] = seq
	return id
}

// seq is the catch-up query id belongs to (0: none).
func (q *mamQueries) seq(id string) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seqs[id]
}

func (q *mamQueries) mode(id string) queryMode {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.m[id]
}

// noteArchiveID saves the catch-up cursor in the login metadata: the
// watermark (delivery.go), or the newest archive id at the first connect.
func (c *Client) noteArchiveID(ctx context.Context, id string) {
	if id == "" {
		return
	}
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	meta := c.meta()
	if meta.LastArchiveID == id {
		return
	}
	meta.LastArchiveID = id
	if err := c.login.Save(ctx); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to save last archive id")
	}
}

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
		qid := c.mam.add(querySeed)
		qctx, cancel := context.WithTimeout(ctx, mamQueryTimeout)
		res, err := history.Fetch(qctx, history.Query{ID: qid, Limit: 1, Last: true}, c.account, s)
		cancel()
		if err != nil {
			log.Warn().Err(err).Msg("Archive not available")
			return false
		}
		c.noteArchiveID(ctx, res.Set.Last)
		return true
	}
	fromSince := after == ""
	for page := 0; page < mamMaxPages; page++ {
		qid := c.mam.addCatchUp(seq)
		qctx, cancel := context.WithTimeout(ctx, mamQueryTimeout)
		// A new login's first catch-up (no cursor yet) takes everything
		// since the login began; Start stays on every page, after moves.
		q := history.Query{ID: qid, Limit: mamPageSize, PageID: after}
		if fromSince {
			q.Start = since
		}
		res, err := history.Fetch(qctx, q, c.account, s)
		cancel()
		if err != nil {
			log.Warn().Err(err).Str("after", after).Msg("Archive query failed")
			return false
		}
		log.Debug().Int("page", page).Bool("complete", res.Complete).Str("last", res.Set.Last).Msg("Fetched archive page")
		if res.Complete || res.Set.Last == "" || res.Set.Last == after {
			return true
		}
		after = res.Set.Last
	}
	log.Warn().Msg("Stopped archive catch-up after too many pages; the next one continues")
	return false
}
