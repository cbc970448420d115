package omemo

import (
	"context"
	"fmt"
)

// SessionIdentityKey returns the identity key (Curve25519 form) of the
// current session with addr for v: the key actually in use with that
// device, which is what a trust decision must name when the device id has
// been seen with more than one key. Nil without a session.
func (m *Manager) SessionIdentityKey(ctx context.Context, v Version, addr Address) ([]byte, error) {
	raw, err := m.store.Session(ctx, v, addr)
	if err != nil {
		return nil, fmt.Errorf("failed to load session with %s: %w", addr, err)
	}
	if raw == nil {
		return nil, nil
	}
	rec, err := parseRecord(raw)
	if err != nil || len(rec.sessions) == 0 {
		return nil, err
	}
	s, err := unmarshalSession(rec.sessions[0])
	if err != nil {
		return nil, err
	}
	return CurveIdentityKey(v, s.theirIK[:])
}
