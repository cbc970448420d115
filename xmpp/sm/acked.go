package sm

import (
	"context"
	"errors"
)

// Knowing that the server has a stanza. A stanza written to the socket is
// not yet the server's: when the process dies, what the server had not
// read yet is gone with the connection (the kernel resets it), and an
// application that recorded "sent" at the write has lost the message for
// good. The server's acknowledgement (its h counting the stanza) says it
// was handled. Written marks the stanzas written so far; WaitAcked
// returns once the server has acknowledged them.

// ErrStreamEnded: the stream of a Mark ended before the server
// acknowledged it; its unacknowledged stanzas went to TakeLost (or were
// resent by a resumption, which keeps the Mark valid).
var ErrStreamEnded = errors.New("sm: the stream ended before the server acknowledged the stanza")

// Mark is a point in the outbound count of one stream.
type Mark struct {
	epoch uint64
	h     uint32
}

// Written marks every stanza written so far; ok is false when stream
// management is not on (there is nothing to wait for then).
func (m *Manager) Written() (mk Mark, ok bool) {
	if m == nil {
		return Mark{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return Mark{epoch: m.epoch, h: m.q.sent()}, m.outOn
}

// WaitAcked returns nil once the server has acknowledged the stanzas up
// to mk, asking it for an acknowledgement (through Run) while they wait;
// ErrStreamEnded when their stream ended without one, or ctx's error.
func (m *Manager) WaitAcked(ctx context.Context, mk Mark) error {
	for {
		m.mu.Lock()
		if m.epoch != mk.epoch {
			m.mu.Unlock()
			return ErrStreamEnded
		}
		// Acknowledged: the server's count has reached mk.h (modulo
		// 2^32). During a resumption the queue is briefly empty with
		// the stanzas to resend not yet pushed again; they are waited for.
		if since(mk.h, m.q.acked) < 1<<31 {
			m.mu.Unlock()
			return nil
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case m.kick <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
