package xmppclient

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// OMEMO work that needs the network (session resets, bundle republishes,
// heartbeats, our own device list put back, device-list fetches) runs in
// one queue per login, and never in the incoming stanza loop or under the
// ratchet lock: a server that does not answer then delays only this
// queue. Strangers decide how often such work is asked for (one message
// from an unknown device id asks for a reset), so the queue is bounded,
// the work is rate-limited per bare JID and overall, and what does not fit
// is dropped: a later message asks again.

const (
	// OMEMOQueueSize bounds the queued OMEMO network work of a login.
	OMEMOQueueSize = 64
	// OMEMOTaskTimeout bounds one task (a bundle fetch and a send).
	OMEMOTaskTimeout = 45 * time.Second
	// omemoGlobalBurst and omemoGlobalEvery: at most a burst of tasks,
	// then one per interval, per login.
	omemoGlobalBurst = 10
	omemoGlobalEvery = 500 * time.Millisecond
	// OMEMOPerJIDMax tasks of one kind per bare JID within
	// omemoPerJIDWindow.
	OMEMOPerJIDMax    = 4
	omemoPerJIDWindow = time.Minute
	// omemoStateMax bounds the per-JID bookkeeping.
	omemoStateMax = 1024
)

// OMEMOTaskKind is what an OMEMOTask does.
type OMEMOTaskKind int

// The kinds of OMEMO work. All but TaskKeyChanged are protocol work
// (runOMEMOTask); TaskKeyChanged is the connector's notice about a changed
// identity key, queued here to be bounded like the rest.
const (
	TaskReset OMEMOTaskKind = iota + 1
	TaskHeartbeat
	TaskRepublish
	TaskOwnList
	TaskFetchDevices
	TaskKeyChanged
)

// OMEMOTask is one piece of OMEMO network work.
type OMEMOTask struct {
	Kind    OMEMOTaskKind
	Peer    jid.JID
	Device  uint32
	Version omemo.Version
	OwnList *omemoxmpp.DeviceListUpdate // TaskOwnList
	// For TaskKeyChanged: the new key's fingerprint, and the chat the
	// message came in (a room when Room).
	Fingerprint string
	Room        bool
	Chat        jid.JID
}

// limitKey is what the per-JID limit counts t under: one budget per kind
// of work, so that frequent device-list fetches do not use up resets.
func (t OMEMOTask) limitKey() string {
	return strconv.Itoa(int(t.Kind)) + "|" + t.Peer.Bare().String()
}

// Why OMEMOQueue.Add refused a task.
var (
	ErrOMEMORateLimited = errors.New("OMEMO task rate-limited")
	ErrOMEMOQueueFull   = errors.New("OMEMO work queue full")
)

// OMEMOQueue is one login's queue of OMEMO work with its rate limits. The
// zero value is ready to use; its buffer grows with what waits and is let
// go when drained (nearly every login queues its own device list at each
// connect, and then nothing for a long time).
type OMEMOQueue struct {
	mu         sync.Mutex
	tasks      []OMEMOTask
	republish  bool                   // a republish is queued
	perJID     map[string][]time.Time // recent tasks per kind and bare JID
	tokens     float64
	lastRefill time.Time
}

// Add queues t without blocking, or says why not (ErrOMEMORateLimited,
// ErrOMEMOQueueFull).
func (q *OMEMOQueue) Add(t OMEMOTask) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.tasks) >= OMEMOQueueSize {
		return ErrOMEMOQueueFull
	}
	if !q.admit(t) {
		return ErrOMEMORateLimited
	}
	q.tasks = append(q.tasks, t)
	return nil
}

// admit applies the per-JID limit to a task about its peer; republishes
// are coalesced instead. q.mu is held.
func (q *OMEMOQueue) admit(t OMEMOTask) bool {
	switch t.Kind {
	case TaskRepublish:
		if q.republish {
			return false
		}
		q.republish = true
		return true
	case TaskOwnList, TaskKeyChanged:
		// Our own list, and at most one notice per key ever.
		return true
	}
	if q.perJID == nil {
		q.perJID = map[string][]time.Time{}
	}
	now := time.Now()
	key := t.limitKey()
	recent := q.perJID[key][:0]
	for _, at := range q.perJID[key] {
		if now.Sub(at) < omemoPerJIDWindow {
			recent = append(recent, at)
		}
	}
	if len(recent) >= OMEMOPerJIDMax {
		q.perJID[key] = recent
		return false
	}
	if len(q.perJID) >= omemoStateMax {
		for k, ts := range q.perJID {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= omemoPerJIDWindow {
				delete(q.perJID, k)
			}
		}
		if len(q.perJID) >= omemoStateMax {
			// A flood of distinct JIDs: refuse until entries expire.
			return false
		}
	}
	q.perJID[key] = append(recent, now)
	return true
}

// Admitted is how many tasks like t (its kind, its peer) were admitted in
// the last rate-limit window.
func (q *OMEMOQueue) Admitted(t OMEMOTask) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, at := range q.perJID[t.limitKey()] {
		if time.Since(at) < omemoPerJIDWindow {
			n++
		}
	}
	return n
}

// Len is how many tasks wait.
func (q *OMEMOQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tasks)
}

// Pending is a copy of the waiting tasks, in order.
func (q *OMEMOQueue) Pending() []OMEMOTask {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]OMEMOTask(nil), q.tasks...)
}

// Next takes the first waiting task, if any.
func (q *OMEMOQueue) Next() (OMEMOTask, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.tasks) == 0 {
		return OMEMOTask{}, false
	}
	t := q.tasks[0]
	q.tasks[0] = OMEMOTask{}
	q.tasks = q.tasks[1:]
	if len(q.tasks) == 0 {
		q.tasks = nil
	}
	if t.Kind == TaskRepublish {
		q.republish = false
	}
	return t, true
}

// take waits for a global token.
func (q *OMEMOQueue) take(ctx context.Context) bool {
	for {
		q.mu.Lock()
		now := time.Now()
		if q.lastRefill.IsZero() {
			q.tokens, q.lastRefill = omemoGlobalBurst, now
		}
		q.tokens += float64(now.Sub(q.lastRefill)) / float64(omemoGlobalEvery)
		if q.tokens > omemoGlobalBurst {
			q.tokens = omemoGlobalBurst
		}
		q.lastRefill = now
		if q.tokens >= 1 {
			q.tokens--
			q.mu.Unlock()
			return true
		}
		wait := time.Duration((1 - q.tokens) * float64(omemoGlobalEvery))
		q.mu.Unlock()
		if !Sleep(ctx, wait) {
			return false
		}
	}
}

// Run runs the waiting tasks with run, one at a time within the global
// rate limit and each within OMEMOTaskTimeout, until the queue is empty or
// ctx ends (a LazyWorker runs it while tasks wait).
func (q *OMEMOQueue) Run(ctx context.Context, run func(context.Context, OMEMOTask)) {
	for ctx.Err() == nil {
		t, ok := q.Next()
		if !ok || !q.take(ctx) {
			return
		}
		taskCtx, cancel := context.WithTimeout(ctx, OMEMOTaskTimeout)
		run(taskCtx, t)
		cancel()
	}
}

// runOMEMOTask does the protocol work of t with the session's OMEMO client
// (the ratchet steps under r's lock, fetches and sends outside it; send
// writes a key transport message). It reports false for a task that is not
// protocol work (TaskKeyChanged), which the caller does. Failures are
// logged: a later message asks again.
func runOMEMOTask(ctx context.Context, r *ratchetLock, oc *omemoxmpp.Client, send func(context.Context, Signal) error, t OMEMOTask) bool {
	log := zerolog.Ctx(ctx)
	switch t.Kind {
	case TaskReset:
		addr := omemo.Address{JID: t.Peer.Bare().String(), Device: t.Device}
		if err := sendReset(ctx, r, oc, send, t.Peer, t.Device, t.Version); err != nil {
			log.Warn().Err(err).Stringer("device", addr).Msg("Failed to reset OMEMO session")
			return true
		}
		log.Info().Stringer("device", addr).Msg("Reset OMEMO session")
	case TaskHeartbeat:
		if err := sendHeartbeat(ctx, r, oc, send, t.Peer, t.Device, t.Version); err != nil {
			log.Warn().Err(err).Msg("Failed to send OMEMO heartbeat")
			return true
		}
		log.Debug().Uint32("omemo_device", t.Device).Str("omemo_version", t.Version.String()).Msg("Sent OMEMO heartbeat")
	case TaskRepublish:
		if err := oc.Republish(ctx); err != nil {
			log.Warn().Err(err).Msg("Failed to republish OMEMO bundle after a prekey was used")
		}
	case TaskFetchDevices:
		if _, err := oc.FetchDevices(ctx, t.Peer); err != nil {
			log.Debug().Err(err).Stringer("jid", t.Peer).Msg("Failed to fetch OMEMO devices of an untrusted sender")
		}
	case TaskOwnList:
		republished, err := RestoreOwnList(ctx, oc, t.OwnList)
		if err != nil {
			log.Warn().Err(err).Msg("Failed to handle own OMEMO device list update")
			return true
		}
		log.Debug().Bool("republished", republished).Msg("Own OMEMO device list update")
	default:
		return false
	}
	return true
}

// Start runs the queued work on loopCtx, the connection's context, from
// now on while tasks wait; tasks queued while the login was not connected
// start now.
func (o *OMEMO) Start(loopCtx context.Context) {
	o.mu.Lock()
	o.loopCtx = loopCtx
	o.mu.Unlock()
	o.kick()
}

// Queue is the login's queue of OMEMO work (made on first use).
func (o *OMEMO) Queue() *OMEMOQueue {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.queue == nil {
		o.queue = &OMEMOQueue{}
	}
	return o.queue
}

// Enqueue queues t without blocking; it reports whether t was taken.
func (o *OMEMO) Enqueue(ctx context.Context, t OMEMOTask) bool {
	err := o.Queue().Add(t)
	switch {
	case errors.Is(err, ErrOMEMORateLimited):
		zerolog.Ctx(ctx).Debug().Int("task", int(t.Kind)).Stringer("jid", t.Peer).Msg("OMEMO task rate-limited")
		return false
	case err != nil:
		zerolog.Ctx(ctx).Warn().Err(err).Int("task", int(t.Kind)).Stringer("jid", t.Peer).Msg("Dropping OMEMO task")
		return false
	}
	o.kick()
	return true
}

// kick makes sure the queue runs while it has tasks and the connection's
// context lasts.
func (o *OMEMO) kick() {
	o.mu.Lock()
	loopCtx, q := o.loopCtx, o.queue
	o.mu.Unlock()
	if loopCtx == nil || q == nil {
		return
	}
	o.runner.Kick(func() { q.Run(loopCtx, o.RunTask) }, func() bool { return q.Len() > 0 && loopCtx.Err() == nil })
}

// RunTask does t now: the protocol work with the session's client
// (runOMEMOTask), or the connector's key change notice.
func (o *OMEMO) RunTask(ctx context.Context, t OMEMOTask) {
	o.mu.Lock()
	oc, h := o.oc, o.hooks
	o.mu.Unlock()
	if t.Kind == TaskKeyChanged {
		if h.KeyChanged != nil {
			h.KeyChanged(ctx, t)
		}
		return
	}
	if oc == nil {
		return
	}
	send := h.Send
	if send == nil {
		send = func(context.Context, Signal) error { return ErrNotConnected }
	}
	runOMEMOTask(ctx, &o.ratchet, oc, send, t)
}

// ResetIfDue records the outcome of decrypting a message from sender's
// device (err nil: it decrypted) and queues a new session with that device
// when the reset policy says it is due (SessionResets.Due), so that its
// next message can be read. It reports whether a reset was queued.
func (o *OMEMO) ResetIfDue(ctx context.Context, sender jid.JID, device uint32, v omemo.Version, err error) bool {
	if o.Client() == nil || device == 0 {
		return false
	}
	if !o.resets.Due(omemo.Address{JID: sender.Bare().String(), Device: device}, err) {
		return false
	}
	return o.Enqueue(ctx, OMEMOTask{Kind: TaskReset, Peer: sender.Bare(), Device: device, Version: v})
}
