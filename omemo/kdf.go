package omemo

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
	"sync"
)

// profile holds what differs between the two versions inside the shared
// X3DH and Double Ratchet core. Framing differences live in proto.go and
// branch on version there.
type profile struct {
	version  Version
	x3dhInfo []byte
	rootInfo []byte
	msgInfo  []byte
	macLen   int
}

var (
	profile03 = &profile{
		version:  V03,
		x3dhInfo: []byte("WhisperText"),
		rootInfo: []byte("WhisperRatchet"),
		msgInfo:  []byte("WhisperMessageKeys"),
		macLen:   8,
	}
	profile2 = &profile{
		version:  V2,
		x3dhInfo: []byte("OMEMO X3DH"),
		rootInfo: []byte("OMEMO Root Chain"),
		msgInfo:  []byte("OMEMO Message Key Material"),
		macLen:   16,
	}
	payloadInfo2 = []byte("OMEMO Payload")
)

func profileFor(v Version) *profile {
	if v == V03 {
		return profile03
	}
	return profile2
}

const (
	kdfInline = 512
	// sha256State is the size of a marshaled crypto/sha256 digest.
	sha256State = 108
)

// sha256Digest is what crypto/sha256's digest offers: saving and restoring
// its state lets an HMAC key's two pad blocks be hashed once and reused.
type sha256Digest interface {
	hash.Hash
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

var digests = sync.Pool{New: func() any { return sha256.New() }}

// kdfs recycles whole kdf values (scratch and digest): every message needs
// one, and allocating ~900 bytes each time shows up in the GC.
var kdfs = sync.Pool{New: func() any { return new(kdf) }}

func getKDF() *kdf { return kdfs.Get().(*kdf) }

func putKDF(k *kdf) { kdfs.Put(k) }

// hmacKey is an HMAC-SHA-256 key with its pad blocks already hashed.
type hmacKey struct {
	inner, outer [sha256State]byte
}

// zeroKey is HKDF's default salt, 32 zero bytes, as a prepared HMAC key.
var zeroKey hmacKey

var zeroSalt [32]byte

func init() {
	var k kdf
	k.prepare(&zeroKey, zeroSalt[:])
	k.release()
}

// kdf computes HMAC-SHA-256 and HKDF-SHA-256 on scratch space. One-off
// HMACs use sha256.Sum256 and stay off the heap; keys used more than once
// (chain keys, HKDF PRKs) are prepared so their pad blocks are hashed once.
type kdf struct {
	buf [64 + kdfInline]byte
	d   sha256Digest
	sum [32]byte
	hk  hmacKey // scratch for the prepared key of chainStep and hkdf
}

func (k *kdf) digest() sha256Digest {
	if k.d == nil {
		k.d = digests.Get().(sha256Digest)
	}
	return k.d
}

// release returns the pooled digest; k stays usable.
func (k *kdf) release() {
	if k.d != nil {
		digests.Put(k.d)
		k.d = nil
	}
}

// prepare hashes key's pad blocks into hk (keys are at most 64 bytes).
func (k *kdf) prepare(hk *hmacKey, key []byte) {
	d := k.digest()
	pad := (*[64]byte)(k.buf[:64])
	padKey(pad, &ipad, key)
	d.Reset()
	d.Write(pad[:])
	d.AppendBinary(hk.inner[:0])
	padKey(pad, &opad, key)
	d.Reset()
	d.Write(pad[:])
	d.AppendBinary(hk.outer[:0])
}

// ipad and opad are HMAC's pad blocks.
var ipad, opad = fill(0x36), fill(0x5c)

func fill(c byte) (b [64]byte) {
	for i := range b {
		b[i] = c
	}
	return b
}

// padKey writes pad XOR key (at most 64 bytes) to dst: HMAC's key block.
// The keys here are 32 bytes, XORed as four words.
func padKey(dst, pad *[64]byte, key []byte) {
	*dst = *pad
	if len(key) == 32 {
		for i := 0; i < 32; i += 8 {
			binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(pad[i:])^binary.LittleEndian.Uint64(key[i:]))
		}
		return
	}
	for i, c := range key {
		dst[i] ^= c
	}
}

// mac writes HMAC(hk, msgs...) to out.
func (k *kdf) mac(out *[32]byte, hk *hmacKey, msgs ...[]byte) {
	d := k.digest()
	if err := d.UnmarshalBinary(hk.inner[:]); err != nil {
		panic(err)
	}
	for _, m := range msgs {
		d.Write(m)
	}
	d.Sum(k.sum[:0])
	if err := d.UnmarshalBinary(hk.outer[:]); err != nil {
		panic(err)
	}
	d.Write(k.sum[:])
	d.Sum(k.sum[:0])
	*out = k.sum
}

// hmac writes HMAC-SHA-256(key, msgs...) to out for a key used once. Keys
// are at most 64 bytes (all keys here are 32).
func (k *kdf) hmac(out *[32]byte, key []byte, msgs ...[]byte) {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	if n > kdfInline || len(key) > 64 {
		// Rare (large payloads): copies keep the callers' stack buffers
		// from escaping through the hash.Hash interface.
		h := hmac.New(sha256.New, bytes.Clone(key))
		for _, m := range msgs {
			h.Write(bytes.Clone(m))
		}
		copy(out[:], h.Sum(nil))
		return
	}
	b := k.buf[:64+n]
	padKey((*[64]byte)(b), &ipad, key)
	off := 64
	for _, m := range msgs {
		off += copy(b[off:], m)
	}
	inner := sha256.Sum256(b)
	var ob [96]byte
	padKey((*[64]byte)(ob[:64]), &opad, key)
	copy(ob[64:], inner[:])
	*out = sha256.Sum256(ob[:])
}

// hkdf fills out with HKDF-SHA-256(salt, ikm, info); len(out) ≤ 255*32.
// A nil salt means the default of 32 zero bytes.
func (k *kdf) hkdf(out, salt, ikm, info []byte) {
	var prk [32]byte
	if salt == nil {
		if len(ikm) > kdfInline {
			k.hmac(&prk, zeroSalt[:], ikm)
		} else {
			copy(k.buf[64:], ikm)
			k.mac(&prk, &zeroKey, k.buf[64:64+len(ikm)])
		}
	} else {
		k.hmac(&prk, salt, ikm)
	}
	if len(out) <= 32 {
		var t [32]byte
		k.hmac(&t, prk[:], info, []byte{1})
		copy(out, t[:])
		return
	}
	hk := &k.hk
	k.prepare(hk, prk[:])
	// T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), built in buf after the pad area.
	var t [32]byte
	for off, ctr := 0, byte(1); off < len(out); off, ctr = off+32, ctr+1 {
		n := 64
		if ctr > 1 {
			n += copy(k.buf[n:], t[:])
		}
		n += copy(k.buf[n:], info)
		k.buf[n] = ctr
		k.mac(&t, hk, k.buf[64:n+1])
		copy(out[off:], t[:])
	}
}

// rootStep is KDF_RK: HKDF(salt=root, ikm=dh, info) → new root ‖ chain key.
func (k *kdf) rootStep(p *profile, root *[32]byte, dh *[32]byte) (chainKey [32]byte) {
	var out [64]byte
	k.hkdf(out[:], root[:], dh[:], p.rootInfo)
	copy(root[:], out[:32])
	copy(chainKey[:], out[32:])
	return chainKey
}

// chainStep is KDF_CK: message key seed HMAC(ck, 1), next chain key HMAC(ck, 2).
func (k *kdf) chainStep(ck *[32]byte) (mk [32]byte) {
	hk := &k.hk
	k.prepare(hk, ck[:])
	k.buf[64] = 0x01
	k.mac(&mk, hk, k.buf[64:65])
	k.buf[64] = 0x02
	k.mac(ck, hk, k.buf[64:65])
	return mk
}

// messageKeys expands a message key seed into AES-256 key ‖ HMAC key ‖ IV.
func (k *kdf) messageKeys(p *profile, mk *[32]byte) (out [80]byte) {
	k.hkdf(out[:], nil, mk[:], p.msgInfo)
	return out
}
