package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"mellium.im/xmpp"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// XMPP -> Matrix delivery across restarts (see docs/delivery.md).
//
// Everything read from the stream goes through one ordered stream
// (xmppclient.Stream, c.stream) and is handled in order. A catch-up of a
// chat's archive (the account's after every connect, mam.go; a room's on
// every join, mucarchive.go) is started here, the same way for both: its
// marks go into the stream, and the stream's reader keeps the catch-up
// order (xmppclient.CatchUpOrder: the chat's live messages wait behind the
// catch-up's last page). Archive ids are tracked in that order by the
// chat's cursor (xmppclient/cursor.go); each message's Ack is done when
// bridgev2 has handled what we queued for it (PostHandle), and for messages
// only if bridgev2 stored it. A message that was not stored stops the
// cursor; for the account's a new catch-up is tried a little later, a
// room's waits for the next join.

// deliveryState is owned by the incoming queue's goroutine, except for the
// fields noted.
type deliveryState struct {
	order xmppclient.CatchUpOrder
	wm    *xmppclient.Cursor // the account's cursor
	// rooms are the cursors of the rooms that had a catch-up, by bare JID.
	rooms map[string]*xmppclient.Cursor

	seq atomic.Uint64 // catch-ups started (any goroutine)

	retryMu    sync.Mutex // guards retrying
	retrying   bool
	retryDelay time.Duration
}

// catchUpRetryDelay is how long after a message failed to reach Matrix a
// new catch-up starts (doubling up to catchUpRetryMax while they fail).
const (
	catchUpRetryDelay = 15 * time.Second
	catchUpRetryMax   = 10 * time.Minute
)

// mark puts a mark into the login's stream (xmppclient.Stream), never
// waiting for room in it (Stream.PutMark says why).
func (c *Client) mark(ev xmppclient.Event) {
	c.stream.PutMark(ev)
}

// catchUpRun runs one catch-up of a chat's archive on s and reports
// whether it reached the end of the archive.
type catchUpRun func(ctx context.Context, s *xmpp.Session, seq uint64) bool

// startCatchUp puts the start mark of a catch-up of lane (the account's
// archive, or a room's) into the stream, so that the chat's live messages
// from now on wait behind it, and returns what runs it: with a session, run
// in the background, then the done mark; with none (a join that failed),
// the done mark at once, the cursor staying where it is. loopCtx lives as
// long as the incoming queue.
func (c *Client) startCatchUp(loopCtx context.Context, lane string) func(s *xmpp.Session, run catchUpRun) {
	seq := c.delivery.seq.Add(1)
	c.mark(xmppclient.Event{Mark: xmppclient.MarkCatchUpStart, Seq: seq, Lane: lane})
	return func(s *xmpp.Session, run catchUpRun) {
		if s == nil {
			c.mark(xmppclient.Event{Mark: xmppclient.MarkCatchUpDone, Seq: seq, Lane: lane})
			return
		}
		go func() {
			ok := run(context.WithoutCancel(loopCtx), s, seq)
			c.mark(xmppclient.Event{Mark: xmppclient.MarkCatchUpDone, Seq: seq, Lane: lane, OK: ok})
		}()
	}
}

// startAccountCatchUp starts the catch-up of the account's archive
// (mam.go), the sending marks swept first.
func (c *Client) startAccountCatchUp(loopCtx context.Context) func(s *xmpp.Session) {
	run := c.startCatchUp(loopCtx, xmppclient.AccountLane)
	return func(s *xmpp.Session) {
		run(s, func(ctx context.Context, s *xmpp.Session, seq uint64) bool {
			c.sweepSending(loopCtx)
			return c.catchUp(ctx, s, seq)
		})
	}
}

// handleEvent is the stream's step for one event, in the catch-up order.
func (c *Client) handleEvent(ctx context.Context, ev xmppclient.Event) {
	c.delivery.order.Step(ctx, ev, c.handleOrdered)
}

// handleOrdered handles an event the catch-up order hands on: a catch-up's
// start resets its chat's cursor (what is tracked from now on comes in
// archive order), an end that did not reach the end of the archive stops
// it; a stanza is routed.
func (c *Client) handleOrdered(ctx context.Context, ev xmppclient.Event) {
	switch ev.Mark {
	case xmppclient.MarkCatchUpStart:
		c.laneCursor(ev.Lane, true).Reset()
	case xmppclient.MarkCatchUpDone:
		if !ev.OK {
			c.laneCursor(ev.Lane, true).Stop()
		}
	default:
		c.handleInbound(ctx, ev.In)
	}
}

// laneCursor is the cursor of lane: the account's, or a room's (made when
// make is set; nil for a room that never had a catch-up).
func (c *Client) laneCursor(lane string, make bool) *xmppclient.Cursor {
	d := &c.delivery
	if lane == xmppclient.AccountLane {
		return d.wm
	}
	wm := d.rooms[lane]
	if wm == nil && make {
		if d.rooms == nil {
			d.rooms = map[string]*xmppclient.Cursor{}
		}
		wm = xmppclient.NewCursor()
		d.rooms[lane] = wm
	}
	return wm
}

// handleInbound routes one stanza by the kind the router found.
func (c *Client) handleInbound(ctx context.Context, in xmppclient.Inbound) {
	if in.Kind == xmppclient.KindRoomPresence {
		c.handleMUCPresence(ctx, in)
		return
	}
	c.handleMessage(ctx, in)
}

// trackable reports whether an archive id goes into lane's cursor: a live
// message's (when the catch-up has reached the end of the archive), and a
// result's of the lane's running catch-up, whose pages are in archive
// order. Late results of an earlier catch-up are not (their place in that
// order is unknown), nor the account's archive results of other queries.
func (c *Client) trackable(lane, id string, archived bool, catchUpSeq uint64) bool {
	if id == "" {
		return false
	}
	if catchUpSeq != 0 {
		return catchUpSeq == c.delivery.order.Running(lane)
	}
	return !archived
}

// ticket tracks archive id (the next in lane's archive order) in lane's
// cursor; nil when it is not to be tracked. The connector acknowledges it
// (xmppclient.Ack.Done) once bridgev2 has handled the message.
func (c *Client) ticket(lane, id string, archived bool, catchUpSeq uint64) *xmppclient.Ack {
	wm := c.laneCursor(lane, false)
	if wm == nil || !c.trackable(lane, id, archived, catchUpSeq) {
		return nil
	}
	return wm.Track(id, func(ctx context.Context, id, cur string, moved, stored bool) {
		c.settled(ctx, lane, id, cur, moved, stored)
	})
}

// settled is told the outcome of an Ack of lane's cursor: the cursor is
// saved when it moved; a message not stored on Matrix stops it, and for the
// account's schedules a new catch-up (a room's waits for its next join).
func (c *Client) settled(ctx context.Context, lane, id, cur string, moved, stored bool) {
	if moved {
		c.noteArchiveID(ctx, lane, cur)
	}
	switch {
	case lane != xmppclient.AccountLane:
		if !stored {
			zerolog.Ctx(ctx).Warn().Str("archive_id", id).Str("room", lane).Msg("Group chat message not stored on Matrix; the room's archive cursor waits for the next join")
		}
	case stored:
		c.catchUpSucceeded()
	default:
		zerolog.Ctx(ctx).Warn().Str("archive_id", id).Msg("Message not stored on Matrix; the archive cursor waits for a new catch-up")
		c.retryCatchUp()
	}
}

// ackAfterHandling makes bridgev2 acknowledge a when it has handled the
// event: for a message (stored != "") as stored only if its row exists
// then.
func (c *Client) ackAfterHandling(a *xmppclient.Ack, meta *simplevent.EventMeta, stored func(context.Context) bool) {
	if a == nil {
		return
	}
	a.HandOff()
	prev := meta.PostHandleFunc
	meta.PostHandleFunc = func(ctx context.Context, portal *bridgev2.Portal) {
		if prev != nil {
			prev(ctx, portal)
		}
		ok := true
		if stored != nil {
			ok = stored(ctx)
		}
		a.Done(ctx, ok)
	}
}

// ackUnqueued acknowledges a handed-off message whose event bridgev2 did
// not queue (then PostHandle may never run).
func ackUnqueued(ctx context.Context, a *xmppclient.Ack, res bridgev2.EventHandlingResult) {
	if !res.Queued {
		a.Done(ctx, res.Success || res.Ignored)
	}
}

// storedOnce is messageStored for id, asked of the database at most once:
// a message's two PostHandle steps (clearing its sending mark,
// acknowledging its archive id) both need it, after bridgev2 is done with
// the message.
func (c *Client) storedOnce(id networkid.MessageID) func(context.Context) bool {
	var once sync.Once
	var ok bool
	return func(ctx context.Context) bool {
		once.Do(func() { ok = c.messageStored(ctx, id) })
		return ok
	}
}

// messageStoredQuery is bridgev2's GetFirstPartByID (v0.31.0) reduced to
// whether a row exists: asked after every message from XMPP, it read and
// decoded the whole row (17 columns, the metadata JSON) to throw it away.
const messageStoredQuery = `SELECT EXISTS(SELECT 1 FROM message WHERE bridge_id=$1 AND (room_receiver=$2 OR room_receiver='') AND id=$3)`

func (c *Client) messageStored(ctx context.Context, id networkid.MessageID) bool {
	db := c.main.Bridge.DB
	var ok bool
	err := db.QueryRow(ctx, messageStoredQuery, db.BridgeID, c.login.ID, id).Scan(&ok)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to check whether a message was stored")
	}
	return err == nil && ok
}

// retryCatchUp schedules a new catch-up from the cursor, once at a time.
func (c *Client) retryCatchUp() {
	d := &c.delivery
	d.retryMu.Lock()
	if d.retrying {
		d.retryMu.Unlock()
		return
	}
	d.retrying = true
	if d.retryDelay == 0 {
		d.retryDelay = catchUpRetryDelay
	}
	delay := d.retryDelay
	d.retryDelay = min(2*d.retryDelay, catchUpRetryMax)
	d.retryMu.Unlock()
	go func() {
		c.mu.Lock()
		loopCtx := c.loopCtx
		c.mu.Unlock()
		ok := loopCtx != nil && xmppclient.Sleep(loopCtx, delay)
		d.retryMu.Lock()
		d.retrying = false
		d.retryMu.Unlock()
		if s := c.currentSession(); ok && s != nil {
			zerolog.Ctx(loopCtx).Info().Msg("Catching up on the archive again after a message did not reach Matrix")
			c.startAccountCatchUp(loopCtx)(s)
		}
	}()
}

func (c *Client) catchUpSucceeded() {
	c.delivery.retryMu.Lock()
	c.delivery.retryDelay = 0
	c.delivery.retryMu.Unlock()
}
