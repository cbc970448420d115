package bridge

import "maunium.net/go/mautrix/id"

// A room's drain reads its rows from the database only until it has read
// all of them (at start, after an error, or when it fell behind by
// freshMax rows); from then on the rows a transaction stores come to it
// from memory (accept keeps them), so a message costs no read of its own
// row back: at a steady rate each message woke a drain that read its one
// row and then read again to find none.

// A message that its room's drain will hand over at once is stored
// "sending" right away (sendingAtOnceLocked), saving the write that marks
// it so before its send. A replay looks for a "sending" row's stanza in
// the archive before it sends it, so only a few rows of a room are stored
// that way ahead of their turn (sendingAhead), bounding that work.

// sendingAhead bounds the rows of a room stored "sending" ahead of their
// turn.
const sendingAhead = 8

// freshMax bounds a room's rows kept in memory for its drain; past it the
// drain reads them back from the database.
const freshMax = 1024

// keepFreshLocked keeps the rows accept just committed for their rooms'
// drains, for the rooms whose drain has read all their older rows. in.mu
// is held (as it was around the commit, so rows come in seq order).
func (in *intake) keepFreshLocked(rows []*intakeRow) {
	for _, r := range rows {
		if in.lastSeq == nil {
			in.lastSeq = map[id.RoomID]int64{}
		}
		in.lastSeq[r.RoomID] = r.Seq
		if _, ok := in.synced[r.RoomID]; !ok {
			continue
		}
		if len(in.fresh[r.RoomID]) >= freshMax {
			// The drain reads them from the database again.
			delete(in.synced, r.RoomID)
			delete(in.fresh, r.RoomID)
			continue
		}
		r.fresh = true
		in.fresh[r.RoomID] = append(in.fresh[r.RoomID], r)
	}
}

// takeFresh returns up to limit of room's kept rows after seq after, and
// whether the room's rows come from memory at all (false: read them from
// the database).
func (in *intake) takeFresh(room id.RoomID, after int64, limit int) ([]*intakeRow, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	readUpTo, ok := in.synced[room]
	if !ok {
		return nil, false
	}
	q := in.fresh[room]
	for len(q) > 0 && q[0].Seq <= max(after, readUpTo) {
		q = q[1:]
	}
	n := min(limit, len(q))
	rows := q[:n:n]
	if n == len(q) {
		delete(in.fresh, room)
	} else {
		in.fresh[room] = q[n:]
	}
	return rows, true
}

// roomSeq is the seq of room's newest committed row, for markSynced.
func (in *intake) roomSeq(room id.RoomID) int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lastSeq[room]
}

// markSynced says that the drain of room has read all its rows up to
// readUpTo from the database, in a read that began when the room's newest
// committed row was before; a row committed since then was not kept in
// memory, so the drain reads once more (false).
func (in *intake) markSynced(room id.RoomID, before, readUpTo int64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.lastSeq[room] != before {
		return false
	}
	if in.synced == nil {
		in.synced = map[id.RoomID]int64{}
		in.fresh = map[id.RoomID][]*intakeRow{}
	}
	in.synced[room] = readUpTo
	return true
}

// unsync makes the drain of room read its rows from the database again
// (after a failed row: it stays there, the kept ones too).
func (in *intake) unsync(room id.RoomID) {
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.synced, room)
	delete(in.fresh, room)
}

// sendingAtOnceLocked says which of evts accept stores "sending": messages
// of rooms whose drain reads from memory and has fewer than sendingAhead
// rows waiting. in.mu is held.
func (in *intake) sendingAtOnceLocked(evts []intakeEvent) []bool {
	out := make([]bool, len(evts))
	var ahead map[id.RoomID]int
	for i, e := range evts {
		if !e.sends {
			continue
		}
		if _, ok := in.synced[e.RoomID]; !ok {
			continue
		}
		if ahead == nil {
			ahead = map[id.RoomID]int{}
		}
		n := ahead[e.RoomID]
		if len(in.fresh[e.RoomID])+n < sendingAhead {
			out[i] = true
			ahead[e.RoomID] = n + 1
		}
	}
	return out
}
