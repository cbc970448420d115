package xmppclient

import (
	"errors"
	"sync"
	"time"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// When a broken OMEMO session with a device is replaced: XEP-0384 leaves
// the policy to the client. A reset is a new key exchange the sender's
// client must answer, so it is rate-limited per device, and one corrupted
// (or injected) message does not cost a working session.

const (
	// SessionResetInterval rate-limits session resets per device.
	SessionResetInterval = 10 * time.Minute
	// BadMACResetThreshold is how many messages in a row from one device
	// must fail authentication before its session is replaced.
	BadMACResetThreshold = 3
	// resetStateMax bounds the per-device bookkeeping: strangers can
	// invent device ids.
	resetStateMax = 1024
)

// SessionResets is one login's record of decryption failures and session
// resets per device. The zero value is ready to use.
type SessionResets struct {
	mu      sync.Mutex
	resets  map[omemo.Address]time.Time // last session reset per device
	badMACs map[omemo.Address]int       // authentication failures in a row
}

// Due records the outcome of decrypting a message from addr (err nil: it
// decrypted) and reports whether the session with addr is to be reset now:
// for a missing session or prekey at once, for failed authentication after
// BadMACResetThreshold messages in a row; at most once per
// SessionResetInterval per device.
func (r *SessionResets) Due(addr omemo.Address, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.badMACs == nil {
		r.badMACs = map[omemo.Address]int{}
		r.resets = map[omemo.Address]time.Time{}
	}
	if !pruneResetState(r.resets, r.badMACs) {
		// Within one interval more devices failed than we keep track of:
		// a flood, not a contact with a broken session.
		return false
	}
	reset := false
	switch {
	case err == nil:
		delete(r.badMACs, addr)
	case errors.Is(err, omemo.ErrBadMAC):
		r.badMACs[addr]++
		reset = r.badMACs[addr] >= BadMACResetThreshold
	case errors.Is(err, omemo.ErrNoSession), errors.Is(err, omemo.ErrUnknownPreKey):
		reset = true
	}
	if !reset || time.Since(r.resets[addr]) < SessionResetInterval {
		return false
	}
	r.resets[addr] = time.Now()
	delete(r.badMACs, addr)
	return true
}

// pruneResetState keeps the reset bookkeeping bounded: resets older than
// the interval no longer limit anything, and past resetStateMax devices
// the failure counts start over. It reports false when the resets of the
// last interval alone fill the map.
func pruneResetState(resets map[omemo.Address]time.Time, badMACs map[omemo.Address]int) bool {
	if len(badMACs) >= resetStateMax {
		clear(badMACs)
	}
	if len(resets) < resetStateMax {
		return true
	}
	for a, at := range resets {
		if time.Since(at) >= SessionResetInterval {
			delete(resets, a)
		}
	}
	return len(resets) < resetStateMax
}
