package omemo

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"
)

// Key maintenance: the signed prekey's rotation and the one-time prekeys'
// refill. A key's id is reserved (the identity stored with the next id)
// before the key itself is stored, so a maintenance step cut short (a killed
// process, a failed write outside a transaction) leaves a gap in the ids,
// never one id for two keys: a bundle published before the cut names keys
// we still hold as they were, or no longer hold at all. (The store's
// upserts would otherwise replace a published key under its id, and a
// peer's key exchange on it fail as a bad MAC.)

// maintainSignedPreKeys rotates the signed prekey when due and drops
// replaced ones after the grace period.
func (m *Manager) maintainSignedPreKeys(ctx context.Context) error {
	spks, err := m.store.SignedPreKeys(ctx)
	if err != nil {
		return fmt.Errorf("failed to load signed prekeys: %w", err)
	}
	// A signed prekey our identity did not sign (left by an older setup
	// killed before it stored the identity that signed it) is refused by
	// every peer: it is replaced now rather than at the next rotation.
	ours := make([]SignedPreKey, 0, len(spks))
	for _, k := range spks {
		// Past every id in the store even if the identity says otherwise.
		m.identity.NextSignedPreKeyID = max(m.identity.NextSignedPreKeyID, k.ID+1)
		if ed25519Verify(m.keys.edPub[:], k.Public, k.SignatureV2) {
			ours = append(ours, k)
		} else if err := m.store.RemoveSignedPreKey(ctx, k.ID); err != nil {
			return fmt.Errorf("failed to remove a signed prekey of another identity: %w", err)
		}
	}
	spks = ours
	now := m.opts.Now()
	slices.SortFunc(spks, func(a, b SignedPreKey) int { return int(a.Created - b.Created) })
	if len(spks) == 0 || now.Sub(time.Unix(spks[len(spks)-1].Created, 0)) >= m.opts.SignedPreKeyRotation {
		spk, err := m.newSignedPreKey(now)
		if err != nil {
			return err
		}
		if err := m.store.PutIdentity(ctx, m.identity); err != nil {
			return fmt.Errorf("failed to store identity: %w", err)
		}
		if err := m.store.PutSignedPreKey(ctx, spk); err != nil {
			return fmt.Errorf("failed to store signed prekey: %w", err)
		}
		spks = append(spks, *spk)
	}
	// A replaced key stays for the grace period after its successor appeared.
	for i := 0; i < len(spks)-1; i++ {
		if now.Sub(time.Unix(spks[i+1].Created, 0)) > m.opts.SignedPreKeyGrace {
			if err := m.store.RemoveSignedPreKey(ctx, spks[i].ID); err != nil {
				return fmt.Errorf("failed to remove signed prekey: %w", err)
			}
		}
	}
	return nil
}

// newSignedPreKey makes the next signed prekey and moves the identity's
// next id past it; the caller stores the identity before the key.
func (m *Manager) newSignedPreKey(now time.Time) (*SignedPreKey, error) {
	kp, err := generateKeyPair(m.opts.Rand)
	if err != nil {
		return nil, err
	}
	sig03, err := m.keys.sign03(typed33(kp.pub[:]), m.opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("failed to sign prekey: %w", err)
	}
	spk := &SignedPreKey{
		ID:           m.identity.NextSignedPreKeyID,
		Private:      bytes.Clone(kp.priv[:]),
		Public:       bytes.Clone(kp.pub[:]),
		SignatureV03: sig03,
		SignatureV2:  m.keys.sign2(kp.pub[:]),
		Created:      now.Unix(),
	}
	m.identity.NextSignedPreKeyID++
	return spk, nil
}

// refillPreKeys tops the one-time prekeys up to opts.PreKeys, storing the
// identity with the ids it reserved first, and reports whether it generated
// any.
func (m *Manager) refillPreKeys(ctx context.Context) (bool, error) {
	pks, err := m.store.PreKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("failed to load prekeys: %w", err)
	}
	missing := m.opts.PreKeys - len(pks)
	if missing <= 0 {
		return false, nil
	}
	// Past every id in the store even if the identity says otherwise (keys
	// left by an older setup killed before it stored its identity).
	for _, k := range pks {
		m.identity.NextPreKeyID = max(m.identity.NextPreKeyID, k.ID+1)
	}
	fresh := make([]PreKey, 0, missing)
	for range missing {
		kp, err := generateKeyPair(m.opts.Rand)
		if err != nil {
			return false, err
		}
		fresh = append(fresh, PreKey{ID: m.identity.NextPreKeyID, Private: bytes.Clone(kp.priv[:]), Public: bytes.Clone(kp.pub[:])})
		m.identity.NextPreKeyID++
	}
	if err := m.store.PutIdentity(ctx, m.identity); err != nil {
		return false, fmt.Errorf("failed to store identity: %w", err)
	}
	if err := m.store.PutPreKeys(ctx, fresh); err != nil {
		return false, fmt.Errorf("failed to store prekeys: %w", err)
	}
	return true, nil
}
