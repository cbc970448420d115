package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// A Matrix event is done only once the XMPP server has its stanza.
//
// Written is not enough: a stanza the server had not read yet when the
// process died is gone with the connection (the kernel resets it). A
// restart replays the homeserver's backlog in a burst, faster than the
// server reads, and the kill after it lost everything still in flight:
// 99 and 142 messages in a row in TestRoomKill on Prosody, every one
// recorded as sent and marked done, so never replayed. So the send takes a
// mark of the stream's outbound count right after the write (XEP-0198,
// xmppclient.Conn.AckWaiter), and the intake marks the row done only once
// the server acknowledged it (doneWhenAcked); a row left
// "sent" by a crash is looked for in the archive and sent again, under the
// same id, only if it is not there (sendOnce). The wait is not in the
// handler: the handler runs in bridgev2's portal loop, which the session's
// reader may be waiting on (a full portal queue) while the <a/> sits
// behind it.

// ackWaiter waits for the server's acknowledgement of a written stanza.
type ackWaiter func(context.Context) error

// ackWait bounds the wait for an acknowledgement.
const ackWait = 2 * time.Minute

// ackWindow bounds the rows of a room waiting for their acknowledgement:
// the drain waits for the oldest past it. Every such row is looked for in
// the archive after a crash, so the window bounds that work, while the
// sends still run ahead of the round trips.
const ackWindow = 16

// expectAck says that the event being sent as xmppID wants its waiter.
func (in *intake) expectAck(xmppID string) {
	in.acks.Store(xmppID, ackWaiter(nil))
}

// written gives the waiter of a stanza just written as xmppID, if an
// event expects one (Client.Send).
func (in *intake) written(xmppID string, w ackWaiter) {
	if in == nil || w == nil {
		return
	}
	if _, ok := in.acks.Load(xmppID); ok {
		in.acks.Store(xmppID, w)
	}
}

// keepAck moves the waiter of xmppID to its event, for handle.
func (in *intake) keepAck(xmppID string, evt id.EventID) {
	v, ok := in.acks.LoadAndDelete(xmppID)
	if w, _ := v.(ackWaiter); ok && w != nil {
		in.acks.Store(evt, w)
	}
}

// ackEntry is a row waiting for its acknowledgement.
type ackEntry struct {
	evt id.EventID
	w   ackWaiter
	// marked: a row before it marked it done with its own (in.mu).
	marked bool
}

// doneWhenAcked takes the acknowledgement waiter of row's stanza, if its
// send left one, and marks the row done once the server acknowledged it,
// in the background and in the room's order; the drain goes on with the
// next row meanwhile, so Matrix → XMPP goes at the pace of the writes, not
// of the round trips (and not of the inbound stanzas queued before the
// <a/>, which the session reads in order). A row whose acknowledgement came
// marks the following rows that the same acknowledgement covered done in
// the same statement: one write per round trip, not per row, which bounded
// a room's rate under load. It reports whether it took the row over.
func (in *intake) doneWhenAcked(ctx context.Context, row *intakeRow) bool {
	v, ok := in.acks.LoadAndDelete(row.EventID)
	w, _ := v.(ackWaiter)
	if !ok || w == nil {
		return false
	}
	e := &ackEntry{evt: row.EventID, w: w}
	in.mu.Lock()
	if in.acked == nil {
		in.acked = map[id.RoomID]chan struct{}{}
		in.ackWaiting = map[id.RoomID][]chan struct{}{}
		in.ackQueue = map[id.RoomID][]*ackEntry{}
	}
	prev := in.acked[row.RoomID]
	done := make(chan struct{})
	in.acked[row.RoomID] = done
	waiting := append(in.ackWaiting[row.RoomID], done)
	var oldest chan struct{}
	if len(waiting) > ackWindow {
		oldest, waiting = waiting[0], waiting[1:]
	}
	in.ackWaiting[row.RoomID] = waiting
	in.ackQueue[row.RoomID] = append(in.ackQueue[row.RoomID], e)
	in.wg.Add(1)
	in.mu.Unlock()
	defer func() {
		if oldest != nil {
			select {
			case <-oldest:
			case <-ctx.Done():
			}
		}
	}()
	go func() {
		defer in.wg.Done()
		defer func() {
			close(done)
			in.mu.Lock()
			if in.acked[row.RoomID] == done {
				delete(in.acked, row.RoomID)
			}
			if w := in.ackWaiting[row.RoomID]; len(w) > 0 && w[0] == done {
				in.ackWaiting[row.RoomID] = w[1:]
			}
			in.ackQueue[row.RoomID] = slices.DeleteFunc(in.ackQueue[row.RoomID], func(x *ackEntry) bool { return x == e })
			if len(in.ackQueue[row.RoomID]) == 0 {
				delete(in.ackQueue, row.RoomID)
			}
			in.mu.Unlock()
		}()
		if prev != nil {
			select {
			case <-prev:
			case <-ctx.Done():
				return
			}
		}
		in.mu.Lock()
		marked := e.marked
		in.mu.Unlock()
		if marked {
			return
		}
		if err := in.awaitAck(ctx, w); err != nil {
			// The intake stops (or the test's crash): the row stays, and
			// is replayed with the archive check.
			return
		}
		batch := in.alsoAcked(ctx, row.RoomID, e)
		evts := make([]id.EventID, 0, 1+len(batch))
		evts = append(evts, row.EventID)
		for _, n := range batch {
			evts = append(evts, n.evt)
		}
		if err := in.store.setDoneMany(ctx, evts); err != nil {
			zerolog.Ctx(ctx).Err(err).Stringer("event_id", row.EventID).Int("rows", len(evts)).Msg("Failed to mark acknowledged Matrix events done")
			return
		}
		in.mu.Lock()
		for _, n := range batch {
			n.marked = true
		}
		in.mu.Unlock()
	}()
	return true
}

// alsoAcked returns the rows queued after e in room whose stanzas the
// server has acknowledged already, in order up to the first that it has not:
// stanzas are acknowledged in the order they were written (XEP-0198), and
// a waiter asked with an ended context answers at once.
func (in *intake) alsoAcked(ctx context.Context, room id.RoomID, e *ackEntry) []*ackEntry {
	in.mu.Lock()
	q := in.ackQueue[room]
	i := slices.Index(q, e)
	var next []*ackEntry
	if i >= 0 {
		next = slices.Clone(q[i+1:])
	}
	in.mu.Unlock()
	now, cancel := context.WithCancel(ctx)
	cancel()
	for i, n := range next {
		if in.step("acked") != nil || n.w(now) != nil || in.step("acknowledged") != nil {
			return next[:i]
		}
	}
	return next
}

// awaitAck waits until the server acknowledged the stanza of w. A stream that ended first leaves the stanza to stream
// management (resumed, or looked for in the archive and resent), and a
// server that does not answer in ackWait gets the old behaviour; both are
// done. Only the intake's own end (ctx) keeps the row for the replay.
func (in *intake) awaitAck(ctx context.Context, w ackWaiter) error {
	if err := in.step("acked"); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, ackWait)
	defer cancel()
	err := w(wctx)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return fmt.Errorf("failed to wait for the XMPP server's acknowledgement: %w", ctx.Err())
	case errors.Is(err, xmppclient.ErrNotAcked):
		zerolog.Ctx(ctx).Debug().Msg("Stream ended before the XMPP server acknowledged the message; stream management resends it")
	default:
		zerolog.Ctx(ctx).Warn().Err(err).Msg("XMPP server did not acknowledge the message in time")
	}
	return in.step("acknowledged")
}
