package omemo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// dump renders the whole store, to prove failed calls change nothing.
func (s *MemoryStore) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sessions := make(map[sessionKey][]byte, len(s.sessions))
	for k, e := range s.sessions {
		sessions[k] = e.rec
	}
	return fmt.Sprintf("%v|%v|%v|%v|%v|%v", s.identity, s.preKeys, s.signedPreKeys, sessions, s.deviceLists, s.trust)
}

func mustFail(t *testing.T, p *peer, from *peer, enc *Encrypted, want error) {
	t.Helper()
	before := p.s.dump()
	_, err := p.m.Decrypt(context.Background(), enc, from.jid)
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	if p.s.dump() != before {
		t.Fatal("failed decryption changed the store")
	}
}

func forBoth(t *testing.T, f func(t *testing.T, v Version)) {
	for _, v := range []Version{V03, V2} {
		t.Run(v.String(), func(t *testing.T) { f(t, v) })
	}
}

func establish(t *testing.T, v Version) (*peer, *peer) {
	a := newPeer(t, "alice@example.org", Options{})
	b := newPeer(t, "bob@example.org", Options{})
	recv(t, b, a, send(t, a, b, v, "hi", true))
	recv(t, a, b, send(t, b, a, v, "hi", false))
	return a, b
}

func TestFailuresLeaveStateAlone(t *testing.T) {
	forBoth(t, func(t *testing.T, v Version) {
		a := newPeer(t, "alice@example.org", Options{})
		b := newPeer(t, "bob@example.org", Options{})
		e := send(t, a, b, v, "first", true)
		// Corrupt key exchange: nothing consumed, no session, no trust record.
		bad := *e
		bad.Keys = []EncryptedKey{e.Keys[0]}
		bad.Keys[0].Data = append([]byte(nil), e.Keys[0].Data...)
		bad.Keys[0].Data[len(bad.Keys[0].Data)-3] ^= 0x40
		before := b.s.dump()
		if _, err := b.m.Decrypt(context.Background(), &bad, a.jid); err == nil {
			t.Fatal("corrupted key exchange decrypted")
		}
		if b.s.dump() != before {
			t.Fatal("failed key exchange changed the store")
		}
		// Corrupt payload: ratchet fine, payload MAC/tag wrong.
		badPayload := *e
		badPayload.Payload = append([]byte(nil), e.Payload...)
		badPayload.Payload[0] ^= 1
		mustFail(t, b, a, &badPayload, ErrBadMAC)
		// Not for us.
		other := *e
		other.Keys = []EncryptedKey{e.Keys[0]}
		other.Keys[0].Device++
		mustFail(t, b, a, &other, ErrNotForThisDevice)
		// Unknown prekey: remove the one a picked.
		d := recv(t, b, a, e)
		if !d.PreKeyConsumed {
			t.Fatal("prekey not consumed")
		}
		mustFail(t, b, a, e, ErrDuplicate)
		// A plain message with no session at all.
		c := newPeer(t, "carol@example.org", Options{})
		recv(t, a, b, send(t, b, a, v, "x", false))
		plain := send(t, a, b, v, "plain", false)
		plain.Keys[0].Device = c.m.DeviceID()
		plain.Keys[0].JID = c.jid
		mustFail(t, c, a, plain, ErrNoSession)
	})
}

func TestPreKeyLifecycle(t *testing.T) {
	forBoth(t, func(t *testing.T, v Version) {
		ctx := context.Background()
		a := newPeer(t, "alice@example.org", Options{})
		b := newPeer(t, "bob@example.org", Options{})
		before, _ := b.s.PreKeys(ctx)
		if len(before) != DefaultPreKeys {
			t.Fatalf("%d prekeys", len(before))
		}
		d := recv(t, b, a, send(t, a, b, v, "hi", true))
		if !d.PreKeyConsumed || !d.NewSession || !d.SendHeartbeat {
			t.Fatalf("got %+v", d)
		}
		after, _ := b.s.PreKeys(ctx)
		if len(after) != DefaultPreKeys {
			t.Fatalf("%d prekeys after use", len(after))
		}
		ids := map[uint32]bool{}
		for _, pk := range after {
			ids[pk.ID] = true
		}
		missing := 0
		for _, pk := range before {
			if !ids[pk.ID] {
				missing++
			}
		}
		if missing != 1 || !ids[uint32(DefaultPreKeys+1)] {
			t.Fatalf("expected one prekey replaced by id %d", DefaultPreKeys+1)
		}
		// The published bundle follows.
		bundle, _ := b.m.Bundle(ctx, v)
		if len(bundle.PreKeys) != DefaultPreKeys || verifyBundle(bundle) != nil {
			t.Fatal("bundle after refill is wrong")
		}
	})
}

func TestSignedPreKeyRotation(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	a := newPeer(t, "alice@example.org", Options{})
	bs := NewMemoryStore()
	bm := NewManager(bs, "bob@example.org", Options{Now: clock})
	if err := bm.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	b := &peer{m: bm, s: bs, jid: "bob@example.org"}
	oldBundle := b.bundle(t, V2)
	now = now.Add(8 * 24 * time.Hour)
	if err := bm.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	spks, _ := bs.SignedPreKeys(ctx)
	newBundle := b.bundle(t, V2)
	if len(spks) != 2 || newBundle.SignedPreKeyID == oldBundle.SignedPreKeyID {
		t.Fatalf("rotation: %d signed prekeys, ids %d→%d", len(spks), oldBundle.SignedPreKeyID, newBundle.SignedPreKeyID)
	}
	// A key exchange on the previous signed prekey still works in the grace period.
	r := []Recipient{{Address: b.addr(), Bundle: oldBundle}}
	enc, _, err := a.m.Encrypt(ctx, V2, []byte("late"), r)
	if err != nil {
		t.Fatal(err)
	}
	if d := recv(t, b, a, enc); string(d.Plaintext) != "late" {
		t.Fatalf("got %q", d.Plaintext)
	}
	// After the grace period it is gone.
	now = now.Add(31 * 24 * time.Hour)
	if err := bm.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := bs.SignedPreKey(ctx, oldBundle.SignedPreKeyID); k != nil {
		t.Fatal("expired signed prekey kept")
	}
	if k, _ := bs.SignedPreKey(ctx, newBundle.SignedPreKeyID); k == nil {
		t.Fatal("previous signed prekey dropped before its grace period")
	}
	c := newPeer(t, "carol@example.org", Options{})
	enc, _, err = c.m.Encrypt(ctx, V2, []byte("too late"), []Recipient{{Address: b.addr(), Bundle: oldBundle}})
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, b, c, enc, ErrUnknownPreKey)
}

func TestReinitiationUsesArchivedSession(t *testing.T) {
	forBoth(t, func(t *testing.T, v Version) {
		ctx := context.Background()
		a, b := establish(t, v)
		late := send(t, a, b, v, "sent before reset", false)
		// a loses its session and starts over from b's bundle.
		if err := a.m.DeleteSession(ctx, v, b.addr()); err != nil {
			t.Fatal(err)
		}
		d := recv(t, b, a, send(t, a, b, v, "new session", true))
		if !d.NewSession || string(d.Plaintext) != "new session" {
			t.Fatalf("got %+v", d)
		}
		// The old session's late message still decrypts, from the archive.
		if d := recv(t, b, a, late); string(d.Plaintext) != "sent before reset" {
			t.Fatalf("got %q", d.Plaintext)
		}
		// And the new session carries on in both directions.
		recv(t, a, b, send(t, b, a, v, "reply", false))
		recv(t, b, a, send(t, a, b, v, "again", false))
	})
}

func TestSimultaneousInitiation(t *testing.T) {
	forBoth(t, func(t *testing.T, v Version) {
		a := newPeer(t, "alice@example.org", Options{})
		b := newPeer(t, "bob@example.org", Options{})
		ea := send(t, a, b, v, "from a", true)
		eb := send(t, b, a, v, "from b", true)
		recv(t, b, a, ea)
		recv(t, a, b, eb)
		for i := range 3 {
			if d := recv(t, b, a, send(t, a, b, v, fmt.Sprint("a", i), false)); string(d.Plaintext) != fmt.Sprint("a", i) {
				t.Fatal(d.Plaintext)
			}
			if d := recv(t, a, b, send(t, b, a, v, fmt.Sprint("b", i), false)); string(d.Plaintext) != fmt.Sprint("b", i) {
				t.Fatal(d.Plaintext)
			}
		}
	})
}

func TestSkippedKeyLimits(t *testing.T) {
	forBoth(t, func(t *testing.T, v Version) {
		a, b := establish(t, v)
		var es []*Encrypted
		for i := range maxSkip + 2 {
			es = append(es, send(t, b, a, v, fmt.Sprint(i), false))
		}
		// The last needs 1001 skipped keys: refused, state unchanged.
		mustFail(t, a, b, es[maxSkip+1], ErrTooManySkipped)
		// 1000 is fine; the skipped ones decrypt later, once each.
		if d := recv(t, a, b, es[maxSkip]); string(d.Plaintext) != fmt.Sprint(maxSkip) {
			t.Fatal(d.Plaintext)
		}
		for _, i := range []int{5, 0, 999, maxSkip + 1} {
			if d := recv(t, a, b, es[i]); string(d.Plaintext) != fmt.Sprint(i) {
				t.Fatal(d.Plaintext)
			}
			mustFail(t, a, b, es[i], ErrDuplicate)
		}
		// More skipping evicts the oldest keys; at most maxSkip are kept.
		var more []*Encrypted
		for i := range 600 {
			more = append(more, send(t, b, a, v, fmt.Sprint("m", i), false))
		}
		recv(t, a, b, more[599])
		raw, _ := a.s.Session(context.Background(), v, b.addr())
		rec, _ := parseRecord(raw)
		s, err := unmarshalSession(rec.sessions[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(s.skipped) != maxSkip {
			t.Fatalf("%d skipped keys kept", len(s.skipped))
		}
		if _, err := a.m.Decrypt(context.Background(), es[1], b.jid); err == nil {
			t.Fatal("evicted key still decrypts")
		}
		recv(t, a, b, more[0])
		recv(t, a, b, es[700])
	})
}

func TestHeartbeatRule(t *testing.T) {
	forBoth(t, func(t *testing.T, v Version) {
		a, b := establish(t, v)
		// b's "hi" was message 0 on its chain; a heartbeat is due once more
		// than 53 arrived, and after b reads it b starts a new chain.
		chainLen := 1
		for i := 1; i <= 120; i++ {
			d := recv(t, a, b, send(t, b, a, v, "m", false))
			chainLen++
			want := chainLen > heartbeatAfter
			if d.SendHeartbeat != want {
				t.Fatalf("message %d: heartbeat %v", i, d.SendHeartbeat)
			}
			if d.SendHeartbeat {
				// Answer with an empty message; the rule is then satisfied.
				e := send(t, a, b, v, "", false)
				if e.Payload != nil {
					t.Fatal("heartbeat has a payload")
				}
				if d := recv(t, b, a, e); d.Plaintext != nil {
					t.Fatal("heartbeat decrypted to a message")
				}
				chainLen = 0
			}
		}
	})
}

func TestTrustPolicies(t *testing.T) {
	ctx := context.Background()
	a := newPeer(t, "alice@example.org", Options{})
	b1 := newPeer(t, "bob@example.org", Options{})
	b2 := newPeer(t, "bob@example.org", Options{})
	// Blind trust for the first device.
	recv(t, b1, a, send(t, a, b1, V2, "hi", true))
	ik := b1.m.IdentityKey(V2)
	level, trusted, err := a.m.Trust(ctx, V2, b1.addr(), ik)
	if err != nil || level != TrustTrusted || !trusted {
		t.Fatalf("blind trust: %v %v %v", level, trusted, err)
	}
	// Verify it; now a new device of bob is not trusted blindly.
	if err := a.m.SetTrust(ctx, V2, b1.addr(), ik, TrustVerified); err != nil {
		t.Fatal(err)
	}
	_, errs, err := a.m.Encrypt(ctx, V2, []byte("x"), []Recipient{{Address: b2.addr(), Bundle: b2.bundle(t, V2)}})
	if !errors.Is(err, ErrNoRecipients) || !errors.Is(errs[b2.addr()], ErrUntrusted) {
		t.Fatalf("new device after verification: %v %v", err, errs)
	}
	// Same identity seen through 0.3 (Curve25519 form) is the same record.
	if level, _, _ := a.m.Trust(ctx, V03, b1.addr(), b1.m.IdentityKey(V03)); level != TrustVerified {
		t.Fatalf("0.3 form has level %v", level)
	}
	// Trusting it explicitly allows sending; distrusting forbids it again.
	if err := a.m.SetTrust(ctx, V2, b2.addr(), b2.m.IdentityKey(V2), TrustTrusted); err != nil {
		t.Fatal(err)
	}
	recv(t, b2, a, send(t, a, b2, V2, "now", true))
	if err := a.m.SetTrust(ctx, V2, b2.addr(), b2.m.IdentityKey(V2), TrustDistrusted); err != nil {
		t.Fatal(err)
	}
	if _, errs, _ := a.m.Encrypt(ctx, V2, []byte("x"), []Recipient{{Address: b2.addr()}}); !errors.Is(errs[b2.addr()], ErrUntrusted) {
		t.Fatalf("distrusted: %v", errs)
	}
	// Messages from distrusted devices still decrypt, flagged.
	d := recv(t, a, b2, send(t, b2, a, V2, "from distrusted", false))
	if d.Trusted || d.Trust != TrustDistrusted || string(d.Plaintext) != "from distrusted" {
		t.Fatalf("got %+v", d)
	}
	// Manual policy: nothing is trusted blindly.
	m := newPeer(t, "manual@example.org", Options{Policy: PolicyManual})
	c := newPeer(t, "carol@example.org", Options{})
	if _, errs, _ := m.m.Encrypt(ctx, V03, []byte("x"), []Recipient{{Address: c.addr(), Bundle: c.bundle(t, V03)}}); !errors.Is(errs[c.addr()], ErrUntrusted) {
		t.Fatalf("manual policy: %v", errs)
	}
	d = recv(t, m, c, send(t, c, m, V03, "hello", true))
	if d.Trusted || d.Trust != TrustUndecided {
		t.Fatalf("manual policy decrypt: %+v", d)
	}
	recs, _ := m.m.Devices(ctx, c.jid)
	if len(recs) != 1 || recs[0].Level != TrustUndecided {
		t.Fatalf("records %+v", recs)
	}
}

func TestEncryptRecipients(t *testing.T) {
	ctx := context.Background()
	a := newPeer(t, "alice@example.org", Options{})
	b := newPeer(t, "bob@example.org", Options{})
	c := newPeer(t, "carol@example.org", Options{})
	bad := c.bundle(t, V2)
	bad.SignedPreKeySignature[0] ^= 1
	d := newPeer(t, "dave@example.org", Options{})
	rs := []Recipient{
		{Address: a.addr()}, // ourselves: skipped
		{Address: b.addr(), Bundle: b.bundle(t, V2)},
		{Address: c.addr(), Bundle: bad},
		{Address: d.addr()},
		{Address: Address{JID: "eve@example.org", Device: 1}, Bundle: b.bundle(t, V03)},
	}
	enc, errs, err := a.m.Encrypt(ctx, V2, []byte("x"), rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc.Keys) != 1 || enc.Keys[0].Device != b.m.DeviceID() || enc.Keys[0].JID != b.jid {
		t.Fatalf("keys %+v", enc.Keys)
	}
	if !errors.Is(errs[c.addr()], ErrBadSignature) || !errors.Is(errs[d.addr()], ErrNoSession) ||
		!errors.Is(errs[Address{JID: "eve@example.org", Device: 1}], ErrMalformed) || len(errs) != 3 {
		t.Fatalf("errs %v", errs)
	}
	if fp := a.m.Fingerprint(); len(fp) != 71 {
		t.Fatalf("fingerprint %q", fp)
	}
}
