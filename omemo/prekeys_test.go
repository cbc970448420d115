package omemo

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

var errCut = errors.New("test: process killed here")

// cutStore is a Store whose writes stop at the cut-th one from when it is
// armed (as when the process is killed there, outside a transaction), and
// which remembers every public key ever stored under each prekey and signed
// prekey id.
type cutStore struct {
	*MemoryStore
	t      *testing.T
	cut    int // 0: not armed
	writes int
	pks    map[uint32][]byte
	spks   map[uint32][]byte
}

func (s *cutStore) write() error {
	if s.cut == 0 {
		return nil
	}
	s.writes++
	if s.writes >= s.cut {
		return errCut
	}
	return nil
}

func (s *cutStore) remember(kind string, ids map[uint32][]byte, id uint32, pub []byte) {
	if old, ok := ids[id]; ok && !bytes.Equal(old, pub) {
		s.t.Errorf("%s id %d stored again with another key", kind, id)
	}
	ids[id] = bytes.Clone(pub)
}

func (s *cutStore) PutIdentity(ctx context.Context, id *Identity) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.MemoryStore.PutIdentity(ctx, id)
}

func (s *cutStore) PutPreKeys(ctx context.Context, keys []PreKey) error {
	if err := s.write(); err != nil {
		return err
	}
	for _, k := range keys {
		s.remember("prekey", s.pks, k.ID, k.Public)
	}
	return s.MemoryStore.PutPreKeys(ctx, keys)
}

func (s *cutStore) RemovePreKey(ctx context.Context, id uint32) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.MemoryStore.RemovePreKey(ctx, id)
}

func (s *cutStore) PutSignedPreKey(ctx context.Context, k *SignedPreKey) error {
	if err := s.write(); err != nil {
		return err
	}
	s.remember("signed prekey", s.spks, k.ID, k.Public)
	return s.MemoryStore.PutSignedPreKey(ctx, k)
}

func (s *cutStore) RemoveSignedPreKey(ctx context.Context, id uint32) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.MemoryStore.RemoveSignedPreKey(ctx, id)
}

func (s *cutStore) PutSession(ctx context.Context, v Version, addr Address, rec []byte) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.MemoryStore.PutSession(ctx, v, addr, rec)
}

func (s *cutStore) PutTrust(ctx context.Context, rec TrustRecord) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.MemoryStore.PutTrust(ctx, rec)
}

// Key maintenance killed after any of its writes, then started again on
// what it left: the bundle we publish verifies, and no prekey or signed
// prekey id ever names two keys, through the next rotation and key
// exchanges too (a peer holding a bundle from before the kill would
// otherwise build a session on a key we replaced, which fails as a bad MAC).
func TestKeyMaintenanceKilled(t *testing.T) {
	const bob = "bob@example.org"
	for _, tc := range []struct {
		name string
		// before brings the store to the step; step is what gets killed.
		before func(t *testing.T, m *Manager, a *peer) *Encrypted
		step   func(m *Manager, now *time.Time, enc *Encrypted) error
	}{
		{"first setup", nil, func(m *Manager, _ *time.Time, _ *Encrypted) error {
			return m.Setup(context.Background())
		}},
		{"rotation", func(t *testing.T, m *Manager, _ *peer) *Encrypted {
			if err := m.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
			return nil
		}, func(m *Manager, now *time.Time, _ *Encrypted) error {
			*now = now.Add(8 * 24 * time.Hour)
			return m.Setup(context.Background())
		}},
		{"key exchange", func(t *testing.T, m *Manager, a *peer) *Encrypted {
			if err := m.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
			b := &peer{m: m, jid: bob}
			return send(t, a, b, V2, "hi", true)
		}, func(m *Manager, _ *time.Time, enc *Encrypted) error {
			_, err := m.Decrypt(context.Background(), enc, "alice@example.org")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for cut := 1; ; cut++ {
				now := time.Unix(1_800_000_000, 0)
				clock := func() time.Time { return now }
				s := &cutStore{MemoryStore: NewMemoryStore(), t: t, pks: map[uint32][]byte{}, spks: map[uint32][]byte{}}
				a := newPeer(t, "alice@example.org", Options{})
				m := NewManager(s, bob, Options{Now: clock})
				var enc *Encrypted
				if tc.before != nil {
					enc = tc.before(t, m, a)
				}
				s.cut = cut
				err := tc.step(m, &now, enc)
				if err != nil && !errors.Is(err, errCut) {
					t.Fatalf("cut at write %d: %v", cut, err)
				}
				s.cut = 0
				if err == nil {
					if cut == 1 {
						t.Fatal("the step wrote nothing")
					}
					return
				}

				// Started again at once, then a week later (a rotation), then
				// key exchanges.
				again := NewManager(s, bob, Options{Now: clock})
				if err := again.Setup(context.Background()); err != nil {
					t.Fatalf("cut at write %d: Setup after: %v", cut, err)
				}
				b := &peer{m: again, s: s.MemoryStore, jid: bob}
				for _, v := range []Version{V03, V2} {
					if err := verifyBundle(b.bundle(t, v)); err != nil {
						t.Fatalf("cut at write %d: our %v bundle: %v", cut, v, err)
					}
				}
				now = now.Add(8 * 24 * time.Hour)
				if err := again.Setup(context.Background()); err != nil {
					t.Fatalf("cut at write %d: rotation after: %v", cut, err)
				}
				for _, v := range []Version{V03, V2} {
					c := newPeer(t, "carol@example.org", Options{})
					if d := recv(t, b, c, send(t, c, b, v, "after", true)); string(d.Plaintext) != "after" || !d.PreKeyConsumed {
						t.Fatalf("cut at write %d: %v key exchange after: %+v", cut, v, d)
					}
				}
				if t.Failed() {
					t.Fatalf("cut at write %d", cut)
				}
			}
		})
	}
}

// A store an older version left with keys but no identity (its first setup
// killed in between): the new identity replaces the signed prekey the lost
// one signed at once, and numbers new keys past the ones it found, which
// stay as they were.
func TestSetupAfterLostIdentity(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	if err := NewManager(s, "bob@example.org", Options{}).Setup(ctx); err != nil {
		t.Fatal(err)
	}
	left, _ := s.PreKeys(ctx)
	lost, _ := s.SignedPreKeys(ctx)
	s.identity = nil

	m := NewManager(s, "bob@example.org", Options{})
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	b := &peer{m: m, s: s, jid: "bob@example.org"}
	for _, v := range []Version{V03, V2} {
		bundle := b.bundle(t, v)
		if err := verifyBundle(bundle); err != nil {
			t.Fatalf("%v bundle after a lost identity: %v", v, err)
		}
		if bundle.SignedPreKeyID == lost[0].ID {
			t.Errorf("%v bundle names the lost identity's signed prekey id %d", v, lost[0].ID)
		}
		a := newPeer(t, "alice@example.org", Options{})
		if d := recv(t, b, a, send(t, a, b, v, "hi", true)); string(d.Plaintext) != "hi" {
			t.Fatalf("%v: got %q", v, d.Plaintext)
		}
	}
	if k, _ := s.SignedPreKey(ctx, lost[0].ID); k != nil {
		t.Error("the lost identity's signed prekey kept")
	}
	now, _ := s.PreKeys(ctx)
	kept := map[uint32][]byte{}
	for _, k := range now {
		kept[k.ID] = k.Public
	}
	for _, k := range left {
		if pub, ok := kept[k.ID]; ok && !bytes.Equal(pub, k.Public) {
			t.Errorf("prekey %d replaced under its id", k.ID)
		}
	}
	if len(now) != DefaultPreKeys {
		t.Errorf("%d prekeys, want %d", len(now), DefaultPreKeys)
	}
}

// TestPreKeyIDsAfterLostIdentity: a new identity made beside the prekeys a
// lost one left never gives a refilled key the id of a consumed one, even
// when the consumed key had the highest id (1 run in 100 of
// TestSetupAfterLostIdentity picked it by chance).
func TestPreKeyIDsAfterLostIdentity(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	if err := NewManager(s, "bob@example.org", Options{}).Setup(ctx); err != nil {
		t.Fatal(err)
	}
	s.identity = nil
	m := NewManager(s, "bob@example.org", Options{})
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := s.PreKeys(ctx)
	var top uint32
	for _, k := range before {
		top = max(top, k.ID)
	}
	if err := s.RemovePreKey(ctx, top); err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := s.PreKeys(ctx)
	if len(after) != len(before) {
		t.Fatalf("%d prekeys after the refill, want %d", len(after), len(before))
	}
	for _, k := range after {
		if k.ID == top {
			t.Errorf("the consumed prekey's id %d was given to a new key", top)
		}
	}
}
