package omemo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// The Manager's decoded-session cache must follow the Store, which stays
// the source of truth: a record put back (a rolled-back transaction, a
// restored backup) or removed behind the Manager's back is what counts, and
// a failed call leaves nothing cached.
func TestSessionCacheFollowsStore(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		v     Version
		plain bool // the Manager loads every record (no SessionMatcher)
	}{{V03, false}, {V2, false}, {V03, true}, {V2, true}} {
		v := tc.v
		name := v.String()
		if tc.plain {
			name += "/plain store"
		}
		t.Run(name, func(t *testing.T) {
			a := newPeerOn(t, "alice@example.org", Options{}, tc.plain)
			b := newPeerOn(t, "bob@example.org", Options{}, tc.plain)
			if ok := a.m.matcher != nil; ok == tc.plain {
				t.Fatalf("SessionMatcher %v, want %v", ok, !tc.plain)
			}
			recv(t, b, a, send(t, a, b, v, "hi", true))
			recv(t, a, b, send(t, b, a, v, "hi", false))
			for i := range 3 { // warm both caches
				recv(t, b, a, send(t, a, b, v, fmt.Sprint("warm ", i), false))
			}

			// Receiver rolled back: the same message decrypts again.
			before, _ := b.s.Session(ctx, v, a.addr())
			before = bytes.Clone(before)
			e := send(t, a, b, v, "once", false)
			recv(t, b, a, e)
			if err := b.s.PutSession(ctx, v, a.addr(), before); err != nil {
				t.Fatal(err)
			}
			if d, err := b.m.Decrypt(ctx, e, a.jid); err != nil || string(d.Plaintext) != "once" {
				t.Fatalf("after rollback: %v", err)
			}
			if _, err := b.m.Decrypt(ctx, e, a.jid); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("replay: %v", err)
			}

			// Sender rolled back: the next message reuses the counter and
			// still decrypts (the receiver kept the key it skipped past).
			sent, _ := a.s.Session(ctx, v, b.addr())
			sent = bytes.Clone(sent)
			e1 := send(t, a, b, v, "first", false)
			if err := a.s.PutSession(ctx, v, b.addr(), sent); err != nil {
				t.Fatal(err)
			}
			e2 := send(t, a, b, v, "second", false)
			if d := recv(t, b, a, e2); string(d.Plaintext) != "second" {
				t.Fatalf("after sender rollback: %q", d.Plaintext)
			}
			if _, err := b.m.Decrypt(ctx, e1, a.jid); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("reused counter: %v", err)
			}

			// A failed decryption that advanced the ratchet in memory (bad
			// payload after a good key) changes nothing: the message after
			// it decrypts, and the store is untouched.
			stored, _ := b.s.Session(ctx, v, a.addr())
			stored = bytes.Clone(stored)
			bad := send(t, a, b, v, "tampered", false)
			bad.Payload[0] ^= 1
			if _, err := b.m.Decrypt(ctx, bad, a.jid); err == nil {
				t.Fatal("tampered payload decrypted")
			}
			if got, _ := b.s.Session(ctx, v, a.addr()); !bytes.Equal(got, stored) {
				t.Fatal("failed decryption changed the stored session")
			}
			bad.Payload[0] ^= 1
			if d := recv(t, b, a, bad); string(d.Plaintext) != "tampered" {
				t.Fatalf("after failure: %q", d.Plaintext)
			}

			// Removed behind the Manager: no session, from either side.
			if err := b.s.RemoveSession(ctx, v, a.addr()); err != nil {
				t.Fatal(err)
			}
			if _, err := b.m.Decrypt(ctx, send(t, a, b, v, "gone", false), a.jid); !errors.Is(err, ErrNoSession) {
				t.Fatalf("removed session: %v", err)
			}
			if err := a.s.RemoveSession(ctx, v, b.addr()); err != nil {
				t.Fatal(err)
			}
			if _, _, err := a.m.Encrypt(ctx, v, []byte("x"), []Recipient{{Address: b.addr()}}); !errors.Is(err, ErrNoRecipients) {
				t.Fatalf("encrypt without session: %v", err)
			}
		})
	}
}

// A record MemoryStore handed out never changes afterwards, though records
// it did not hand out are overwritten in place; trust records likewise.
func TestMemoryStoreKeepsWhatItLent(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	addr := Address{JID: "bob@example.org", Device: 7}
	put := func(b []byte) {
		t.Helper()
		if err := s.PutSession(ctx, V2, addr, b); err != nil {
			t.Fatal(err)
		}
	}
	buf := []byte("first record")
	put(buf)
	buf[0] = 'X' // the store copied it
	if same, _ := s.SessionMatches(ctx, V2, addr, []byte("first record")); !same {
		t.Fatal("stored record changed with the caller's buffer")
	}
	put([]byte("second record"))
	lent, _ := s.Session(ctx, V2, addr)
	put([]byte("third record!"))
	put([]byte("fourth"))
	if string(lent) != "second record" {
		t.Fatalf("lent record became %q", lent)
	}
	if got, _ := s.Session(ctx, V2, addr); string(got) != "fourth" {
		t.Fatalf("stored %q", got)
	}
	for _, tc := range []struct {
		rec  string
		want bool
	}{{"fourth", true}, {"fourth!", false}, {"", false}} {
		if same, _ := s.SessionMatches(ctx, V2, addr, []byte(tc.rec)); same != tc.want {
			t.Fatalf("SessionMatches(%q) = %v", tc.rec, same)
		}
	}
	// Matched and rewritten, never lent: no copy per message.
	if n := testing.AllocsPerRun(100, func() {
		s.SessionMatches(ctx, V2, addr, []byte("fourth"))
		put([]byte("fifth"))
	}); n != 0 {
		t.Fatalf("%v allocations per match and put", n)
	}
	if same, _ := s.SessionMatches(ctx, V03, addr, []byte("fifth")); same {
		t.Fatal("a record matched under the other version")
	}

	// Another device in between, then removal: what was used last is no
	// shortcut past either.
	other := Address{JID: addr.JID, Device: 8}
	if err := s.PutSession(ctx, V2, other, []byte("other")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, V2, addr); string(got) != "fifth" {
		t.Fatalf("after another device's put: %q", got)
	}
	if err := s.RemoveSession(ctx, V2, addr); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, V2, addr); got != nil {
		t.Fatalf("removed record still there: %q", got)
	}
	if same, _ := s.SessionMatches(ctx, V2, addr, []byte("fifth")); same {
		t.Fatal("removed record matched")
	}
	if got, _ := s.Session(ctx, V2, other); string(got) != "other" {
		t.Fatalf("other device's record: %q", got)
	}

	rec := TrustRecord{JID: addr.JID, Device: 7, IdentityKey: []byte("key-7"), Level: TrustUndecided}
	if err := s.PutTrust(ctx, rec); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.TrustRecords(ctx, addr.JID)
	rec.Level = TrustVerified
	if err := s.PutTrust(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTrust(ctx, TrustRecord{JID: addr.JID, Device: 8, IdentityKey: []byte("key-8")}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Level != TrustUndecided {
		t.Fatalf("lent trust records became %v", recs)
	}
	if now, _ := s.TrustRecords(ctx, addr.JID); len(now) != 2 || now[0].Level != TrustVerified {
		t.Fatalf("stored trust records %v", now)
	}
}

// The cache stays bounded however many devices a Manager talks to.
func TestSessionCacheBounded(t *testing.T) {
	a := newPeer(t, "alice@example.org", Options{PreKeys: 5})
	for i := range maxCachedRecords + 8 {
		c := newPeer(t, fmt.Sprintf("c%d@example.org", i), Options{PreKeys: 5})
		recv(t, c, a, send(t, a, c, V2, "hi", true))
		recv(t, a, c, send(t, c, a, V2, "hi", false))
		recv(t, a, c, send(t, c, a, V2, "again", false))
	}
	if n := len(a.m.records); n > maxCachedRecords {
		t.Fatalf("%d cached records", n)
	}
}
