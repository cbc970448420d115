package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// readyGate says whether a login's XMPP session is fully set up (connected,
// OMEMO device announced, initial presence sent), and lets senders wait for
// it. After a restart the homeserver flushes its queue before the login is
// up, and while a login reconnects Matrix messages keep coming: both wait
// here instead of failing once and being lost.
type readyGate struct {
	mu    sync.Mutex
	ready bool
	// wake is closed and replaced whenever ready changes to true.
	wake chan struct{}
}

func (g *readyGate) set(ready bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wake == nil {
		g.wake = make(chan struct{})
	}
	if ready && !g.ready {
		close(g.wake)
		g.wake = make(chan struct{})
	}
	g.ready = ready
}

func (g *readyGate) state() (bool, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wake == nil {
		g.wake = make(chan struct{})
	}
	return g.ready, g.wake
}

// errLoginNotReady is returned once a message has waited sendWait for the
// login's XMPP session without getting one.
var errLoginNotReady = errors.New("bridge: the XMPP connection of this login is not ready")

// wait blocks until the gate is ready, ctx ends, or limit passes.
func (g *readyGate) wait(ctx context.Context, limit time.Duration) error {
	ready, wake := g.state()
	if ready {
		return nil
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case <-wake:
			if ready, wake = g.state(); ready {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("%w after waiting %s", errLoginNotReady, limit)
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", errLoginNotReady, ctx.Err())
		}
	}
}

// awaitReady is called by every Matrix → XMPP handler before it builds a
// stanza. Past network.send_wait the message fails with a notice in the
// room, never silently.
func (c *Client) awaitReady(ctx context.Context) error {
	if ready, _ := c.ready.state(); ready {
		return nil
	}
	limit := c.main.Config.sendWait()
	zerolog.Ctx(ctx).Debug().Stringer("limit", limit).Msg("Waiting for the XMPP session before sending")
	if err := c.ready.wait(ctx, limit); err != nil {
		return notReadyStatus(err, limit)
	}
	return nil
}

// errSessionLost marks a send that failed because the XMPP session went
// away under it; withSession then waits for the next session and sends
// again.
var errSessionLost = errors.New("bridge: the XMPP session was lost while sending")

// withSession runs send on a ready session: it waits for one (after a
// restart, while reconnecting) and, when the session is lost during the
// send, for the next one, in all for at most network.send_wait. The stanza
// keeps its id, so one that did get out before the loss is recognised as
// the same message. Past the bound the error is a status with a notice.
func (c *Client) withSession(ctx context.Context, send func(s *xmpp.Session) error) error {
	limit := c.main.Config.sendWait()
	deadline := time.Now().Add(limit)
	var lastErr error
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return notReadyStatus(fmt.Errorf("%w: %w", errLoginNotReady, lastErr), limit)
		}
		if err := c.ready.wait(ctx, left); err != nil {
			return notReadyStatus(err, limit)
		}
		if s := c.currentSession(); s != nil {
			err := send(s)
			if !errors.Is(err, errSessionLost) {
				return err
			}
			lastErr = err
			zerolog.Ctx(ctx).Warn().Err(err).Msg("XMPP session lost while sending, sending again on the next one")
		} else {
			lastErr = xmppclient.ErrNotConnected
		}
		// The session is going down but the gate may not know yet.
		select {
		case <-ctx.Done():
			return notReadyStatus(fmt.Errorf("%w: %w", errLoginNotReady, ctx.Err()), limit)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// notReadyStatus is the message status (with a notice in the room) of a
// message that could not be sent because the login never became ready.
func notReadyStatus(err error, limit time.Duration) error {
	return bridgev2.WrapErrorInStatus(err).
		WithStatus(event.MessageStatusRetriable).
		WithErrorReason(event.MessageStatusNetworkError).
		WithIsCertain(true).
		WithSendNotice(true).
		WithMessage(fmt.Sprintf("Not sent: the bridge could not reach your XMPP server within %s. Send it again once the bridge is connected.", limit))
}
