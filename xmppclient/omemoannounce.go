package xmppclient

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// The OMEMO work of one login's client that needs the network besides
// encryption and decryption: announcing the device (again after a failure,
// and daily with the key maintenance), and the key transport messages a
// decryption asks for (session resets, heartbeats). The ratchet steps among
// them run under the login's ratchetLock lock; fetches and sends do not.

// AnnounceRetryDelays are the waits between announcement attempts while a
// session lasts; the last one repeats.
var AnnounceRetryDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// retryAnnounce announces oc's device again, with growing waits, while
// current reports that oc's session is still the login's and until an
// announcement succeeds. Each attempt's outcome goes to tried (the
// connector's bridge state and logs). Publishing waits on the server, so it
// is not done under the ratchet lock.
func retryAnnounce(ctx context.Context, oc *omemoxmpp.Client, current func() bool, tried func(error)) {
	for attempt := 0; ; attempt++ {
		delay := AnnounceRetryDelays[min(attempt, len(AnnounceRetryDelays)-1)]
		if !Sleep(ctx, delay) || !current() {
			return
		}
		stepCtx, cancel := context.WithTimeout(ctx, time.Minute)
		err := oc.Announce(stepCtx)
		cancel()
		if !current() {
			return
		}
		tried(err)
		if err == nil {
			return
		}
	}
}

// maintainKeys runs the engine's key maintenance (a signed prekey rotation
// when due) under the ratchet lock, then announces the device again, which
// publishes the new bundle.
func maintainKeys(ctx context.Context, r *ratchetLock, m *omemo.Manager, oc *omemoxmpp.Client) error {
	if err := r.Setup(ctx, m); err != nil {
		return err
	}
	return oc.Announce(ctx)
}

// sendReset replaces the session with peer's device (ratchetLock.Reset: its
// bundle fetched without the lock) and sends the key exchange with send.
func sendReset(ctx context.Context, r *ratchetLock, oc *omemoxmpp.Client, send func(context.Context, Signal) error, peer jid.JID, device uint32, v omemo.Version) error {
	out, err := r.Reset(ctx, oc, peer, device, v)
	if err != nil {
		return err
	}
	return send(ctx, Signal{To: peer, KeyTransport: out})
}

// sendHeartbeat sends peer's device an empty OMEMO message
// (ratchetLock.Heartbeat), moving its ratchet on.
func sendHeartbeat(ctx context.Context, r *ratchetLock, oc *omemoxmpp.Client, send func(context.Context, Signal) error, peer jid.JID, device uint32, v omemo.Version) error {
	out, err := r.Heartbeat(ctx, oc, peer, device, v)
	if err != nil {
		return err
	}
	return send(ctx, Signal{To: peer, KeyTransport: out})
}
