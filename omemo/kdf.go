package omemo

import (
	"crypto/hmac"
	"crypto/sha256"
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
	// extraSkip is added to a new chain's previous-counter when storing the
	// old chain's skipped keys: libsignal sends pn as the last counter used
	// (one less than the chain length), the spec sends the length.
	extraSkip uint32
}

var (
	profile03 = &profile{
		version:   V03,
		x3dhInfo:  []byte("WhisperText"),
		rootInfo:  []byte("WhisperRatchet"),
		msgInfo:   []byte("WhisperMessageKeys"),
		macLen:    8,
		extraSkip: 1,
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

// kdf computes HMAC-SHA-256 and HKDF-SHA-256 on a scratch buffer with
// sha256.Sum256, which keeps the ratchet's many small HMACs off the heap.
type kdf struct {
	buf [64 + kdfInline]byte
}

const kdfInline = 512

// hmac writes HMAC-SHA-256(key, msgs...) to out. Keys are at most 64 bytes
// (all keys here are 32).
func (k *kdf) hmac(out *[32]byte, key []byte, msgs ...[]byte) {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	if n > kdfInline || len(key) > 64 {
		h := hmac.New(sha256.New, key)
		for _, m := range msgs {
			h.Write(m)
		}
		h.Sum(out[:0])
		return
	}
	b := k.buf[:64+n]
	for i := range 64 {
		b[i] = 0x36
	}
	for i, c := range key {
		b[i] ^= c
	}
	off := 64
	for _, m := range msgs {
		off += copy(b[off:], m)
	}
	inner := sha256.Sum256(b)
	var ob [96]byte
	for i := range 64 {
		ob[i] = 0x5c
	}
	for i, c := range key {
		ob[i] ^= c
	}
	copy(ob[64:], inner[:])
	*out = sha256.Sum256(ob[:])
}

var zeroSalt [32]byte

// hkdf fills out with HKDF-SHA-256(salt, ikm, info); len(out) ≤ 255*32.
func (k *kdf) hkdf(out, salt, ikm, info []byte) {
	var prk, t [32]byte
	k.hmac(&prk, salt, ikm)
	var ctr [1]byte
	var prev []byte
	for off := 0; off < len(out); off += 32 {
		ctr[0]++
		k.hmac(&t, prk[:], prev, info, ctr[:])
		copy(out[off:], t[:])
		prev = t[:]
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

var (
	ckMessage = []byte{0x01}
	ckChain   = []byte{0x02}
)

// chainStep is KDF_CK: message key seed HMAC(ck, 1), next chain key HMAC(ck, 2).
func (k *kdf) chainStep(ck *[32]byte) (mk [32]byte) {
	k.hmac(&mk, ck[:], ckMessage)
	k.hmac(ck, ck[:], ckChain)
	return mk
}

// messageKeys expands a message key seed into AES-256 key ‖ HMAC key ‖ IV.
func (k *kdf) messageKeys(p *profile, mk *[32]byte) (out [80]byte) {
	k.hkdf(out[:], zeroSalt[:], mk[:], p.msgInfo)
	return out
}
