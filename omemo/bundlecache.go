package omemo

import (
	"bytes"
	"crypto/sha256"
)

// maxCachedBundles bounds the verified signed prekeys a Manager remembers.
const maxCachedBundles = 64

// bundleKey names a signed prekey as a bundle presents it: version,
// identity key, signed prekey and signature, hashed.
type bundleKey [32]byte

// verifiedSPK is what a verified signed prekey gives every later session
// started from it: the signature need not be checked again, and X3DH's
// DH(IK_ours, SPK_theirs) is the same each time.
type verifiedSPK struct {
	ik, spk [32]byte
	dh1     [32]byte
}

func bundleCacheKey(b *Bundle) bundleKey {
	h := sha256.New()
	h.Write([]byte{byte(b.Version)})
	h.Write(b.IdentityKey)
	h.Write(b.SignedPreKey)
	h.Write(b.SignedPreKeySignature)
	var k bundleKey
	h.Sum(k[:0])
	return k
}

// verifiedBundle verifies b's signed prekey, or finds it verified before,
// and returns DH(our identity, their signed prekey). Only successes are
// remembered; the entry also holds the keys themselves, compared on use.
func (m *Manager) verifiedBundle(b *Bundle) (*verifiedSPK, error) {
	key := bundleCacheKey(b)
	if v := m.bundles[key]; v != nil && bytes.Equal(v.ik[:], b.IdentityKey) && bytes.Equal(v.spk[:], b.SignedPreKey) {
		return v, nil
	}
	if err := verifyBundle(b); err != nil {
		return nil, err
	}
	v := &verifiedSPK{}
	copy(v.ik[:], b.IdentityKey)
	copy(v.spk[:], b.SignedPreKey)
	if err := x25519(&v.dh1, &m.keys.curvePriv, &v.spk); err != nil {
		return nil, malformed("bundle key")
	}
	if len(m.bundles) >= maxCachedBundles {
		for k := range m.bundles {
			delete(m.bundles, k)
			break
		}
	}
	if m.bundles == nil {
		m.bundles = make(map[bundleKey]*verifiedSPK)
	}
	m.bundles[key] = v
	return v, nil
}
