package bridge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/id"
)

// States of a matrix_intake row (migrations/05-matrix-intake.sql).
const (
	intakeStored  = 0 // written, answered, not yet handed to bridgev2
	intakeSending = 1 // our handler is sending it to XMPP under xmpp_id
	intakeSent    = 2 // the XMPP send returned
	intakeDone    = 3 // bridgev2 handled it; kept only to recognise resends
)

// intakeKeep is how long done rows stay to recognise a transaction the
// homeserver sends again (it retries until it gets an answer).
const intakeKeep = 7 * 24 * time.Hour

// intakeRow is one stored Matrix event.
type intakeRow struct {
	EventID id.EventID
	RoomID  id.RoomID
	Seq     int64
	JSON    []byte
	State   int
	XMPPID  string
	// fresh: stored by this process and never handed over before
	// (intake_fresh.go), so bridgev2 has not seen it; sends: a message
	// (intakeEvent.sends), known for fresh rows only.
	fresh, sends bool
}

// intakeEvent is one event of a transaction, as received.
type intakeEvent struct {
	EventID id.EventID
	RoomID  id.RoomID
	JSON    []byte
	// state: a state event; sends: a message event, which the handler
	// sends with sendOnce.
	state, sends bool
}

type intakeStore struct {
	db *dbutil.Database
}

func (s intakeStore) maxSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	if err := s.db.QueryRow(ctx, `SELECT MAX(seq) FROM matrix_intake`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("failed to read the intake sequence: %w", err)
	}
	return seq.Int64, nil
}

// insert writes the events of one transaction in one database transaction;
// events already known (a transaction sent again) are left as they are.
// It returns the rows it wrote, in order; those sending says are written
// "sending" (intake_fresh.go).
func (s intakeStore) insert(ctx context.Context, evts []intakeEvent, nextSeq func() int64, sending []bool) ([]*intakeRow, error) {
	var rows []*intakeRow
	now := time.Now().UnixMilli()
	write := func(ctx context.Context) error {
		rows = rows[:0]
		for i, e := range evts {
			seq := nextSeq()
			state, xmppID := intakeStored, ""
			if sending[i] {
				state, xmppID = intakeSending, intakeXMPPID(e.EventID)
			}
			res, err := s.db.Exec(ctx, `INSERT INTO matrix_intake (event_id, room_id, seq, event_json, state, xmpp_id, received)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
				e.EventID, e.RoomID, seq, string(e.JSON), state, xmppID, now)
			if err != nil {
				return fmt.Errorf("failed to store event %s: %w", e.EventID, err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				rows = append(rows, &intakeRow{EventID: e.EventID, RoomID: e.RoomID, Seq: seq, JSON: e.JSON, State: state, sends: e.sends})
			}
		}
		return nil
	}
	// One event (a homeserver keeping up sends them one at a time) is one
	// statement, atomic without a transaction around it.
	var err error
	if len(evts) == 1 {
		err = write(ctx)
	} else {
		err = s.db.DoTxn(ctx, nil, write)
	}
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// pendingRooms lists the rooms with events not yet done, for the replay at
// start.
func (s intakeStore) pendingRooms(ctx context.Context) ([]id.RoomID, error) {
	rows, err := s.db.Query(ctx, `SELECT room_id, MIN(seq) FROM matrix_intake WHERE state<3 GROUP BY room_id ORDER BY MIN(seq)`)
	if err != nil {
		return nil, fmt.Errorf("failed to list rooms with pending Matrix events: %w", err)
	}
	defer rows.Close()
	var rooms []id.RoomID
	for rows.Next() {
		var room id.RoomID
		var seq int64
		if err := rows.Scan(&room, &seq); err != nil {
			return nil, fmt.Errorf("failed to read a room with pending Matrix events: %w", err)
		}
		rooms = append(rooms, room)
	}
	return rooms, rows.Err()
}

// pending returns up to limit of the oldest events of room not yet done
// and after seq after (the rows handed over in this process and still
// waiting for the server's acknowledgement are not read again;
// intake_ack.go), oldest first (none: empty). Only the room's one drain
// changes their rows, so a batch stays what it was read as while the drain
// works through it; events that arrive meanwhile come in the next batch.
func (s intakeStore) pending(ctx context.Context, room id.RoomID, after int64, limit int) ([]*intakeRow, error) {
	rows, err := s.db.Query(ctx, `SELECT event_id, room_id, seq, event_json, state, xmpp_id FROM matrix_intake
		WHERE room_id=$1 AND state<3 AND seq>$2 ORDER BY seq LIMIT $3`, room, after, limit)
	if err != nil {
		return nil, fmt.Errorf("failed to read the next Matrix events of %s: %w", room, err)
	}
	defer rows.Close()
	var out []*intakeRow
	for rows.Next() {
		var r intakeRow
		var js sql.NullString
		if err := rows.Scan(&r.EventID, &r.RoomID, &r.Seq, &js, &r.State, &r.XMPPID); err != nil {
			return nil, fmt.Errorf("failed to read the next Matrix events of %s: %w", room, err)
		}
		r.JSON = []byte(js.String)
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the next Matrix events of %s: %w", room, err)
	}
	return out, nil
}

// state returns the state of an event and when it was stored, or -1 if
// the event did not come through the intake.
func (s intakeStore) state(ctx context.Context, evt id.EventID) (int, time.Time, error) {
	var state int
	var received int64
	err := s.db.QueryRow(ctx, `SELECT state, received FROM matrix_intake WHERE event_id=$1`, evt).Scan(&state, &received)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, time.Time{}, nil
	} else if err != nil {
		return 0, time.Time{}, fmt.Errorf("failed to read the intake state of %s: %w", evt, err)
	}
	return state, time.UnixMilli(received), nil
}

// setSending records, before the stanza leaves, which XMPP id it has.
// setSending records that evt is being sent as xmppID, and when: the
// archive check of a replay looks back from the latest send, not from when
// the homeserver delivered the event (the queue before it can be long, and
// a room's archive is read back to that time; mucarchivescan.go).
func (s intakeStore) setSending(ctx context.Context, evt id.EventID, xmppID string) error {
	_, err := s.db.Exec(ctx, `UPDATE matrix_intake SET state=CASE WHEN state<1 THEN 1 ELSE state END, xmpp_id=$2, received=$3
		WHERE event_id=$1 AND state<3`, evt, xmppID, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to mark %s as sending: %w", evt, err)
	}
	return nil
}

// setSendingMany is setSending for a run of stored messages about to be
// handed over (intake_run.go); their xmpp_id is left to their sends.
func (s intakeStore) setSendingMany(ctx context.Context, evts []id.EventID) error {
	args := make([]any, 0, len(evts)+1)
	args = append(args, time.Now().UnixMilli())
	marks := make([]string, len(evts))
	for i, evt := range evts {
		args = append(args, evt)
		marks[i] = fmt.Sprintf("$%d", i+2)
	}
	_, err := s.db.Exec(ctx, `UPDATE matrix_intake SET state=1, received=$1
		WHERE state<1 AND event_id IN (`+strings.Join(marks, ",")+`)`, args...)
	if err != nil {
		return fmt.Errorf("failed to mark %d events as sending: %w", len(evts), err)
	}
	return nil
}

func (s intakeStore) setSent(ctx context.Context, evt id.EventID) error {
	_, err := s.db.Exec(ctx, `UPDATE matrix_intake SET state=2 WHERE event_id=$1 AND state<2`, evt)
	if err != nil {
		return fmt.Errorf("failed to mark %s as sent: %w", evt, err)
	}
	return nil
}

// setDone drops the event's content and keeps its id for intakeKeep.
func (s intakeStore) setDone(ctx context.Context, evt id.EventID) error {
	_, err := s.db.Exec(ctx, `UPDATE matrix_intake SET state=3, event_json=NULL WHERE event_id=$1`, evt)
	if err != nil {
		return fmt.Errorf("failed to mark %s as done: %w", evt, err)
	}
	return nil
}

// setDoneMany is setDone for several events in one statement (rows whose
// stanzas one acknowledgement covered).
func (s intakeStore) setDoneMany(ctx context.Context, evts []id.EventID) error {
	if len(evts) == 1 {
		return s.setDone(ctx, evts[0])
	}
	args := make([]any, len(evts))
	marks := make([]string, len(evts))
	for i, evt := range evts {
		args[i] = evt
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	_, err := s.db.Exec(ctx, `UPDATE matrix_intake SET state=3, event_json=NULL WHERE event_id IN (`+strings.Join(marks, ",")+`)`, args...)
	if err != nil {
		return fmt.Errorf("failed to mark %d events as done: %w", len(evts), err)
	}
	return nil
}

// prune forgets done rows older than intakeKeep.
func (s intakeStore) prune(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM matrix_intake WHERE state=3 AND received<$1`, time.Now().Add(-intakeKeep).UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to prune the Matrix intake: %w", err)
	}
	return nil
}
