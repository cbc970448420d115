package bridge

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/history"

	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// Catch-up after a reconnect: while the bridge was away, messages may have
// gone only to the user's other clients (the server keeps offline messages
// only when no client at all is online). The account's archive (XEP-0313)
// has them; the bridge asks for everything after its cursor (a watermark of
// what is stored on Matrix, see delivery.go and watermark.go) and feeds the
// results through the normal message path, where bridgev2's message IDs
// make anything already bridged a no-op.

const (
	nsMAM     = "urn:xmpp:mam:2"
	nsForward = "urn:xmpp:forward:0"
	nsDelay   = "urn:xmpp:delay"

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
	errNotArchived    = errors.New("not an archive result")
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
	pages map[string][]archived
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

// archived is one unwrapped archive result.
type archived struct {
	QueryID   string
	ArchiveID string
	Stamp     time.Time
	Message   *stanzabuf.Stanza
}

// parseArchived unwraps <message><result queryid id><forwarded><delay/>
// <message/></forwarded></result></message>. It does not check who sent
// it; the caller does, against the outer from and its own query ids.
func parseArchived(st *stanzabuf.Stanza) (archived, error) {
	var (
		a         archived
		depth     int
		inResult  bool
		inForward bool
		capture   int
		inner     []xml.Token
	)
	r := st.Reader()
	for {
		tok, err := r.Token()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return archived{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if capture > 0 {
				capture++
				inner = append(inner, t.Copy())
				continue
			}
			switch {
			case depth == 2 && t.Name.Space == nsMAM && t.Name.Local == "result":
				inResult = true
				a.QueryID, a.ArchiveID = attrValue(t, "queryid"), attrValue(t, "id")
			case depth == 3 && inResult && t.Name.Space == nsForward && t.Name.Local == "forwarded":
				inForward = true
			case depth == 4 && inForward && t.Name.Space == nsDelay && t.Name.Local == "delay":
				a.Stamp, _ = time.Parse(time.RFC3339, attrValue(t, "stamp"))
			case depth == 4 && inForward && t.Name.Local == "message" && a.Message == nil && len(inner) == 0:
				capture = 1
				inner = append(inner, t.Copy())
			}
		case xml.EndElement:
			if capture > 0 {
				inner = append(inner, t)
				capture--
			}
			depth--
		default:
			if capture > 0 {
				inner = append(inner, xml.CopyToken(tok))
			}
		}
	}
	if !inResult {
		return archived{}, errNotArchived
	}
	if len(inner) == 0 || a.ArchiveID == "" {
		return archived{}, fmt.Errorf("malformed archive result")
	}
	readers := make([]xml.TokenReader, len(inner))
	for i, t := range inner {
		readers[i] = xmlstream.Token(t)
	}
	msg, err := stanzabuf.Read(xmlstream.MultiReader(readers...))
	if err != nil {
		return archived{}, fmt.Errorf("failed to read archived message: %w", err)
	}
	a.Message = msg
	return a, nil
}

func attrValue(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
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
	c.cursorSaveLocked()
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
