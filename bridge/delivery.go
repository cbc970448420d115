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
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// XMPP -> Matrix delivery across restarts (see docs/delivery.md).
//
// Everything read from the stream goes through one queue (c.incoming) and
// is handled in order. A catch-up (mam.go) runs after every connect; while
// it runs, live 1:1 messages (offline delivery, carbons, new messages) wait
// in c.deferred and are handled after its last page, so that a chat's
// messages reach bridgev2 in archive order. Archive ids are tracked in
// that order by the watermark (watermark.go); each is settled when bridgev2
// has handled what we queued for it (PostHandle), and for messages only if
// bridgev2 stored it. A message that was not stored stops the cursor and a
// new catch-up is tried a little later.

// ctlKind marks control items in the incoming queue.
type ctlKind uint8

const (
	// ctlCatchUpStart: a catch-up starts; defer live messages. (The zero
	// value is a stanza.)
	ctlCatchUpStart ctlKind = iota + 1
	// ctlCatchUpDone: all of the catch-up's results are before this item
	// in the queue.
	ctlCatchUpDone
	// ctlRoomCatchUpStart and ctlRoomCatchUpDone are the same for one
	// room's archive (mucarchive.go).
	ctlRoomCatchUpStart
	ctlRoomCatchUpDone
)

// inItem is one entry of the incoming queue: a stanza, or a control item.
type inItem struct {
	st  *stanzabuf.Stanza
	ctl ctlKind
	seq uint64 // of the catch-up, for control items
	ok  bool   // ctlCatchUpDone: the catch-up reached the end of the archive
	// room is the bare JID of the room, for the room control items.
	room string
}

// deliveryState is owned by the incoming queue's goroutine, except for the
// fields noted.
type deliveryState struct {
	wm         *watermark
	catchingUp uint64 // the running catch-up's seq, 0 when none
	deferred   []*stanzabuf.Stanza
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

// control puts a control item into the incoming queue.
func (c *Client) control(ctx context.Context, it inItem) {
	select {
	case c.incoming <- it:
	case <-ctx.Done():
	}
}

// startCatchUp queues the start marker of a catch-up and returns the
// function that runs it on a session (in the background). loopCtx lives as
// long as the incoming queue.
func (c *Client) startCatchUp(loopCtx context.Context) func(s *xmpp.Session) {
	seq := c.delivery.seq.Add(1)
	c.control(loopCtx, inItem{ctl: ctlCatchUpStart, seq: seq})
	return func(s *xmpp.Session) {
		go func() {
			c.sweepSending(loopCtx)
			ok := c.catchUp(context.WithoutCancel(loopCtx), s, seq)
			c.control(loopCtx, inItem{ctl: ctlCatchUpDone, seq: seq, ok: ok})
		}()
	}
}

// handleItem is the incoming queue's step for one item.
func (c *Client) handleItem(ctx context.Context, it inItem) {
	d := &c.delivery
	switch it.ctl {
	case ctlCatchUpStart:
		// Messages still deferred by a catch-up that never finished (its
		// session dropped) wait for this one.
		d.wm.reset()
		d.catchingUp = it.seq
		return
	case ctlRoomCatchUpStart, ctlRoomCatchUpDone:
		c.handleRoomControl(ctx, it)
		return
	case ctlCatchUpDone:
		if it.seq != d.catchingUp {
			return
		}
		d.catchingUp = 0
		if !it.ok {
			d.wm.stop()
		}
		deferred := d.deferred
		d.deferred = nil
		for _, st := range deferred {
			c.handleStanza(ctx, st)
		}
		return
	}
	if c.deferRoomMessage(it.st) {
		return
	}
	if d.catchingUp != 0 && deferrable(it.st) {
		d.deferred = append(d.deferred, it.st)
		return
	}
	c.handleStanza(ctx, it.st)
}

// deferrable: live 1:1 messages wait for the catch-up; group chat traffic
// and our own archive results do not.
func deferrable(st *stanzabuf.Stanza) bool {
	if st.Start().Name.Local != "message" || xmppclient.AttrValue(st.Start(), "type") == string(stanza.GroupChatMessage) {
		return false
	}
	_, err := xmppclient.UnwrapArchived(st)
	return err == xmppclient.ErrNotArchived
}

func (c *Client) handleStanza(ctx context.Context, st *stanzabuf.Stanza) {
	if st.Start().Name.Local == "presence" {
		c.handleMUCPresence(ctx, st)
		return
	}
	c.handleMessage(ctx, st)
}

// trackable reports whether in's archive id goes into the watermark: live
// messages (when the catch-up has reached the end of the archive), and
// results of the running catch-up, whose pages are in archive order. Late
// results of an earlier catch-up are not: their place in that order is
// unknown.
func (c *Client) trackable(in *incomingMessage) bool {
	if in.StanzaID == "" {
		return false
	}
	if !in.Archived {
		return true
	}
	return in.catchUpSeq != 0 && in.catchUpSeq == c.delivery.catchingUp
}

// archiveTicket is one tracked archive id on its way to Matrix.
type archiveTicket struct {
	c      *Client
	wm     *watermark
	gen    uint64
	id     string
	once   sync.Once
	handed atomic.Bool
	// room is set for a room's archive id (mucarchive.go).
	room string
}

// ticket tracks archive id (the next in archive order); nil when it is not
// to be tracked.
func (c *Client) ticket(id string) *archiveTicket {
	gen, ok := c.delivery.wm.track(id)
	if !ok {
		return nil
	}
	return &archiveTicket{c: c, wm: c.delivery.wm, gen: gen, id: id}
}

// settle records the outcome once and moves the cursor if it can.
func (t *archiveTicket) settle(ctx context.Context, ok bool) {
	if t == nil {
		return
	}
	t.once.Do(func() {
		cur, moved := t.wm.settle(t.gen, t.id, ok)
		if t.room != "" {
			if moved {
				t.c.noteRoomArchiveID(ctx, t.room, cur)
			}
			if !ok {
				zerolog.Ctx(ctx).Warn().Str("archive_id", t.id).Str("room", t.room).Msg("Group chat message not stored on Matrix; the room's archive cursor waits for the next join")
			}
			return
		}
		if moved {
			t.c.noteArchiveID(ctx, cur)
		}
		if ok {
			t.c.catchUpSucceeded()
		} else {
			zerolog.Ctx(ctx).Warn().Str("archive_id", t.id).Msg("Message not stored on Matrix; the archive cursor waits for a new catch-up")
			t.c.retryCatchUp()
		}
	})
}

// release settles a ticket that was not handed to bridgev2: whatever the
// message needed is done.
func (t *archiveTicket) release(ctx context.Context) {
	if t != nil && !t.handed.Load() {
		t.settle(ctx, true)
	}
}

// handOff makes bridgev2 settle the ticket when it has handled the event;
// for a message (stored != "") only if its row exists then.
func (t *archiveTicket) handOff(meta *simplevent.EventMeta, stored networkid.MessageID) {
	if t == nil {
		return
	}
	t.handed.Store(true)
	prev := meta.PostHandleFunc
	meta.PostHandleFunc = func(ctx context.Context, portal *bridgev2.Portal) {
		if prev != nil {
			prev(ctx, portal)
		}
		ok := true
		if stored != "" {
			ok = t.c.messageStored(ctx, stored)
		}
		t.settle(ctx, ok)
	}
}

// queued settles a handed-off ticket whose event bridgev2 did not queue
// (then PostHandle may never run).
func (t *archiveTicket) queued(ctx context.Context, res bridgev2.EventHandlingResult) {
	if t != nil && !res.Queued {
		t.settle(ctx, res.Success || res.Ignored)
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
