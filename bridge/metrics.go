package bridge

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/mxomemo/xmpp-bridge/metrics"
)

// Metrics call sites live next to the code they measure; these helpers keep
// the ones that need more than one line out of others' files.

// countQueued records the outcome of queueing one XMPP message for Matrix.
// Undecryptable messages were counted when decryption failed and are
// queued as notices, so they are not counted again.
func (c *Client) countQueued(in *incoming, res bridgev2.EventHandlingResult) {
	if in.OMEMO != nil && in.OMEMO.Failed {
		return
	}
	c.countResult(res)
}

// countResult records the outcome of queueing one message for Matrix.
func (c *Client) countResult(res bridgev2.EventHandlingResult) {
	switch {
	case res.Success || res.Queued:
		c.main.Metrics.MessageBridged(metrics.XMPPToMatrix, metrics.OutcomeOK)
	case !res.Ignored:
		c.main.Metrics.MessageBridged(metrics.XMPPToMatrix, metrics.OutcomeFailedSend)
	}
}

// sessionsCountEvery bounds how often countOMEMOSessions counts: it ran
// after every OMEMO message sent or received, a COUNT over all sessions
// per message.
const sessionsCountEvery = 10 * time.Second

// countOMEMOSessions sets the OMEMO sessions gauge from the database (all
// logins), at most once per sessionsCountEvery: a call within it is
// answered by one count at its end. It costs a query, so it only runs with
// metrics enabled.
func (c *Client) countOMEMOSessions(ctx context.Context) {
	if c.main.Metrics == nil || !c.main.sessionsCountDue.CompareAndSwap(false, true) {
		return
	}
	count := func(ctx context.Context) {
		defer c.main.sessionsCountDue.Store(false)
		c.main.sessionsCounted.Store(time.Now().UnixNano())
		var n int
		if err := c.main.DB.QueryRow(ctx, `SELECT COUNT(*) FROM omemo_session`).Scan(&n); err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to count OMEMO sessions for metrics")
			return
		}
		c.main.Metrics.SetOMEMOSessions(n)
	}
	wait := time.Until(time.Unix(0, c.main.sessionsCounted.Load()).Add(sessionsCountEvery))
	if wait <= 0 {
		count(ctx)
		return
	}
	ctx = context.WithoutCancel(ctx)
	time.AfterFunc(wait, func() { count(ctx) })
}
