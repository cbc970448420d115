package omemo

import (
	"bytes"
	"context"
	"slices"
	"sync"
)

// MemoryStore is an in-memory Store for tests. It is safe for concurrent use.
type MemoryStore struct {
	mu            sync.Mutex
	identity      *Identity
	preKeys       map[uint32]PreKey
	signedPreKeys map[uint32]SignedPreKey
	sessions      map[sessionKey][]byte
	deviceLists   map[deviceListKey][]Device
	trust         map[string][]TrustRecord
	baseKeys      baseKeyMem
}

type sessionKey struct {
	v    Version
	addr Address
}

type deviceListKey struct {
	v   Version
	jid string
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		preKeys:       make(map[uint32]PreKey),
		signedPreKeys: make(map[uint32]SignedPreKey),
		sessions:      make(map[sessionKey][]byte),
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

func (s *MemoryStore) Session(_ context.Context, v Version, addr Address) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sessionKey{v, addr}], nil
}

func (s *MemoryStore) PutSession(_ context.Context, v Version, addr Address, record []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[sessionKey{v, addr}] = bytes.Clone(record)
	return nil
}

func (s *MemoryStore) RemoveSession(_ context.Context, v Version, addr Address) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sessionKey{v, addr})
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

func (s *MemoryStore) TrustRecords(_ context.Context, jid string) ([]TrustRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.trust[jid]), nil
}

func (s *MemoryStore) PutTrust(_ context.Context, rec TrustRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.IdentityKey = bytes.Clone(rec.IdentityKey)
	recs := s.trust[rec.JID]
	for i := range recs {
		if recs[i].Device == rec.Device && bytes.Equal(recs[i].IdentityKey, rec.IdentityKey) {
			recs[i] = rec
			return nil
		}
	}
	s.trust[rec.JID] = append(recs, rec)
	return nil
}
