package xmppclient

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"mellium.im/xmpp"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"
)

// Archive queries (XEP-0313): the catch-up after a reconnect (the account's
// archive, and each room's after a join), backfill, and the look for a
// send a crash interrupted. Every query has an id of ours, remembered in
// Queries; a result naming any other is forged.
//
// The Router looks each result's query up as it reads it (Archived.Query),
// in the Serve loop. The server sends a query's results before its answer
// (XEP-0313 §4.1: the <fin/>), and the Serve loop reads them in that order,
// so once a query's <fin/> came every result of it has been looked up and
// its id can be forgotten (Done): a login's catch-ups no longer keep one
// entry per page for good. A query that failed or timed out is kept, since
// its results may still come.

// QueryMode says what to do with the results of one of our queries.
type QueryMode int

const (
	// QuerySeed only learns the newest archive id (at the first connect,
	// history from before the login is not bridged).
	QuerySeed QueryMode = iota + 1
	// QueryCatchUp bridges the results (they go through the stream).
	QueryCatchUp
	// QueryBackfill collects the results for their caller (Collected).
	QueryBackfill
	// QueryRoomCatchUp bridges the results of a room's archive.
	QueryRoomCatchUp QueryMode = 100
)

// Queries remembers one login's archive queries.
type Queries struct {
	mu sync.Mutex
	m  map[string]QueryMode
	// seqs names the catch-up each catch-up query is part of.
	seqs map[string]uint64
	// pages holds the results of running collected queries.
	pages map[string][]Archived
	// rooms names the room a room query asks.
	rooms map[string]string
}

// Add registers a query and returns its id.
func (q *Queries) Add(mode QueryMode) string {
	id := random.String(16)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = map[string]QueryMode{}
	}
	q.m[id] = mode
	return id
}

// AddCatchUp is Add(QueryCatchUp) for catch-up seq.
func (q *Queries) AddCatchUp(seq uint64) string {
	id := q.Add(QueryCatchUp)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seqs == nil {
		q.seqs = map[string]uint64{}
	}
	q.seqs[id] = seq
	return id
}

// AddRoomCatchUp registers a query of room's archive for catch-up seq.
func (q *Queries) AddRoomCatchUp(room jid.JID, seq uint64) string {
	id := q.AddCatchUp(seq)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.m[id] = QueryRoomCatchUp
	q.setRoom(id, room)
	return id
}

// AddBackfill registers a collected query of our own archive.
func (q *Queries) AddBackfill() string {
	id := q.Add(QueryBackfill)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pages == nil {
		q.pages = map[string][]Archived{}
	}
	q.pages[id] = nil
	return id
}

// AddRoomBackfill registers a collected query of room's archive.
func (q *Queries) AddRoomBackfill(room jid.JID) string {
	id := q.AddBackfill()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.setRoom(id, room)
	return id
}

func (q *Queries) setRoom(id string, room jid.JID) {
	if q.rooms == nil {
		q.rooms = map[string]string{}
	}
	q.rooms[id] = room.Bare().String()
}

// QueryInfo is what one of our archive queries is for.
type QueryInfo struct {
	// Mode is 0 for a query that is not ours (or no longer remembered).
	Mode QueryMode
	// Seq is the catch-up the query is part of (0: none).
	Seq uint64
	// Room is the room whose archive the query asks ("" for our own).
	Room string
}

// Lookup is what query id is for; the Router asks it for each result.
func (q *Queries) Lookup(id string) QueryInfo {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueryInfo{Mode: q.m[id], Seq: q.seqs[id], Room: q.rooms[id]}
}

// Resolve looks up the query of in when it is an archive result; the
// Router calls it on every message as it reads it.
func (q *Queries) Resolve(in *Inbound) {
	if in.Kind == KindArchived {
		in.Archived.Query = q.Lookup(in.Archived.QueryID)
	}
}

// Done forgets query id, whose <fin/> came: all its results came before it
// and were looked up then. Collected queries are forgotten by Finish.
func (q *Queries) Done(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, collected := q.pages[id]; collected {
		return
	}
	delete(q.m, id)
	delete(q.seqs, id)
	delete(q.rooms, id)
	q.dropEmpty()
}

// dropEmpty lets go of maps left empty: Go keeps an emptied map's buckets,
// ≈ 0.8 kB for a login's catch-ups.
func (q *Queries) dropEmpty() {
	if len(q.m) == 0 {
		q.m = nil
	}
	if len(q.seqs) == 0 {
		q.seqs = nil
	}
	if len(q.rooms) == 0 {
		q.rooms = nil
	}
	if len(q.pages) == 0 {
		q.pages = nil
	}
}

// Len is how many queries are remembered.
func (q *Queries) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.m)
}

// Collect keeps a result of a running collected query; false when a is
// not one.
func (q *Queries) Collect(a Archived) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.pages[a.QueryID]; !ok || q.m[a.QueryID] != QueryBackfill {
		return false
	}
	q.pages[a.QueryID] = append(q.pages[a.QueryID], a)
	return true
}

// Collecting reports whether a collected query runs.
func (q *Queries) Collecting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pages) > 0
}

// Finish ends a collected query and returns its results in archive order.
func (q *Queries) Finish(id string) []Archived {
	q.mu.Lock()
	defer q.mu.Unlock()
	res := q.pages[id]
	delete(q.pages, id)
	delete(q.m, id)
	delete(q.rooms, id)
	q.dropEmpty()
	return res
}

// Fetch runs one archive query on archive (our account, or a room) for at
// most timeout. Its results come through the stream (the Router).
func Fetch(ctx context.Context, s *xmpp.Session, query history.Query, archive jid.JID, timeout time.Duration) (history.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return history.Fetch(ctx, query, archive, s)
}

// Collected runs query, registered with AddBackfill or AddRoomBackfill, and
// returns its results, which the Router took out of the stream for it
// (Intercept): it runs in the Serve loop, so the query's <fin/> (read after
// them) finds them all collected.
func (q *Queries) Collected(ctx context.Context, s *xmpp.Session, query history.Query, archive jid.JID, timeout time.Duration) ([]Archived, history.Result, error) {
	res, err := Fetch(ctx, s, query, archive, timeout)
	got := q.Finish(query.ID)
	if err != nil {
		return nil, res, err
	}
	return got, res, nil
}

// CatchUpIDs registers the queries of one catch-up in Queries: of the
// room's archive when Room is set, else of our own.
type CatchUpIDs struct {
	Queries *Queries
	Seq     uint64
	Room    jid.JID
}

// add registers one query of the catch-up and returns its id.
func (c CatchUpIDs) add() string {
	if c.Room.Equal(jid.JID{}) {
		return c.Queries.AddCatchUp(c.Seq)
	}
	return c.Queries.AddRoomCatchUp(c.Room, c.Seq)
}

// fetch runs one query of the catch-up and forgets its id once answered.
func (c CatchUpIDs) fetch(ctx context.Context, s *xmpp.Session, q history.Query, archive jid.JID, timeout time.Duration) (history.Result, error) {
	q.ID = c.add()
	res, err := Fetch(ctx, s, q, archive, timeout)
	if err == nil {
		c.Queries.Done(q.ID)
	}
	return res, err
}

// CatchUpNewest asks archive for its newest n messages (of those up to
// end, when set), one query (the last page, RSM <before/>) registered with
// ids, its results going through the stream in the archive's order. Paging
// further back would hand the stream older pages after newer ones, so the
// server's page limit caps n. It returns the archive id of the page's last
// message ("" for none) and whether the query succeeded.
func CatchUpNewest(ctx context.Context, s *xmpp.Session, archive jid.JID, n uint64, end time.Time, ids CatchUpIDs, timeout time.Duration) (string, bool) {
	q := history.Query{Last: true, Limit: n, End: end}
	res, err := ids.fetch(ctx, s, q, archive, timeout)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Archive history query failed")
		return "", false
	}
	zerolog.Ctx(ctx).Debug().Bool("complete", res.Complete).Str("first", res.Set.First.ID).Str("last", res.Set.Last).Time("end", end).Msg("Fetched the archive's newest page")
	return res.Set.Last, true
}

// CatchUp pages through archive (our account's, or a room's) after the
// archive id after, or from start when after is "": each page is a query
// registered with ids, its results going through the stream. It reports
// whether it reached the end of the archive (false: a page failed, or
// maxPages were read; the next catch-up continues).
func CatchUp(ctx context.Context, s *xmpp.Session, archive jid.JID, after string, start time.Time, ids CatchUpIDs, pageSize uint64, maxPages int, timeout time.Duration) bool {
	log := zerolog.Ctx(ctx)
	fromStart := after == ""
	for page := 0; page < maxPages; page++ {
		// A new login's first catch-up (no cursor yet) takes everything
		// since the login began; Start stays on every page, after moves.
		q := history.Query{Limit: pageSize, PageID: after}
		if fromStart {
			q.Start = start
		}
		res, err := ids.fetch(ctx, s, q, archive, timeout)
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
	log.Warn().Msg("Stopped the archive catch-up after too many pages; the next one continues")
	return false
}
