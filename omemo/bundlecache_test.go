package omemo

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// A signed prekey verified once is not checked again, but only the exact
// (identity key, signed prekey, signature) that verified: any change is
// verified afresh and a bad signature still fails after a good one.
func TestBundleCacheVerifiesWhatChanged(t *testing.T) {
	ctx := context.Background()
	for _, v := range []Version{V03, V2} {
		t.Run(v.String(), func(t *testing.T) {
			a := newPeer(t, "alice@example.org", Options{})
			b := newPeer(t, "bob@example.org", Options{})
			c := newPeer(t, "carol@example.org", Options{})
			good := b.bundle(t, v)
			start := func(bundle *Bundle) error {
				if err := a.m.DeleteSession(ctx, v, b.addr()); err != nil {
					t.Fatal(err)
				}
				_, errs, err := a.m.Encrypt(ctx, v, []byte("hi"), []Recipient{{Address: b.addr(), Bundle: bundle}})
				if err != nil {
					return errs[b.addr()]
				}
				return nil
			}
			for range 2 { // the second start uses the cached verification
				if err := start(good); err != nil {
					t.Fatal(err)
				}
			}
			if len(a.m.bundles) != 1 {
				t.Fatalf("%d cached bundles", len(a.m.bundles))
			}
			tampered := func(f func(*Bundle)) *Bundle {
				x := *good
				x.IdentityKey = bytes.Clone(good.IdentityKey)
				x.SignedPreKey = bytes.Clone(good.SignedPreKey)
				x.SignedPreKeySignature = bytes.Clone(good.SignedPreKeySignature)
				f(&x)
				return &x
			}
			other := c.bundle(t, v)
			for name, bad := range map[string]*Bundle{
				"signature":      tampered(func(x *Bundle) { x.SignedPreKeySignature[5] ^= 1 }),
				"signed prekey":  tampered(func(x *Bundle) { x.SignedPreKey = bytes.Clone(other.SignedPreKey) }),
				"identity key":   tampered(func(x *Bundle) { x.IdentityKey = bytes.Clone(other.IdentityKey) }),
				"key and prekey": tampered(func(x *Bundle) { x.SignedPreKey, x.IdentityKey = other.SignedPreKey, other.IdentityKey }),
			} {
				if name == "key and prekey" {
					// Carol's own valid pair under Bob's signature: still wrong.
					bad.SignedPreKeySignature = good.SignedPreKeySignature
				}
				if err := start(bad); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("%s: %v", name, err)
				}
			}
			// The session from the cached bundle works end to end.
			if err := start(good); err != nil {
				t.Fatal(err)
			}
			e, _, err := a.m.Encrypt(ctx, v, []byte("hello"), []Recipient{{Address: b.addr()}})
			if err != nil {
				t.Fatal(err)
			}
			if d := recv(t, b, a, e); string(d.Plaintext) != "hello" {
				t.Fatalf("got %q", d.Plaintext)
			}
		})
	}
}
