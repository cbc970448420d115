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
// (xmppclient.Stream, c.stream) and is handled in order. A catch-up (mam.go) runs after every connect; while
// it runs, live 1:1 messages (offline delivery, carbons, new messages) wait
// in c.deferred and are handled after its last page, so that a chat's
// messages reach bridgev2 in archive order. Archive ids are tracked in
// that order by a cursor (xmppclient/cursor.go); each message's Ack is done
// when bridgev2 has handled what we queued for it (PostHandle), and for messages only if
// bridgev2 stored it. A message that was not stored stops the cursor and a
// new catch-up is tried a little later.

// deliveryState is owned by the incoming queue's goroutine, except for the
// fields noted.
type deliveryState struct {
	wm         *xmppclient.Cursor
	catchingUp uint64 // the running catch-up's seq, 0 when none
	deferred   []xmppclient.Inbound
	// rooms is each joined room's archive state (mucarchive.go).
	rooms map[string]*roomDelivery

	seq atomic.Uint64 // catch-ups started

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

// mark puts a mark into the login's stream (xmppclient.Stream).
func (c *Client) mark(ctx context.Context, ev xmppclient.Event) {
	c.stream.Put(ctx, ev)
}

// startCatchUp queues the start marker of a catch-up and returns the
// function that runs it on a session (in the background). loopCtx lives as
// long as the incoming queue.
func (c *Client) startCatchUp(loopCtx context.Context) func(s *xmpp.Session) {
	seq := c.delivery.seq.Add(1)
	c.mark(loopCtx, xmppclient.Event{Mark: xmppclient.MarkCatchUpStart, Seq: seq})
	return func(s *xmpp.Session) {
		go func() {
			c.sweepSending(loopCtx)
			ok := c.catchUp(context.WithoutCancel(loopCtx), s, seq)
			c.mark(loopCtx, xmppclient.Event{Mark: xmppclient.MarkCatchUpDone, Seq: seq, OK: ok})
		}()
	}
}

// handleEvent is the stream's step for one event.
func (c *Client) handleEvent(ctx context.Context, ev xmppclient.Event) {
	d := &c.delivery
	switch ev.Mark {
	case xmppclient.MarkCatchUpStart:
		// Messages still deferred by a catch-up that never finished (its
		// session dropped) wait for this one.
		d.wm.Reset()
		d.catchingUp = ev.Seq
		return
	case xmppclient.MarkRoomCatchUpStart, xmppclient.MarkRoomCatchUpDone:
		c.handleRoomMark(ctx, ev)
		return
	case xmppclient.MarkCatchUpDone:
		if ev.Seq != d.catchingUp {
			return
		}
		d.catchingUp = 0
		if !ev.OK {
			d.wm.Stop()
		}
		deferred := d.deferred
		d.deferred = nil
		for _, in := range deferred {
			c.handleInbound(ctx, in)
		}
		return
	}
	if c.deferRoomMessage(ev.In) {
		return
	}
	if d.catchingUp != 0 && deferrable(ev.In) {
		d.deferred = append(d.deferred, ev.In)
		return
	}
	c.handleInbound(ctx, ev.In)
}

// deferrable: live 1:1 messages (and PEP notifications) wait for the
// catch-up; group chat traffic and archive results do not.
func deferrable(in xmppclient.Inbound) bool {
	return in.Kind == xmppclient.KindChat || in.Kind == xmppclient.KindPubSub
}

// handleInbound routes one stanza by the kind the router found.
func (c *Client) handleInbound(ctx context.Context, in xmppclient.Inbound) {
	if in.Kind == xmppclient.KindRoomPresence {
		c.handleMUCPresence(ctx, in)
		return
	}
	c.handleMessage(ctx, in)
}

// trackable reports whether in's archive id goes into the watermark: live
// messages (when the catch-up has reached the end of the archive), and
// results of the running catch-up, whose pages are in archive order. Late
// results of an earlier catch-up are not: their place in that order is
// unknown.
func (c *Client) trackable(in *incoming) bool {
	if in.StanzaID == "" {
		return false
	}
	if !in.Archived {
		return true
	}
	return in.catchUpSeq != 0 && in.catchUpSeq == c.delivery.catchingUp
}

// ticket tracks archive id (the next in archive order) in the account's
// cursor; nil when it is not to be tracked. The connector acknowledges it
// (xmppclient.Ack.Done) once bridgev2 has handled the message.
func (c *Client) ticket(id string) *xmppclient.Ack {
	return c.delivery.wm.Track(id, c.accountSettled)
}

// accountSettled is told the outcome of an Ack of the account's cursor:
// the cursor is saved when it moved; a message not stored on Matrix
// schedules a new catch-up.
func (c *Client) accountSettled(ctx context.Context, id, cur string, moved, stored bool) {
	if moved {
		c.noteArchiveID(ctx, cur)
	}
	if stored {
		c.catchUpSucceeded()
		return
	}
	zerolog.Ctx(ctx).Warn().Str("archive_id", id).Msg("Message not stored on Matrix; the archive cursor waits for a new catch-up")
	c.retryCatchUp()
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

func (c *Client) messageStored(ctx context.Context, id networkid.MessageID) bool {
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, id)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to check whether a message was stored")
	}
	return err == nil && msg != nil
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
			c.startCatchUp(loopCtx)(s)
		}
	}()
}

func (c *Client) catchUpSucceeded() {
	c.delivery.retryMu.Lock()
	c.delivery.retryDelay = 0
	c.delivery.retryMu.Unlock()
}
