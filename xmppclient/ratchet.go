package xmppclient

import (
	"context"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// ratchetLock serialises one login's OMEMO ratchet work; its lock is held here
// and nowhere else. Decryption takes it and then opens the caller's
// database transaction (which on SQLite holds the write lock); encryption,
// resets, heartbeats and key maintenance take it and then write. With one
// order for all, a send and a receive cannot wait on each other until the
// busy timeout. Network work (device lists, bundles) happens before,
// outside the lock, so that a contact's server that does not answer delays
// its own chat only.
type ratchetLock struct {
	op sync.Mutex
	// ObserveEncrypt, if set, is told how long each encryption held the
	// lock.
	ObserveEncrypt func(time.Duration)
}

// Encrypt encrypts body for the devices p prepared (fetched without the
// lock).
func (r *ratchetLock) Encrypt(ctx context.Context, oc *omemoxmpp.Client, p *omemoxmpp.Prepared, body string) (*omemoxmpp.Outgoing, error) {
	r.op.Lock()
	defer r.op.Unlock()
	start := time.Now()
	out, err := oc.EncryptPrepared(ctx, p, body)
	if r.ObserveEncrypt != nil {
		r.ObserveEncrypt(time.Since(start))
	}
	return out, err
}

// Reset makes the key exchange that replaces the session with a device:
// its bundle fetched without the lock, the new session made with it.
func (r *ratchetLock) Reset(ctx context.Context, oc *omemoxmpp.Client, peer jid.JID, device uint32, v omemo.Version) (*omemoxmpp.Outgoing, error) {
	b, err := oc.FetchBundle(ctx, peer, device, v)
	if err != nil {
		return nil, err
	}
	r.op.Lock()
	defer r.op.Unlock()
	return oc.ResetWith(ctx, peer, device, v, b)
}

// Heartbeat is an empty OMEMO message to a device, moving its ratchet on.
func (r *ratchetLock) Heartbeat(ctx context.Context, oc *omemoxmpp.Client, peer jid.JID, device uint32, v omemo.Version) (*omemoxmpp.Outgoing, error) {
	r.op.Lock()
	defer r.op.Unlock()
	return oc.Heartbeat(ctx, peer, device, v)
}

// Setup runs the engine's key maintenance (prekeys, signed prekey).
func (r *ratchetLock) Setup(ctx context.Context, m *omemo.Manager) error {
	r.op.Lock()
	defer r.op.Unlock()
	return m.Setup(ctx)
}
