package xmppclient

import (
	"context"
	"sync"
	"sync/atomic"
)

// An archive catch-up cursor (the account's, and one per room) is a
// watermark: the highest
// archive id such that it and every message before it in the archive is
// stored on the Matrix side (or was found to need nothing there). It is not
// the newest message seen: bridgev2 handles messages in per-portal queues
// after we hand them over, so a message seen later can be stored earlier,
// and moving the cursor past one still in a queue would lose it for good if
// the process died then (the next catch-up starts after the cursor).
//
// Cursor keeps the archive ids of the current session in archive order
// (catch-up pages in page order, then the live stream, which the server
// archives in the order it routes) with their state, and moves the cursor
// over the settled prefix only. An id that failed (bridgev2 did not store
// it) stops the cursor for the rest of the session: the next catch-up
// starts before it and tries again.

// wmState is the state of one archive id.
type wmState uint8

const (
	wmPending wmState = iota
	wmDone
	wmFailed
)

// wmRecent bounds the ids remembered to recognise the same archive id seen
// twice in a session (a catch-up result and its live copy).
const wmRecent = 4096

type Cursor struct {
	mu sync.Mutex
	// gen changes with every reset, so that settlements of an earlier
	// session (still in bridgev2's queues) do not count.
	gen     uint64
	ids     []string
	state   map[string]wmState // of the ids in ids
	recent  map[string]struct{}
	order   []string // recent, oldest first
	stopped bool
}

// NewCursor is stopped until the first catch-up starts.
func NewCursor() *Cursor {
	return &Cursor{state: map[string]wmState{}, recent: map[string]struct{}{}, stopped: true}
}

// Reset starts a new session: nothing is tracked, the cursor can move again.
func (w *Cursor) Reset() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	w.ids, w.state = nil, map[string]wmState{}
	w.recent, w.order = map[string]struct{}{}, nil
	w.stopped = false
	return w.gen
}

// Stop keeps the cursor where it is for the rest of the session (the
// catch-up did not reach the end of the archive, so the order of what comes
// next is unknown).
func (w *Cursor) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.ids, w.state = nil, map[string]wmState{}
}

// track appends id (next in archive order). It returns the session's
// generation and false when id is not to be settled: empty, already seen
// this session, or the cursor is stopped.
func (w *Cursor) track(id string) (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id == "" || w.stopped {
		return w.gen, false
	}
	if _, ok := w.recent[id]; ok {
		return w.gen, false
	}
	w.recent[id] = struct{}{}
	w.order = append(w.order, id)
	if len(w.order) > wmRecent {
		delete(w.recent, w.order[0])
		w.order = w.order[1:]
	}
	w.ids = append(w.ids, id)
	w.state[id] = wmPending
	return w.gen, true
}

// settle records the outcome for id and returns the new cursor, if it
// moved: the last id of the longest prefix of settled, successful ids.
func (w *Cursor) settle(gen uint64, id string, ok bool) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gen != w.gen || w.stopped {
		return "", false
	}
	if st, known := w.state[id]; !known || st != wmPending {
		return "", false
	}
	if !ok {
		w.state[id] = wmFailed
		return "", false
	}
	w.state[id] = wmDone
	n := 0
	for n < len(w.ids) && w.state[w.ids[n]] == wmDone {
		delete(w.state, w.ids[n])
		n++
	}
	if n == 0 {
		return "", false
	}
	last := w.ids[n-1]
	w.ids = w.ids[n:]
	return last, true
}

// Ack is the acknowledgement of one message whose archive id a Cursor
// tracks: the connector calls Done once it has handled the message (stored
// says whether it reached Matrix), and the cursor moves over it only then.
// It is what "handled" means for the exactly-once delivery
// (docs/delivery.md). A nil Ack (an id not tracked) ignores every call.
type Ack struct {
	cursor *Cursor
	gen    uint64
	id     string
	once   sync.Once
	handed atomic.Bool
	// settled is told the outcome once, with the cursor if it moved.
	settled func(ctx context.Context, id, cursor string, moved, stored bool)
}

// Track appends id (next in archive order) and returns its Ack; nil when
// id is not to be settled: empty, already seen this session, or the cursor
// is stopped. settled is called once, when the Ack is done.
func (w *Cursor) Track(id string, settled func(ctx context.Context, id, cursor string, moved, stored bool)) *Ack {
	gen, ok := w.track(id)
	if !ok {
		return nil
	}
	return &Ack{cursor: w, gen: gen, id: id, settled: settled}
}

// Cursor is the cursor a tracks an id in.
func (a *Ack) Cursor() *Cursor {
	if a == nil {
		return nil
	}
	return a.cursor
}

// ID is the archive id a acknowledges.
func (a *Ack) ID() string {
	if a == nil {
		return ""
	}
	return a.id
}

// Done records the outcome (once) and moves the cursor if it can.
func (a *Ack) Done(ctx context.Context, stored bool) {
	if a == nil {
		return
	}
	a.once.Do(func() {
		cur, moved := a.cursor.settle(a.gen, a.id, stored)
		if a.settled != nil {
			a.settled(ctx, a.id, cur, moved, stored)
		}
	})
}

// HandOff says the message went on (to bridgev2's queues): whoever took
// it calls Done.
func (a *Ack) HandOff() {
	if a != nil {
		a.handed.Store(true)
	}
}

// Release is done for a message that was not handed off: whatever it
// needed is done (deferred right after the Ack is made).
func (a *Ack) Release(ctx context.Context) {
	if a != nil && !a.handed.Load() {
		a.Done(ctx, true)
	}
}
