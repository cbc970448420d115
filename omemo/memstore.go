package omemo

import (
	"bytes"
	"context"
	"slices"
	"sync"
)

// MemoryStore is an in-memory Store for tests. It is safe for concurrent use.
// What its getters return is its own storage, never written afterwards:
// callers must not modify it.
type MemoryStore struct {
	mu            sync.Mutex
	identity      *Identity
	preKeys       map[uint32]PreKey
	signedPreKeys map[uint32]SignedPreKey
	sessions      map[sessionKey]*memSession
	deviceLists   map[deviceListKey][]Device
	trust         map[string][]TrustRecord
	baseKeys      baseKeyMem
	// The session and trust entries used last: a chat's next message finds
	// them without hashing its key again.
	lastKey   sessionKey
	lastEntry *memSession
	lastJID   string
	lastTrust []TrustRecord
	hasTrust  bool
}

// memSession is one stored session record. Once Session handed rec out it
// is never written again (a caller may keep it); until then PutSession
// overwrites it in place, so a Manager that checks its cached record with
// SessionMatches and never asks for a copy costs no allocation per message.
type memSession struct {
	rec  []byte
	lent bool
}

type sessionKey struct {
	v    Version
	addr Address
}

type deviceListKey struct {
	v   Version
	jid string
}

var (
	_ Store          = (*MemoryStore)(nil)
	_ SessionMatcher = (*MemoryStore)(nil)
	_ SessionChecker = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		preKeys:       make(map[uint32]PreKey),
		signedPreKeys: make(map[uint32]SignedPreKey),
		sessions:      make(map[sessionKey]*memSession),
		deviceLists:   make(map[deviceListKey][]Device),
		trust:         make(map[string][]TrustRecord),
	}
}

func (s *MemoryStore) Identity(context.Context) (*Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.identity == nil {
		return nil, nil
	}
	id := *s.identity
	id.PrivateKey = bytes.Clone(id.PrivateKey)
	return &id, nil
}

func (s *MemoryStore) PutIdentity(_ context.Context, id *Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *id
	c.PrivateKey = bytes.Clone(id.PrivateKey)
	s.identity = &c
	return nil
}

func (s *MemoryStore) PreKey(_ context.Context, id uint32) (*PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.preKeys[id]
	if !ok {
		return nil, nil
	}
	return &k, nil
}

func (s *MemoryStore) PreKeys(context.Context) ([]PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PreKey, 0, len(s.preKeys))
	for _, k := range s.preKeys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b PreKey) int { return int(int64(a.ID) - int64(b.ID)) })
	return out, nil
}

func (s *MemoryStore) PutPreKeys(_ context.Context, keys []PreKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		k.Private = bytes.Clone(k.Private)
		k.Public = bytes.Clone(k.Public)
		s.preKeys[k.ID] = k
	}
	return nil
}

func (s *MemoryStore) RemovePreKey(_ context.Context, id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.preKeys, id)
	return nil
}

func (s *MemoryStore) SignedPreKey(_ context.Context, id uint32) (*SignedPreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.signedPreKeys[id]
	if !ok {
		return nil, nil
	}
	return &k, nil
}

func (s *MemoryStore) SignedPreKeys(context.Context) ([]SignedPreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SignedPreKey, 0, len(s.signedPreKeys))
	for _, k := range s.signedPreKeys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b SignedPreKey) int { return int(int64(a.ID) - int64(b.ID)) })
	return out, nil
}

func (s *MemoryStore) PutSignedPreKey(_ context.Context, k *SignedPreKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *k
	c.Private = bytes.Clone(k.Private)
	c.Public = bytes.Clone(k.Public)
	c.SignatureV03 = bytes.Clone(k.SignatureV03)
	c.SignatureV2 = bytes.Clone(k.SignatureV2)
	s.signedPreKeys[k.ID] = c
	return nil
}

func (s *MemoryStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.signedPreKeys, id)
	return nil
}

// session returns the entry of k, nil if none.
func (s *MemoryStore) session(k sessionKey) *memSession {
	if s.lastEntry != nil && s.lastKey == k {
		return s.lastEntry
	}
	e := s.sessions[k]
	if e != nil {
		s.lastKey, s.lastEntry = k, e
	}
	return e
}

func (s *MemoryStore) Session(_ context.Context, v Version, addr Address) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.session(sessionKey{v, addr})
	if e == nil {
		return nil, nil
	}
	e.lent = true
	return e.rec, nil
}

// SessionMatches implements SessionMatcher.
func (s *MemoryStore) SessionMatches(_ context.Context, v Version, addr Address, record []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.session(sessionKey{v, addr})
	return e != nil && bytes.Equal(e.rec, record), nil
}

// HasSession implements SessionChecker.
func (s *MemoryStore) HasSession(_ context.Context, v Version, addr Address) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.session(sessionKey{v, addr}) != nil, nil
}

func (s *MemoryStore) PutSession(_ context.Context, v Version, addr Address, record []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey{v, addr}
	if e := s.session(k); e != nil && !e.lent && cap(e.rec) >= len(record) {
		e.rec = append(e.rec[:0], record...)
		return nil
	}
	e := &memSession{rec: bytes.Clone(record)}
	s.sessions[k] = e
	s.lastKey, s.lastEntry = k, e
	return nil
}

func (s *MemoryStore) RemoveSession(_ context.Context, v Version, addr Address) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey{v, addr}
	if s.lastKey == k {
		s.lastEntry = nil
	}
	delete(s.sessions, k)
	return nil
}

func (s *MemoryStore) DeviceList(_ context.Context, v Version, jid string) ([]Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deviceLists[deviceListKey{v, jid}]), nil
}

func (s *MemoryStore) PutDeviceList(_ context.Context, v Version, jid string, devices []Device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deviceLists[deviceListKey{v, jid}] = slices.Clone(devices)
	return nil
}

// TrustRecords returns the store's own slice, capped: PutTrust never
// writes into a slice it handed out (it builds a new one), so the caller's
// copy stays as it was.
func (s *MemoryStore) TrustRecords(_ context.Context, jid string) ([]TrustRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasTrust || s.lastJID != jid {
		s.lastJID, s.lastTrust, s.hasTrust = jid, slices.Clip(s.trust[jid]), true
	}
	return s.lastTrust, nil
}

func (s *MemoryStore) PutTrust(_ context.Context, rec TrustRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.IdentityKey = bytes.Clone(rec.IdentityKey)
	s.hasTrust = false
	recs := s.trust[rec.JID]
	for i := range recs {
		if recs[i].Device == rec.Device && bytes.Equal(recs[i].IdentityKey, rec.IdentityKey) {
			recs = slices.Clone(recs)
			recs[i] = rec
			s.trust[rec.JID] = recs
			return nil
		}
	}
	// Appending to the clipped slice always copies it.
	s.trust[rec.JID] = append(slices.Clip(recs), rec)
	return nil
}
