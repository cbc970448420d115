package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// sendingMarks mirrors one account's rows of delivery_sending, so that the
// check before each conversion needs no query, and writes the rows in
// group commits.
//
// The mirror is right by construction: this process is the only one on its
// database (docs/scaling.md), the rows of earlier runs are read once, every
// write of the table goes through here and updates the mirror only after
// the database took it, and the sweep makes it read the rows again. One
// mirror per account, shared by every Client of it in the process, so that
// a login's old and new Client never disagree.
//
// Group commits: a message's mark is asked for when the message is queued
// for bridgev2 (prepare, on the delivery goroutine), and the writer commits
// all marks asked for meanwhile in one transaction, with the clears of
// stored messages that waited for it; the conversion waits for its mark's
// commit before the send. A message decrypted from OMEMO has its mark
// written with its inbox row instead, in the decryption's transaction
// (markInTxn), and needs no group commit. A mark committed in this run before the message's
// first conversion is "fresh": that conversion knows nothing was sent yet
// and does not look for the message in the room. A mark that outlives a
// crash is no longer fresh (the mirror is read from the table), nor is one
// whose conversion has begun. Clears (the message is stored) wait for the
// next commit, at most clearDelay: a mark left by a crash before its clear
// only costs a look in the room if the message is converted again, which
// bridgev2 does not do for a stored message.
type sendingMarks struct {
	db      *dbutil.Database
	account networkid.UserLoginID

	// dbMu orders the table's reads and commits, so that a read never
	// misses a commit whose mirror update it would then overwrite.
	dbMu sync.Mutex

	mu     sync.Mutex
	loaded bool
	// ids are the marks in the table; true for a fresh mark.
	ids map[networkid.MessageID]bool
	// next is the batch that collects the marks asked for since the last
	// commit began; clears the ids to delete with the next commit.
	next    *markBatch
	clears  map[networkid.MessageID]struct{}
	writing bool // a writer goroutine runs
	timer   bool // a writer is scheduled for the clears alone
}

// markBatch is one group commit of marks.
type markBatch struct {
	ids  map[networkid.MessageID]string // id -> portal id
	done chan struct{}
	err  error // set before done is closed
}

// clearDelay is how long a clear may wait for a commit of marks to join.
const clearDelay = time.Second

// sendingMarksOf returns the account's mirror.
func (xc *Connector) sendingMarksOf(account networkid.UserLoginID) *sendingMarks {
	if v, ok := xc.marks.Load(account); ok {
		return v.(*sendingMarks)
	}
	v, _ := xc.marks.LoadOrStore(account, &sendingMarks{db: xc.DB, account: account})
	return v.(*sendingMarks)
}

// ensureLoaded reads the account's marks once (and after invalidate).
func (m *sendingMarks) ensureLoaded(ctx context.Context) error {
	m.mu.Lock()
	loaded := m.loaded
	m.mu.Unlock()
	if loaded {
		return nil
	}
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	m.mu.Lock()
	loaded = m.loaded
	m.mu.Unlock()
	if loaded {
		return nil
	}
	ids, err := m.load(ctx)
	if err != nil {
		return fmt.Errorf("failed to read the sending marks: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ids = make(map[networkid.MessageID]bool, len(ids))
	for _, v := range ids {
		m.ids[v] = false
	}
	m.loaded = true
	return nil
}

// load reads the account's marks (few: those of messages cut by a crash,
// for sendingRetention at most, and those of messages on their way).
func (m *sendingMarks) load(ctx context.Context) ([]networkid.MessageID, error) {
	rows, err := m.db.Query(ctx, `SELECT message_id FROM delivery_sending WHERE account=$1`, string(m.account))
	if err != nil {
		return nil, err
	}
	var ids []networkid.MessageID
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			_ = rows.Close()
			return nil, err
		}
		ids = append(ids, networkid.MessageID(v))
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return ids, rows.Err()
}

// has reports whether id is marked (fresh or not).
func (m *sendingMarks) has(ctx context.Context, id networkid.MessageID) (bool, error) {
	if err := m.ensureLoaded(ctx); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.ids[id]
	return ok, nil
}

// prepare asks for id's mark in the next group commit and returns the batch
// to wait for; nil when id is marked already (with its inbox row, fresh; or
// by an earlier attempt, which may have sent it: not fresh) or the marks
// cannot be read (the conversion then marks it itself).
func (m *sendingMarks) prepare(ctx context.Context, id networkid.MessageID, portalID networkid.PortalID) *markBatch {
	if err := m.ensureLoaded(ctx); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Not marking a message ahead of its conversion")
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ids[id]; ok {
		return nil
	}
	if m.next == nil {
		m.next = &markBatch{ids: map[networkid.MessageID]string{}, done: make(chan struct{})}
	}
	m.next.ids[id] = string(portalID)
	delete(m.clears, id)
	m.startWriterLocked(ctx)
	return m.next
}

// startWriterLocked starts the writer unless one runs; mu is held.
func (m *sendingMarks) startWriterLocked(ctx context.Context) {
	if m.writing {
		return
	}
	m.writing = true
	go m.write(context.WithoutCancel(ctx))
}

// write commits batches until nothing waits.
func (m *sendingMarks) write(ctx context.Context) {
	for {
		m.mu.Lock()
		b, clears := m.next, m.clears
		m.next, m.clears = nil, nil
		if b == nil && len(clears) == 0 {
			m.writing = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		m.commit(ctx, b, clears)
	}
}

// commit writes one batch of marks and clears in one transaction.
func (m *sendingMarks) commit(ctx context.Context, b *markBatch, clears map[networkid.MessageID]struct{}) {
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	now := time.Now().UnixMilli()
	err := m.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for id := range clears {
			if _, err := m.db.Exec(ctx, `DELETE FROM delivery_sending WHERE account=$1 AND message_id=$2`, string(m.account), string(id)); err != nil {
				return fmt.Errorf("failed to clear sending mark: %w", err)
			}
		}
		if b == nil {
			return nil
		}
		for id, portalID := range b.ids {
			if _, err := m.db.Exec(ctx, `INSERT INTO delivery_sending (account, message_id, room_id, started) VALUES ($1, $2, $3, $4)
				ON CONFLICT (account, message_id) DO NOTHING`, string(m.account), string(id), portalID, now); err != nil {
				return fmt.Errorf("failed to record sending mark: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Int("clears", len(clears)).Msg("Failed to write sending marks")
	}
	m.mu.Lock()
	if err != nil && len(clears) > 0 {
		// Put the clears back for the next commit (the mirror already
		// forgot them; a mark left in the table is only a needless look).
		if m.clears == nil {
			m.clears = map[networkid.MessageID]struct{}{}
		}
		for id := range clears {
			m.clears[id] = struct{}{}
		}
	}
	if b != nil && err == nil && m.loaded {
		for id := range b.ids {
			if _, ok := m.ids[id]; !ok {
				m.ids[id] = true
			}
		}
	}
	m.mu.Unlock()
	if b != nil {
		b.err = err
		close(b.done)
	}
}

// begin is called by a conversion before it sends: it waits for the
// batch that holds id's mark (if any) and reports whether id is marked and
// may have been sent before (marked), and whether a mark exists at all
// (when not, the conversion writes one itself). A fresh mark stops being
// fresh here.
func (m *sendingMarks) begin(ctx context.Context, id networkid.MessageID, b *markBatch) (marked, exists bool, err error) {
	if b != nil {
		select {
		case <-b.done:
		case <-ctx.Done():
			return false, false, ctx.Err()
		}
	}
	if err := m.ensureLoaded(ctx); err != nil {
		return false, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fresh, ok := m.ids[id]
	if !ok {
		return false, false, nil
	}
	if fresh {
		m.ids[id] = false
		return false, true, nil
	}
	return true, true, nil
}

// markInTxn writes id's mark in the transaction ctx carries: an OMEMO
// message's mark commits with its inbox row (decrypt.go), so that it needs
// no group commit of its own. The mirror learns of it from committedFresh,
// once that transaction committed; ensureLoaded must have run before it
// began (a mirror read after the commit would take the mark for one left
// by a crash).
func (m *sendingMarks) markInTxn(ctx context.Context, id networkid.MessageID, portalID networkid.PortalID) error {
	_, err := m.db.Exec(ctx, `INSERT INTO delivery_sending (account, message_id, room_id, started) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account, message_id) DO NOTHING`, string(m.account), string(id), string(portalID), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to record sending mark: %w", err)
	}
	return nil
}

// committedFresh follows a committed markInTxn: id is fresh unless the
// mirror knows it already (then from an earlier attempt, which may have
// sent it) or is not loaded (then the next read finds the row, not fresh:
// only a needless look in the room).
func (m *sendingMarks) committedFresh(id networkid.MessageID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.loaded {
		return
	}
	if _, ok := m.ids[id]; !ok {
		m.ids[id] = true
	}
}

// unbegin makes id's mark fresh again after a begin whose conversion sent
// nothing.
func (m *sendingMarks) unbegin(id networkid.MessageID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ids[id]; ok {
		m.ids[id] = true
	}
}

// added follows a write of the table outside the batches.
func (m *sendingMarks) added(id networkid.MessageID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded {
		m.ids[id] = false
	}
}

// clear forgets id's mark (its message is stored) and deletes the row with
// the next commit, at most clearDelay from now.
func (m *sendingMarks) clear(ctx context.Context, id networkid.MessageID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.ids, id)
	if m.clears == nil {
		m.clears = map[networkid.MessageID]struct{}{}
	}
	m.clears[id] = struct{}{}
	if m.writing || m.timer {
		return
	}
	m.timer = true
	time.AfterFunc(clearDelay, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.timer = false
		if len(m.clears) > 0 {
			m.startWriterLocked(ctx)
		}
	})
}

// dropFresh clears id's mark if it is still fresh: its message was never
// converted in this run, so nothing of it was sent.
func (m *sendingMarks) dropFresh(ctx context.Context, id networkid.MessageID) {
	m.mu.Lock()
	fresh := m.ids[id]
	m.mu.Unlock()
	if fresh {
		m.clear(ctx, id)
	}
}

// flush commits what waits now (tests, and the sweep before it reads the
// table again).
func (m *sendingMarks) flush(ctx context.Context) {
	m.mu.Lock()
	b, clears := m.next, m.clears
	m.next, m.clears = nil, nil
	m.mu.Unlock()
	if b != nil || len(clears) > 0 {
		m.commit(ctx, b, clears)
	}
}

// invalidate makes the next check read the table again.
func (m *sendingMarks) invalidate() {
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loaded, m.ids = false, nil
}
