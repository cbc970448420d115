package bridge

import "sync"

// The archive catch-up cursor (LastArchiveID) is a watermark: the highest
// archive id such that it and every message before it in the archive is
// stored on the Matrix side (or was found to need nothing there). It is not
// the newest message seen: bridgev2 handles messages in per-portal queues
// after we hand them over, so a message seen later can be stored earlier,
// and moving the cursor past one still in a queue would lose it for good if
// the process died then (the next catch-up starts after the cursor).
//
// watermark keeps the archive ids of the current session in archive order
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

type watermark struct {
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

// newWatermark is stopped until the first catch-up starts.
func newWatermark() *watermark {
	return &watermark{state: map[string]wmState{}, recent: map[string]struct{}{}, stopped: true}
}

// reset starts a new session: nothing is tracked, the cursor can move again.
func (w *watermark) reset() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	w.ids, w.state = nil, map[string]wmState{}
	w.recent, w.order = map[string]struct{}{}, nil
	w.stopped = false
	return w.gen
}

// stop keeps the cursor where it is for the rest of the session (the
// catch-up did not reach the end of the archive, so the order of what comes
// next is unknown).
func (w *watermark) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.ids, w.state = nil, map[string]wmState{}
}

// track appends id (next in archive order). It returns the session's
// generation and false when id is not to be settled: empty, already seen
// this session, or the cursor is stopped.
func (w *watermark) track(id string) (uint64, bool) {
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
func (w *watermark) settle(gen uint64, id string, ok bool) (string, bool) {
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
