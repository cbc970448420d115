package omemo

import (
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"io"

	"filippo.io/edwards25519"
)

// xeddsaSign signs msg with a Curve25519 private key following the XEdDSA
// specification (Signal, 2016): the Edwards key is forced to sign bit 0 by
// negating the scalar, so the sign bit in sig[63] is always 0, which is what
// libsignal-style verifiers read back.
func xeddsaSign(curvePriv *[32]byte, msg []byte, rnd io.Reader) ([]byte, error) {
	var z [64]byte
	if _, err := io.ReadFull(rnd, z[:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness: %w", err)
	}
	var a edwards25519.Scalar
	if _, err := a.SetBytesWithClamping(curvePriv[:]); err != nil {
		return nil, err
	}
	var A edwards25519.Point
	A.ScalarBaseMult(&a)
	aBytes := A.Bytes()
	if aBytes[31]&0x80 != 0 {
		a.Negate(&a)
		A.Negate(&A)
		aBytes = A.Bytes()
	}
	// r = hash1(a || M || Z), hash1(X) = SHA-512(0xFE || 0xFF*31 || X)
	h := sha512.New()
	var prefix [32]byte
	for i := range prefix {
		prefix[i] = 0xFF
	}
	prefix[0] = 0xFE
	h.Write(prefix[:])
	h.Write(a.Bytes())
	h.Write(msg)
	h.Write(z[:])
	var digest [64]byte
	var r edwards25519.Scalar
	if _, err := r.SetUniformBytes(h.Sum(digest[:0])); err != nil {
		return nil, err
	}
	var R edwards25519.Point
	R.ScalarBaseMult(&r)
	rBytes := R.Bytes()
	// h = SHA-512(R || A || M)
	h.Reset()
	h.Write(rBytes)
	h.Write(aBytes)
	h.Write(msg)
	var k edwards25519.Scalar
	if _, err := k.SetUniformBytes(h.Sum(digest[:0])); err != nil {
		return nil, err
	}
	var s edwards25519.Scalar
	s.MultiplyAdd(&k, &a, &r)
	sig := make([]byte, 0, 64)
	sig = append(sig, rBytes...)
	sig = append(sig, s.Bytes()...)
	return sig, nil
}

// xeddsaVerify verifies an XEdDSA signature by a Curve25519 public key. The
// Edwards sign bit is taken from sig[63]&0x80 (libsignal's convention; 0 for
// proper XEdDSA signatures) and cleared before the Ed25519 check.
func xeddsaVerify(curvePub, msg, sig []byte) bool {
	if len(sig) != 64 || len(curvePub) != 32 {
		return false
	}
	edPub, err := curveToEd(curvePub, sig[63])
	if err != nil {
		return false
	}
	var s [64]byte
	copy(s[:], sig)
	s[63] &= 0x7F
	return ed25519.Verify(edPub, msg, s[:])
}

// sign03 signs msg with our identity for OMEMO 0.3. The identity is an
// Ed25519 key whose Curve25519 form is published, so the signature is a
// plain Ed25519 one by the same scalar with the Edwards sign bit stored in
// sig[63]&0x80 (libsignal's convention, free because s < 2^253): verifiers
// recover our real Ed25519 key from the Curve25519 one with it, and
// python-omemo checks that key against the one of our OMEMO 2 bundle.
func (ik *identityKeys) sign03(msg []byte, _ io.Reader) ([]byte, error) {
	sig := ed25519.Sign(ik.edPriv, msg)
	sig[63] |= ik.edPub[31] & 0x80
	return sig, nil
}

// sign2 signs msg with our identity for OMEMO 2 (plain Ed25519).
func (ik *identityKeys) sign2(msg []byte) []byte {
	return ed25519.Sign(ik.edPriv, msg)
}
