package bridge

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// The login's OMEMO network work (resets, heartbeats, republishes, our own
// device list put back, device-list fetches) waits in the client's bounded,
// rate-limited queue (xmppclient.OMEMOQueue) and is done by the client
// (xmppclient.RunOMEMOTask); here it is run while tasks wait, on the
// login's connection context, and the key change notices are posted.

// omemoEnqueue queues t without blocking; it reports whether t was taken.
func (c *Client) omemoEnqueue(ctx context.Context, t xmppclient.OMEMOTask) bool {
	err := c.omemoWorker().Add(t)
	switch {
	case errors.Is(err, xmppclient.ErrOMEMORateLimited):
		zerolog.Ctx(ctx).Debug().Int("task", int(t.Kind)).Stringer("jid", t.Peer).Msg("OMEMO task rate-limited")
		return false
	case err != nil:
		zerolog.Ctx(ctx).Warn().Err(err).Int("task", int(t.Kind)).Stringer("jid", t.Peer).Msg("Dropping OMEMO task")
		return false
	}
	c.kickOMEMOWorker()
	return true
}

// omemoWorker is the login's OMEMO work queue, made by the first task:
// most logins never have one besides their own device list.
func (c *Client) omemoWorker() *xmppclient.OMEMOQueue {
	c.omemo.mu.Lock()
	defer c.omemo.mu.Unlock()
	if c.omemo.worker == nil {
		c.omemo.worker = &xmppclient.OMEMOQueue{}
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
	w := c.omemo.worker
	c.omemo.mu.Unlock()
	if loopCtx == nil || w == nil {
		return
	}
	c.omemoRunner.Kick(func() { w.Run(loopCtx, c.runOMEMOTask) }, func() bool { return w.Len() > 0 && loopCtx.Err() == nil })
}

// runOMEMOTask has the client do t (xmppclient.RunOMEMOTask), or posts the
// key change notice t asks for.
func (c *Client) runOMEMOTask(ctx context.Context, t xmppclient.OMEMOTask) {
	if t.Kind == xmppclient.TaskKeyChanged {
		c.sendKeyChangeNotice(ctx, t)
		return
	}
	if oc := c.omemoClient(); oc != nil {
		xmppclient.RunOMEMOTask(ctx, &c.omemo.ratchet, oc, c.sendSignal, t)
	}
}
