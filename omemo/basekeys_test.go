package omemo

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

// initiateNoOPK is initiate for a bundle without one-time prekeys (X3DH
// allows it; libsignal 0.3 clients send such key exchanges): three DHs.
func initiateNoOPK(t *testing.T, k *kdf, our *identityKeys, b *Bundle, regID uint32) *session {
	t.Helper()
	p := profileFor(b.Version)
	s := &session{p: p, initiator: true, ourIK: our.wire(b.Version), pending: true, spkID: b.SignedPreKeyID, regID: regID}
	copy(s.theirIK[:], b.IdentityKey)
	ikCurve, err := theirCurve(b.Version, &s.theirIK)
	if err != nil {
		t.Fatal(err)
	}
	var spk [32]byte
	copy(spk[:], b.SignedPreKey)
	ek, err := generateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.baseKey = ek.pub
	var dh1, dh2, dh3 [32]byte
	if err := firstErr(x25519(&dh1, &our.curvePriv, &spk), x25519(&dh2, &ek.priv, &ikCurve), x25519(&dh3, &ek.priv, &spk)); err != nil {
		t.Fatal(err)
	}
	s.root = x3dhSecret(k, p, &dh1, &dh2, &dh3)
	s.dhr, s.hasDHr = spk, true
	if s.dhs, err = generateKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	var dh [32]byte
	if err := x25519(&dh, &s.dhs.priv, &spk); err != nil {
		t.Fatal(err)
	}
	s.send, s.hasSend = chain{key: k.rootStep(p, &s.root, &dh)}, true
	return s
}

// TestKeyExchangeWithoutPreKeyNotReplayable: a key exchange that used no
// one-time prekey cannot start a second session once the first one is
// gone (deleted by a session reset here), until its signed prekey's
// lifetime has passed. OMEMO 2 key exchanges always name a one-time
// prekey, so this is 0.3's case.
func TestKeyExchangeWithoutPreKeyNotReplayable(t *testing.T) {
	for _, v := range []Version{V03} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := context.Background()
			now := time.Now()
			alice := newPeer(t, "alice@example.org", Options{PreKeys: 5, Now: func() time.Time { return now }})
			bob := newPeer(t, "bob@example.org", Options{PreKeys: 5})
			k := getKDF()
			s := initiateNoOPK(t, k, bob.m.keys, alice.bundle(t, v), bob.m.DeviceID())
			putKDF(k)
			rec := &record{}
			rec.push(s)
			if err := bob.s.PutSession(ctx, v, alice.addr(), rec.bytes()); err != nil {
				t.Fatal(err)
			}
			e := send(t, bob, alice, v, "only once", false)
			if !e.Keys[0].KeyExchange {
				t.Fatal("no key exchange")
			}
			if d := recv(t, alice, bob, e); string(d.Plaintext) != "only once" || d.PreKeyConsumed {
				t.Fatalf("got %+v", d)
			}
			// The bridge resets the session (as after decryption failures).
			if err := alice.m.DeleteSession(ctx, v, bob.addr()); err != nil {
				t.Fatal(err)
			}
			if d, err := alice.m.Decrypt(ctx, e, bob.jid); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("replayed key exchange after the session was deleted: %+v, %v", d, err)
			}
			// Past the signed prekey's lifetime the base key is forgotten
			// (and the signed prekey with it: the key exchange fails).
			now = now.Add(alice.m.baseKeyRetention() + time.Hour)
			if err := alice.m.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			if seen, _ := alice.s.SeenBaseKey(ctx, v, bob.addr(), s.baseKey[:]); seen {
				t.Error("base key kept past the retention")
			}
		})
	}
}
