package bridge

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// OMEMO work that needs the network (session resets, bundle republishes,
// heartbeats, our own device list put back) runs here, in one worker per
// login, and never in the incoming stanza loop or under the ratchet lock
// (xmppclient.Ratchet): a server that does not answer then delays only
// this queue.
// Strangers decide how often such work is asked for (one message from an
// unknown device id asks for a reset), so the queue is bounded, the work
// is rate-limited per bare JID and overall, and what does not fit is
// dropped: a later message asks again.

const (
	// omemoQueueSize bounds the queued OMEMO network work of a login.
	omemoQueueSize = 64
	// omemoTaskTimeout bounds one task (a bundle fetch and a send).
	omemoTaskTimeout = 45 * time.Second
	// omemoGlobalBurst and omemoGlobalEvery: at most a burst of tasks,
	// then one per interval, per login.
	omemoGlobalBurst = 10
	omemoGlobalEvery = 500 * time.Millisecond
	// omemoPerJIDMax tasks per bare JID within omemoPerJIDWindow.
	omemoPerJIDMax    = 4
	omemoPerJIDWindow = time.Minute
	// omemoStateMax bounds the per-device and per-JID bookkeeping maps.
	omemoStateMax = 1024
)

type omemoTaskKind int

const (
	taskReset omemoTaskKind = iota + 1
	taskHeartbeat
	taskRepublish
	taskOwnList
	taskFetchDevices
	taskKeyChanged
)

// omemoTask is one piece of OMEMO network work.
type omemoTask struct {
	kind    omemoTaskKind
	peer    jid.JID
	device  uint32
	version omemo.Version
	ownList *omemoxmpp.DeviceListUpdate
	// For taskKeyChanged: the new key's fingerprint and the chat.
	fingerprint string
	room        bool
	chat        jid.JID
}

// omemoWorker is the queue and the rate limits; zero value is not usable
// (see newOMEMOWorker).
type omemoWorker struct {
	// queue holds pointers: its buffer is allocated whole, and nearly every
	// login has a worker (its own device list arrives at each connect).
	queue chan *omemoTask

	mu         sync.Mutex
	republish  bool                   // a republish is queued
	perJID     map[string][]time.Time // recent tasks per bare JID
	tokens     float64
	lastRefill time.Time
}

func newOMEMOWorker() *omemoWorker {
	return &omemoWorker{queue: make(chan *omemoTask, omemoQueueSize), perJID: map[string][]time.Time{},
		tokens: omemoGlobalBurst, lastRefill: time.Now()}
}

// admit applies the per-JID limit to a task about peer; republishes are
// coalesced instead.
func (w *omemoWorker) admit(t omemoTask) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.kind == taskRepublish {
		if w.republish {
			return false
		}
		w.republish = true
		return true
	}
	if t.kind == taskOwnList || t.kind == taskKeyChanged {
		// Our own list, and at most one notice per key ever.
		return true
	}
	now := time.Now()
	key := t.limitKey()
	recent := w.perJID[key][:0]
	for _, at := range w.perJID[key] {
		if now.Sub(at) < omemoPerJIDWindow {
			recent = append(recent, at)
		}
	}
	if len(recent) >= omemoPerJIDMax {
		w.perJID[key] = recent
		return false
	}
	if len(w.perJID) >= omemoStateMax {
		for k, ts := range w.perJID {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= omemoPerJIDWindow {
				delete(w.perJID, k)
			}
		}
		if len(w.perJID) >= omemoStateMax {
			// A flood of distinct JIDs: refuse until entries expire.
			return false
		}
	}
	w.perJID[key] = append(recent, now)
	return true
}

// limitKey is what the per-JID limit counts t under: one budget per kind
// of work, so that frequent device-list fetches do not use up resets.
func (t omemoTask) limitKey() string {
	return strconv.Itoa(int(t.kind)) + "|" + t.peer.Bare().String()
}

// take waits for a global token.
func (w *omemoWorker) take(ctx context.Context) bool {
	for {
		w.mu.Lock()
		now := time.Now()
		w.tokens += float64(now.Sub(w.lastRefill)) / float64(omemoGlobalEvery)
		if w.tokens > omemoGlobalBurst {
			w.tokens = omemoGlobalBurst
		}
		w.lastRefill = now
		if w.tokens >= 1 {
			w.tokens--
			w.mu.Unlock()
			return true
		}
		wait := time.Duration((1 - w.tokens) * float64(omemoGlobalEvery))
		w.mu.Unlock()
		if !xmppclient.Sleep(ctx, wait) {
			return false
		}
	}
}

// omemoEnqueue queues t without blocking; it reports whether t was taken.
func (c *Client) omemoEnqueue(ctx context.Context, t omemoTask) bool {
	w := c.omemoWorker()
	if !w.admit(t) {
		zerolog.Ctx(ctx).Debug().Int("task", int(t.kind)).Stringer("jid", t.peer).Msg("OMEMO task rate-limited")
		return false
	}
	select {
	case w.queue <- &t:
		c.kickOMEMOWorker()
		return true
	default:
		if t.kind == taskRepublish {
			w.mu.Lock()
			w.republish = false
			w.mu.Unlock()
		}
		zerolog.Ctx(ctx).Warn().Int("task", int(t.kind)).Stringer("jid", t.peer).Msg("OMEMO work queue full, dropping task")
		return false
	}
}

func (c *Client) omemoWorker() *omemoWorker {
	c.omemo.mu.Lock()
	defer c.omemo.mu.Unlock()
	if c.omemo.worker == nil {
		c.omemo.worker = newOMEMOWorker()
	}
	return c.omemo.worker
}

// kickOMEMOWorker makes sure runOMEMOWorker runs while the login's OMEMO
// queue has tasks (lazyWorker); tasks queued while the login is not
// connected wait for Connect.
func (c *Client) kickOMEMOWorker() {
	c.mu.Lock()
	loopCtx := c.loopCtx
	c.mu.Unlock()
	c.kickOMEMOWorkerOn(loopCtx)
}

func (c *Client) kickOMEMOWorkerOn(loopCtx context.Context) {
	c.omemo.mu.Lock()
	w := c.omemo.worker // made by the first task: most logins never have one
	c.omemo.mu.Unlock()
	if loopCtx == nil || w == nil {
		return
	}
	c.omemoRunner.Kick(func() { c.runOMEMOWorker(loopCtx) }, func() bool { return len(w.queue) > 0 && loopCtx.Err() == nil })
}

// runOMEMOWorker runs the login's queued OMEMO work until the queue is
// empty or ctx ends.
func (c *Client) runOMEMOWorker(ctx context.Context) {
	w := c.omemoWorker()
	for ctx.Err() == nil {
		var t omemoTask
		select {
		case tp := <-w.queue:
			t = *tp
		default:
			return
		}
		if t.kind == taskRepublish {
			w.mu.Lock()
			w.republish = false
			w.mu.Unlock()
		}
		if !w.take(ctx) {
			return
		}
		taskCtx, cancel := context.WithTimeout(ctx, omemoTaskTimeout)
		c.runOMEMOTask(taskCtx, t)
		cancel()
	}
}

func (c *Client) runOMEMOTask(ctx context.Context, t omemoTask) {
	log := zerolog.Ctx(ctx)
	oc := c.omemoClient()
	if oc == nil {
		return
	}
	switch t.kind {
	case taskReset:
		addr := omemo.Address{JID: t.peer.Bare().String(), Device: t.device}
		if err := xmppclient.SendReset(ctx, &c.omemo.ratchet, oc, c.sendSignal, t.peer, t.device, t.version); err != nil {
			log.Warn().Err(err).Stringer("device", addr).Msg("Failed to reset OMEMO session")
			return
		}
		log.Info().Stringer("device", addr).Msg("Reset OMEMO session")
	case taskHeartbeat:
		if err := xmppclient.SendHeartbeat(ctx, &c.omemo.ratchet, oc, c.sendSignal, t.peer, t.device, t.version); err != nil {
			log.Warn().Err(err).Msg("Failed to send OMEMO heartbeat")
			return
		}
		log.Debug().Uint32("omemo_device", t.device).Str("omemo_version", t.version.String()).Msg("Sent OMEMO heartbeat")
	case taskRepublish:
		if err := oc.Republish(ctx); err != nil {
			log.Warn().Err(err).Msg("Failed to republish OMEMO bundle after a prekey was used")
		}
	case taskFetchDevices:
		if _, err := oc.FetchDevices(ctx, t.peer); err != nil {
			log.Debug().Err(err).Stringer("jid", t.peer).Msg("Failed to fetch OMEMO devices of an untrusted sender")
		}
	case taskKeyChanged:
		c.sendKeyChangeNotice(ctx, t)
	case taskOwnList:
		republished, err := oc.HandleDeviceListUpdate(ctx, t.ownList)
		if err != nil {
			log.Warn().Err(err).Msg("Failed to handle own OMEMO device list update")
			return
		}
		log.Debug().Bool("republished", republished).Msg("Own OMEMO device list update")
	}
}
