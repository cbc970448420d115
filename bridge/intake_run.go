package bridge

import (
	"context"
	"encoding/json"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
)

// A run of messages that a transaction stored together is handed to
// bridgev2 with one wait for the portal behind the last, not one behind
// each: every wait is a remote event queued to the portal, and bridgev2
// marks the login as in the portal for each (a query and an invitation
// check per event for a login made since the start: a fifth of the
// bridge's CPU in a burst). The portal still handles them one at a time,
// in order, and each row is still done only once handled and
// acknowledged; a crash with a run in the portal's queue replays its rows,
// whose "sending" records keep a handled one from being sent twice.

// handRun bounds the messages handed over before one wait for the portal
// (its queue holds 64 events by default, the network's included).
const handRun = 16

// runLen is how many of rows, from the first, go to bridgev2 before one
// wait: a run of messages stored by this process, or the first row alone.
func (in *intake) runLen(rows []*intakeRow) int {
	if in.dispatch == nil || in.barrier == nil {
		return 1
	}
	n := 0
	for n < len(rows) && n < handRun && rows[n].fresh && rows[n].sends {
		n++
	}
	return max(n, 1)
}

// handleRun is handle for a run of fresh messages (runLen > 1): each is
// handed to bridgev2 without waiting, then the portal is waited for once,
// and the rows are marked done (once acknowledged) in order.
func (in *intake) handleRun(ctx context.Context, rows []*intakeRow) error {
	if len(rows) == 1 {
		return in.handle(ctx, rows[0])
	}
	type handed struct {
		ctx context.Context
		row *intakeRow
		evt *event.Event
	}
	out := make([]handed, 0, len(rows))
	// fail forgets what the rows from the i-th on left for their sends.
	fail := func(i int, err error) error {
		for _, h := range out[i:] {
			in.handing.Delete(h.row.EventID)
			in.acks.Delete(h.row.EventID)
		}
		return err
	}
	for _, row := range rows {
		rctx := zerolog.Ctx(ctx).With().Stringer("event_id", row.EventID).Logger().WithContext(ctx)
		evt := &event.Event{}
		if err := json.Unmarshal(row.JSON, evt); err != nil {
			// It parsed as JSON when stored; nothing will make it deliverable.
			in.log.Err(err).Stringer("room_id", row.RoomID).Stringer("event_id", row.EventID).Msg("Stored Matrix event cannot be read, dropping it")
			if err := in.store.setDone(rctx, row.EventID); err != nil {
				return fail(0, err)
			}
			continue
		}
		in.handing.Store(row.EventID, row.State)
		out = append(out, handed{ctx: rctx, row: row, evt: evt})
		if err := in.dispatch(rctx, evt); err != nil {
			return fail(0, err)
		}
	}
	if len(out) > 0 {
		last := out[len(out)-1]
		if err := in.barrier(last.ctx, last.evt); err != nil {
			return fail(0, err)
		}
	}
	for i, h := range out {
		in.handing.Delete(h.row.EventID)
		if err := in.step("handled"); err != nil {
			return fail(i, err)
		}
		if !in.doneWhenAcked(h.ctx, h.row) {
			if err := in.store.setDone(h.ctx, h.row.EventID); err != nil {
				return fail(i+1, err)
			}
		}
	}
	return nil
}
