package omemo

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// A key exchange message carries the sender's ephemeral base key. The
// session it starts is recognised by that key as long as the session is in
// the record (current or one of the archived ones), so a repeated key
// exchange is decrypted with the existing session instead of starting a
// new one. Once the session is gone (deleted by a reset, or pushed out by
// newer ones), a key exchange that used no one-time prekey could be
// replayed and would start a session and decrypt again. A Store that also
// implements BaseKeyStore keeps the base keys that started sessions, per
// address, for as long as the signed prekey they used can be alive; such
// a key exchange is then refused as a duplicate.

// BaseKeyStore is optionally implemented by a Store.
type BaseKeyStore interface {
	// SeenBaseKey reports whether baseKey started a session with addr.
	SeenBaseKey(ctx context.Context, v Version, addr Address, baseKey []byte) (bool, error)
	// PutBaseKey records that baseKey started a session with addr at at.
	PutBaseKey(ctx context.Context, v Version, addr Address, baseKey []byte, at time.Time) error
	// PruneBaseKeys forgets base keys recorded before before.
	PruneBaseKeys(ctx context.Context, before time.Time) error
}

// baseKeyRetention is how long a base key is kept: a key exchange names a
// signed prekey, which is used for SignedPreKeyRotation and kept for
// SignedPreKeyGrace after that.
func (m *Manager) baseKeyRetention() time.Duration {
	return m.opts.SignedPreKeyRotation + m.opts.SignedPreKeyGrace
}

// seenBaseKey reports whether a key exchange's base key started a session
// with addr that is no longer in the record.
func (m *Manager) seenBaseKey(ctx context.Context, v Version, addr Address, baseKey []byte) error {
	bs, ok := m.store.(BaseKeyStore)
	if !ok {
		return nil
	}
	seen, err := bs.SeenBaseKey(ctx, v, addr, baseKey)
	if err != nil {
		return fmt.Errorf("failed to look up base key: %w", err)
	}
	if seen {
		return fmt.Errorf("%w: key exchange from %s already started a session", ErrDuplicate, addr)
	}
	return nil
}

// putBaseKey records the base key of a session just started.
func (m *Manager) putBaseKey(ctx context.Context, v Version, addr Address, baseKey []byte) error {
	bs, ok := m.store.(BaseKeyStore)
	if !ok {
		return nil
	}
	if err := bs.PutBaseKey(ctx, v, addr, baseKey, m.opts.Now()); err != nil {
		return fmt.Errorf("failed to store base key: %w", err)
	}
	return nil
}

// pruneBaseKeys forgets base keys past the retention.
func (m *Manager) pruneBaseKeys(ctx context.Context) error {
	bs, ok := m.store.(BaseKeyStore)
	if !ok {
		return nil
	}
	if err := bs.PruneBaseKeys(ctx, m.opts.Now().Add(-m.baseKeyRetention())); err != nil {
		return fmt.Errorf("failed to prune base keys: %w", err)
	}
	return nil
}

// baseKeyMem is MemoryStore's BaseKeyStore part.
type baseKeyMem struct {
	mu   sync.Mutex
	seen map[baseKeyKey]time.Time
}

type baseKeyKey struct {
	v    Version
	addr Address
	key  string
}

var _ BaseKeyStore = (*MemoryStore)(nil)

// SeenBaseKey implements BaseKeyStore.
func (s *MemoryStore) SeenBaseKey(_ context.Context, v Version, addr Address, baseKey []byte) (bool, error) {
	s.baseKeys.mu.Lock()
	defer s.baseKeys.mu.Unlock()
	_, ok := s.baseKeys.seen[baseKeyKey{v, addr, string(baseKey)}]
	return ok, nil
}

// PutBaseKey implements BaseKeyStore.
func (s *MemoryStore) PutBaseKey(_ context.Context, v Version, addr Address, baseKey []byte, at time.Time) error {
	s.baseKeys.mu.Lock()
	defer s.baseKeys.mu.Unlock()
	if s.baseKeys.seen == nil {
		s.baseKeys.seen = map[baseKeyKey]time.Time{}
	}
	s.baseKeys.seen[baseKeyKey{v, addr, string(baseKey)}] = at
	return nil
}

// PruneBaseKeys implements BaseKeyStore.
func (s *MemoryStore) PruneBaseKeys(_ context.Context, before time.Time) error {
	s.baseKeys.mu.Lock()
	defer s.baseKeys.mu.Unlock()
	for k, at := range s.baseKeys.seen {
		if at.Before(before) {
			delete(s.baseKeys.seen, k)
		}
	}
	return nil
}
