package sm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp"
)

// Run asks the server for acknowledgements on s while stanzas wait for
// one: after AckEvery stanzas, and every AckInterval. Its ticker runs only
// while stanzas wait, so an idle session is not woken. It returns when ctx
// ends or a request cannot be written, and with untilIdle once a tick finds
// no stanza waiting (Start's runner).
func (m *Manager) Run(ctx context.Context, s *xmpp.Session, untilIdle bool) error {
	if m == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(m.opts.AckInterval)
	defer t.Stop()
	armed := true
	for {
		woken := false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.kick:
		case <-m.wake:
			woken = true
		case <-t.C:
		}
		if w := m.waiting(); w != armed || (untilIdle && !w) {
			if !w && untilIdle {
				return nil
			}
			if w {
				t.Reset(m.opts.AckInterval)
			} else {
				t.Stop()
			}
			armed = w
		}
		if m.ackOverdue(time.Now()) {
			return m.failConn(fmt.Errorf("%w (%v)", ErrAckTimeout, m.opts.AckTimeout))
		}
		// A wake only arms the ticker: the first stanza after a quiet
		// spell is asked about at the next tick, as before.
		if woken || !m.needRequest(time.Now()) {
			continue
		}
		m.requesting(time.Now())
		sendCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Send(sendCtx, Req{}.TokenReader())
		cancel()
		if err != nil {
			return fmt.Errorf("failed to request an acknowledgement: %w", err)
		}
	}
}

// Start does Run's work for s until ctx ends, on a goroutine that exists
// only while stanzas wait for an acknowledgement: an idle session holds
// none. It returns at once.
func (m *Manager) Start(ctx context.Context, s *xmpp.Session) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.runCtx, m.runS = ctx, s
	m.mu.Unlock()
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		if m.runCtx == ctx {
			m.runCtx, m.runS = nil, nil
		}
		m.mu.Unlock()
	})
	m.startRunner()
}

// startRunner makes sure Start's runner is up; it may be called with mu
// held (it takes it only on the new goroutine).
func (m *Manager) startRunner() {
	if !m.running.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for {
			ctx, s := m.runner()
			var err error
			if ctx != nil && m.waiting() {
				err = m.Run(ctx, s, true)
			}
			m.running.Store(false)
			if err != nil && ctx.Err() == nil {
				return // the session is broken; it is being replaced
			}
			// A stanza queued between Run's last look and the Store found
			// the runner up and did not start one: take it here.
			if ctx, _ = m.runner(); ctx == nil || !m.waiting() || !m.running.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

func (m *Manager) runner() (context.Context, *xmpp.Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runCtx == nil || m.runCtx.Err() != nil {
		return nil, nil
	}
	return m.runCtx, m.runS
}

// waiting reports whether stanzas wait for an acknowledgement.
func (m *Manager) waiting() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.outOn && len(m.q.items) > 0
}

// ErrAckTimeout: the server left a request for an acknowledgement
// unanswered for Options.AckTimeout; the connection was closed.
var ErrAckTimeout = errors.New("sm: no acknowledgement from the server")

// ackOverdue reports whether a request has waited longer than AckTimeout.
func (m *Manager) ackOverdue(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.outOn && !m.reqOpen.IsZero() && now.Sub(m.reqOpen) >= m.opts.AckTimeout
}

// failConn closes the current connection so that its reads fail with err
// (the session's Serve returns it, and its owner redials).
func (m *Manager) failConn(err error) error {
	m.mu.Lock()
	c := m.conn
	m.mu.Unlock()
	if c != nil {
		c.fail(err)
	}
	return err
}

// requesting records a request as outstanding before it is written: the
// server's <a/> can be read before the writer has seen the end of its
// <r/> (loopback, a fast server), and a request recorded then would stay
// "outstanding" with its answer already in, so no other went out for
// AckInterval while every waiter waited (Matrix → XMPP stalled by 10 s
// at a time in the sink benchmark).
func (m *Manager) requesting(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reqSent, m.sinceReq = now, 0
	if m.reqOpen.IsZero() {
		m.reqOpen = now
	}
}

func (m *Manager) needRequest(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.outOn || len(m.q.items) == 0 {
		return false
	}
	return m.reqSent.IsZero() || now.Sub(m.reqSent) >= m.opts.AckInterval
}
