package bridge

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// The messages a room's drain takes from memory are handed to bridgev2 in
// runs, with one wait for the portal behind the last of a run, not one
// behind each: every wait is a remote event queued to the portal, and
// bridgev2 marks the login as in the portal for each (a query and an
// invitation check per event for a login made since the start: a fifth of
// the bridge's CPU in a burst). A run ends at handRun messages, at an event
// that is not such a message, or when no message came for runLinger; the
// handler sends each as the portal reaches it, so the linger delays only
// the rows' done marks, not the messages. The portal still handles them one
// at a time, in order, and each row is still done only once handled and
// acknowledged; a crash with a run in the portal's queue replays its rows,
// whose "sending" records keep a handled one from being sent twice.

// handRun bounds the messages handed over before one wait for the portal
// (its queue holds 64 events by default, the network's included).
const handRun = 16

// runLinger is how long a drain with a run handed over waits for another
// message before it waits for the portal.
const runLinger = 20 * time.Millisecond

// drainIdle is how long a room's drain waits for the room's next event
// before it exits. A drain started anew per message (a Matrix user's
// messages come one by one, further apart than runLinger) grew its stack
// anew through bridgev2's handlers and the Megolm decrypt each time, and
// set up its loggers again; an idle room still holds no goroutine past
// this.
const drainIdle = time.Second

// sendsToXMPP says whether a timeline event of type typ is a message that
// the handler sends with sendOnce: a message or sticker, or an encrypted
// event, which in a Megolm portal is almost always one of them once
// decrypted. An encrypted event that turns out to be something else (a
// reaction) is handled all the same; being stored "sending" ahead only
// costs it an archive look-up if it is replayed after a crash.
func sendsToXMPP(typ string) bool {
	switch typ {
	case event.EventMessage.Type, event.EventSticker.Type, event.EventEncrypted.Type:
		return true
	}
	return false
}

// handedRow is a row handed to bridgev2 whose run was not waited for yet.
type handedRow struct {
	ctx context.Context
	row *intakeRow
	evt *event.Event
}

// runnable says whether row can join a run: a message stored by this
// process (intake_fresh.go), with the run's two halves set.
func (in *intake) runnable(row *intakeRow) bool {
	return in.dispatch != nil && in.barrier != nil && row.fresh && row.sends
}

// dispatchRow hands a runnable row to bridgev2 without waiting; nil when
// it cannot be read (then it is done).
func (in *intake) dispatchRow(ctx context.Context, row *intakeRow) (*handedRow, error) {
	ctx = zerolog.Ctx(ctx).With().Stringer("event_id", row.EventID).Logger().WithContext(ctx)
	evt := &event.Event{}
	if err := json.Unmarshal(row.JSON, evt); err != nil {
		// It parsed as JSON when stored; nothing will make it deliverable.
		in.log.Err(err).Stringer("room_id", row.RoomID).Stringer("event_id", row.EventID).Msg("Stored Matrix event cannot be read, dropping it")
		return nil, in.store.setDone(ctx, row.EventID)
	}
	in.handing.Store(row.EventID, row.State)
	if err := in.dispatch(ctx, evt); err != nil {
		in.forgetHanded([]handedRow{{row: row}})
		return nil, err
	}
	return &handedRow{ctx: ctx, row: row, evt: evt}, nil
}

// finishRun waits until bridgev2 handled the run, then marks its rows done
// (once acknowledged) in order.
func (in *intake) finishRun(run []handedRow) error {
	if len(run) == 0 {
		return nil
	}
	last := run[len(run)-1]
	if err := in.barrier(last.ctx, last.evt); err != nil {
		in.forgetHanded(run)
		return err
	}
	for i, h := range run {
		in.handing.Delete(h.row.EventID)
		if err := in.step("handled"); err != nil {
			in.forgetHanded(run[i:])
			return err
		}
		if !in.doneWhenAcked(h.ctx, h.row) {
			if err := in.store.setDone(h.ctx, h.row.EventID); err != nil {
				in.forgetHanded(run[i+1:])
				return err
			}
		}
	}
	return nil
}

// forgetHanded drops what the rows of a run that will not be finished left
// for their sends.
func (in *intake) forgetHanded(run []handedRow) {
	for _, h := range run {
		in.handing.Delete(h.row.EventID)
		in.acks.Delete(h.row.EventID)
	}
}

// markRunSending records "sending" for the messages of rows that will go
// over in the same run as the first, in one statement: stored "stored"
// (accept stores only a few "sending" ahead of their turn), each would
// have written it before its send.
func (in *intake) markRunSending(ctx context.Context, rows []*intakeRow) error {
	var evts []id.EventID
	for _, row := range rows {
		if len(evts) == handRun || !in.runnable(row) || row.State != intakeStored {
			break
		}
		evts = append(evts, row.EventID)
	}
	if len(evts) < 2 {
		return nil // the send writes it
	}
	if err := in.store.setSendingMany(ctx, evts); err != nil {
		return err
	}
	for _, row := range rows[:len(evts)] {
		row.State = intakeSending
	}
	return nil
}
