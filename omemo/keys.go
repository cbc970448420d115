package omemo

import (
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// keyPair is a Curve25519 key pair; priv is the unclamped 32-byte scalar
// as stored (X25519 clamps on use).
type keyPair struct {
	priv, pub [32]byte
}

var errLowOrder = errors.New("omemo: low-order Curve25519 point")

// generateKeyPair makes a Curve25519 key pair. The public key comes from the
// Edwards fixed-base multiplication, several times faster than the
// Montgomery ladder on the base point.
func generateKeyPair(r io.Reader) (keyPair, error) {
	var kp keyPair
	if _, err := io.ReadFull(r, kp.priv[:]); err != nil {
		return kp, fmt.Errorf("failed to read randomness: %w", err)
	}
	kp.priv[0] &= 248
	kp.priv[31] &= 127
	kp.priv[31] |= 64
	curvePublic(&kp.pub, &kp.priv)
	return kp, nil
}

// curvePublic computes the X25519 public key of a (clamped) scalar.
func curvePublic(pub, priv *[32]byte) {
	var s edwards25519.Scalar
	if _, err := s.SetBytesWithClamping(priv[:]); err != nil {
		panic(err) // 32 bytes never fail
	}
	var p edwards25519.Point
	p.ScalarBaseMult(&s)
	copy(pub[:], p.BytesMontgomery())
}

// x25519 computes the X25519 function (RFC 7748) into out and rejects an
// all-zero result (low-order peer key).
func x25519(out, scalar, point *[32]byte) error {
	var e [32]byte
	copy(e[:], scalar[:])
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64

	var x1, x2, z2, x3, z3, t0, t1 field.Element
	if _, err := x1.SetBytes(point[:]); err != nil {
		return err
	}
	x2.One()
	x3.Set(&x1)
	z3.One()
	swap := 0
	for pos := 254; pos >= 0; pos-- {
		b := int(e[pos/8]>>uint(pos&7)) & 1
		swap ^= b
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = b

		t0.Subtract(&x3, &z3)
		t1.Subtract(&x2, &z2)
		x2.Add(&x2, &z2)
		z2.Add(&x3, &z3)
		z3.Multiply(&t0, &x2)
		z2.Multiply(&z2, &t1)
		t0.Square(&t1)
		t1.Square(&x2)
		x3.Add(&z3, &z2)
		z2.Subtract(&z3, &z2)
		x2.Multiply(&t1, &t0)
		t1.Subtract(&t1, &t0)
		z2.Square(&z2)
		z3.Mult32(&t1, 121666)
		x3.Square(&x3)
		t0.Add(&t0, &z3)
		z3.Multiply(&x1, &z2)
		z2.Multiply(&t1, &t0)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)
	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(out[:], x2.Bytes())
	var zero [32]byte
	if subtle.ConstantTimeCompare(out[:], zero[:]) == 1 {
		return errLowOrder
	}
	return nil
}

// identityKeys is our parsed identity: the Ed25519 seed and both forms.
type identityKeys struct {
	seed      []byte
	edPriv    ed25519.PrivateKey
	edPub     [32]byte
	curvePriv [32]byte // clamped scalar, SHA-512(seed)[:32]
	curvePub  [32]byte
}

func newIdentityKeys(seed []byte) (*identityKeys, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: identity seed length %d", ErrMalformed, len(seed))
	}
	ik := &identityKeys{seed: seed, edPriv: ed25519.NewKeyFromSeed(seed)}
	copy(ik.edPub[:], ik.edPriv.Public().(ed25519.PublicKey))
	h := sha512.Sum512(seed)
	copy(ik.curvePriv[:], h[:32])
	ik.curvePriv[0] &= 248
	ik.curvePriv[31] &= 127
	ik.curvePriv[31] |= 64
	curvePublic(&ik.curvePub, &ik.curvePriv)
	return ik, nil
}

// edToCurve converts an Ed25519 public key to its Curve25519 (Montgomery) form.
func edToCurve(ed []byte) ([]byte, error) {
	var p edwards25519.Point
	if _, err := p.SetBytes(ed); err != nil {
		return nil, fmt.Errorf("%w: invalid Ed25519 key", ErrMalformed)
	}
	return p.BytesMontgomery(), nil
}

// curveToEd converts a Curve25519 public key to the Ed25519 encoding with the
// given sign bit (y = (u-1)/(u+1)).
func curveToEd(u []byte, sign byte) ([]byte, error) {
	var fu, one, num, den field.Element
	if _, err := fu.SetBytes(u); err != nil {
		return nil, fmt.Errorf("%w: invalid Curve25519 key", ErrMalformed)
	}
	if subtle.ConstantTimeCompare(fu.Bytes(), u) != 1 {
		return nil, fmt.Errorf("%w: non-canonical Curve25519 key", ErrMalformed)
	}
	one.One()
	num.Subtract(&fu, &one)
	den.Add(&fu, &one)
	if den.Equal(new(field.Element)) == 1 {
		return nil, fmt.Errorf("%w: invalid Curve25519 key", ErrMalformed)
	}
	den.Invert(&den)
	num.Multiply(&num, &den)
	y := num.Bytes()
	y[31] |= sign & 0x80
	return y, nil
}

// CurveIdentityKey converts an identity key in v's wire form (32 bytes, or
// 33 with the 0x05 prefix for V03) to its Curve25519 form.
func CurveIdentityKey(v Version, key []byte) ([]byte, error) {
	return curveIdentityKey(nil, v, key)
}

// curveIdentityKey is CurveIdentityKey appending to dst.
func curveIdentityKey(dst []byte, v Version, key []byte) ([]byte, error) {
	switch v {
	case V03:
		k, err := untype(key)
		if err != nil {
			return nil, err
		}
		return append(dst, k...), nil
	case V2:
		if len(key) != 32 {
			return nil, fmt.Errorf("%w: identity key length %d", ErrMalformed, len(key))
		}
		var p edwards25519.Point
		if _, err := p.SetBytes(key); err != nil {
			return nil, fmt.Errorf("%w: invalid Ed25519 key", ErrMalformed)
		}
		return append(dst, p.BytesMontgomery()...), nil
	}
	return nil, fmt.Errorf("%w: invalid version", ErrMalformed)
}
