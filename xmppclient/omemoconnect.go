package xmppclient

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// connectOMEMO prepares the login's device on a fresh session s: its keys
// maintained under the ratchet lock (a signed prekey rotation is due on
// reconnects too), the session's OMEMO client made, and the device
// announced: bundles published before our id is added to both device
// lists. It runs before the initial presence, so that the device-list
// notifications the presence triggers find the client ready.
//
// It returns the session's client (nil with err when it cannot be made)
// and announceErr when the announcement failed: one version may be up, so
// the caller keeps going with the client and retries (retryAnnounce). A
// failed key maintenance is logged only: the keys in place still work.
func connectOMEMO(ctx context.Context, r *ratchetLock, m *omemo.Manager, store omemo.Store, s *xmpp.Session, opts omemoxmpp.Options) (oc *omemoxmpp.Client, announceErr, err error) {
	if err := r.Setup(ctx, m); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to maintain OMEMO keys")
	}
	oc, err = omemoxmpp.NewSession(m, store, s, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to start OMEMO client: %w", err)
	}
	// Not under the ratchet lock: publishing waits on the server. A prekey
	// used meanwhile makes the decryption queue a republish.
	return oc, oc.Announce(ctx), nil
}

// RestoreOwnList handles a notification of our own account's device list:
// when our device is missing from it (another client of the account
// published it without us), the list is published again with it. It
// publishes, so it runs in the OMEMO work queue, not in the incoming loop.
func RestoreOwnList(ctx context.Context, oc *omemoxmpp.Client, upd *omemoxmpp.DeviceListUpdate) (republished bool, err error) {
	return oc.HandleDeviceListUpdate(ctx, upd)
}
