package omemo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

type peer struct {
	m   *Manager
	s   *MemoryStore
	jid string
}

func newPeer(t testing.TB, jid string, opts Options) *peer {
	t.Helper()
	return newPeerOn(t, jid, opts, false)
}

// plainStore is a MemoryStore without its SessionMatcher, as Stores that
// only load records (omemostore) are.
type plainStore struct{ Store }

// newPeerOn is newPeer whose Manager sees the MemoryStore as a plain Store
// when plain is set.
func newPeerOn(t testing.TB, jid string, opts Options, plain bool) *peer {
	t.Helper()
	s := NewMemoryStore()
	var st Store = s
	if plain {
		st = plainStore{s}
	}
	m := NewManager(st, jid, opts)
	if err := m.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &peer{m: m, s: s, jid: jid}
}

func (p *peer) addr() Address { return Address{JID: p.jid, Device: p.m.DeviceID()} }

func (p *peer) bundle(t testing.TB, v Version) *Bundle {
	t.Helper()
	b, err := p.m.Bundle(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip through XML, as over the network.
	x, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := ParseBundle(x)
	if err != nil {
		t.Fatal(err)
	}
	return b2
}

func send(t testing.TB, from, to *peer, v Version, msg string, bundle bool) *Encrypted {
	t.Helper()
	r := Recipient{Address: to.addr()}
	if bundle {
		r.Bundle = to.bundle(t, v)
	}
	var pt []byte
	if msg != "" {
		pt = []byte(msg)
	}
	enc, errs, err := from.m.Encrypt(context.Background(), v, pt, []Recipient{r})
	if err != nil {
		t.Fatalf("encrypt: %v %v", err, errs)
	}
	// Round-trip through XML.
	x, err := enc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	enc2, err := ParseEncrypted(x)
	if err != nil {
		t.Fatalf("parse %s: %v", x, err)
	}
	return enc2
}

func recv(t testing.TB, to, from *peer, enc *Encrypted) *Decrypted {
	t.Helper()
	d, err := to.m.Decrypt(context.Background(), enc, from.jid)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	return d
}

func TestConversation(t *testing.T) {
	for _, v := range []Version{V03, V2} {
		t.Run(v.String(), func(t *testing.T) {
			a := newPeer(t, "alice@example.org", Options{})
			b := newPeer(t, "bob@example.org", Options{})
			e := send(t, a, b, v, "hello", true)
			if !e.Keys[0].KeyExchange {
				t.Fatal("first message is no key exchange")
			}
			d := recv(t, b, a, e)
			if string(d.Plaintext) != "hello" || !d.NewSession || !d.PreKeyConsumed || !d.SendHeartbeat || !d.Trusted {
				t.Fatalf("got %+v", d)
			}
			// Replay is rejected and leaves state alone.
			if _, err := b.m.Decrypt(context.Background(), e, a.jid); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("replay: %v", err)
			}
			// Second message before any reply is still a key exchange.
			e2 := send(t, a, b, v, "again", false)
			if !e2.Keys[0].KeyExchange {
				t.Fatal("second message is no key exchange")
			}
			if d := recv(t, b, a, e2); string(d.Plaintext) != "again" || d.NewSession {
				t.Fatalf("got %+v", d)
			}
			for i := range 5 {
				msg := fmt.Sprintf("reply %d", i)
				e := send(t, b, a, v, msg, false)
				if d := recv(t, a, b, e); string(d.Plaintext) != msg {
					t.Fatalf("got %q", d.Plaintext)
				}
				msg = fmt.Sprintf("answer %d", i)
				e = send(t, a, b, v, msg, false)
				if e.Keys[0].KeyExchange {
					t.Fatal("key exchange after reply")
				}
				if d := recv(t, b, a, e); string(d.Plaintext) != msg {
					t.Fatalf("got %q", d.Plaintext)
				}
			}
			// Empty message.
			e = send(t, a, b, v, "", false)
			if d := recv(t, b, a, e); d.Plaintext != nil {
				t.Fatalf("empty message gave %q", d.Plaintext)
			}
			// Out of order.
			var es []*Encrypted
			for i := range 4 {
				es = append(es, send(t, b, a, v, fmt.Sprint(i), false))
			}
			for _, i := range []int{3, 1, 0, 2} {
				if d := recv(t, a, b, es[i]); string(d.Plaintext) != fmt.Sprint(i) {
					t.Fatalf("got %q want %d", d.Plaintext, i)
				}
			}
			// Tampering gives ErrBadMAC and no state change.
			e = send(t, a, b, v, "tamper", false)
			bad := *e
			bad.Keys = []EncryptedKey{e.Keys[0]}
			bad.Keys[0].Data = bytes.Clone(e.Keys[0].Data)
			bad.Keys[0].Data[len(bad.Keys[0].Data)-1] ^= 1
			if _, err := b.m.Decrypt(context.Background(), &bad, a.jid); err == nil {
				t.Fatal("tampered message decrypted")
			}
			if d := recv(t, b, a, e); string(d.Plaintext) != "tamper" {
				t.Fatalf("got %q", d.Plaintext)
			}
		})
	}
}
