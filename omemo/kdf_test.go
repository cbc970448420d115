package omemo

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand"
	"testing"

	lskdf "go.mau.fi/libsignal/kdf"
	lschain "go.mau.fi/libsignal/keys/chain"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 5869 appendix A, SHA-256 cases.
func TestHKDFVectors(t *testing.T) {
	for _, tc := range []struct{ ikm, salt, info, okm string }{
		{"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9",
			"3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
		{"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
			"8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
	} {
		var k kdf
		out := make([]byte, len(tc.okm)/2)
		salt := unhex(t, tc.salt)
		if len(salt) == 0 {
			salt = nil // HKDF: absent salt is HashLen zero bytes
		}
		k.hkdf(out, salt, unhex(t, tc.ikm), unhex(t, tc.info))
		k.release()
		if got := hex.EncodeToString(out); got != tc.okm {
			t.Errorf("HKDF = %s, want %s", got, tc.okm)
		}
	}
}

// Our HMAC paths against crypto/hmac, our HKDF and chain steps against
// libsignal's, for random inputs of many sizes.
func TestKDFAgainstReference(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	var k kdf
	defer k.release()
	for i := range 300 {
		key := make([]byte, 32)
		rnd.Read(key)
		msg := make([]byte, rnd.Intn(700))
		rnd.Read(msg)
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		want := h.Sum(nil)
		var got [32]byte
		k.hmac(&got, key, msg[:len(msg)/2], msg[len(msg)/2:])
		if !bytes.Equal(got[:], want) {
			t.Fatalf("hmac %d mismatch", i)
		}
		if len(msg) <= kdfInline {
			var hk hmacKey
			k.prepare(&hk, key)
			k.mac(&got, &hk, msg)
			if !bytes.Equal(got[:], want) {
				t.Fatalf("prepared hmac %d mismatch", i)
			}
		}
		info := msg[:rnd.Intn(min(len(msg), 40)+1)]
		ikm := msg[len(info):]
		for _, n := range []int{32, 64, 80} {
			ref, err := lskdf.DeriveSecrets(ikm, key, info, n)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, n)
			k.hkdf(out, key, ikm, info)
			if !bytes.Equal(out, ref) {
				t.Fatalf("hkdf %d/%d mismatch", i, n)
			}
			ref, _ = lskdf.DeriveSecrets(ikm, nil, info, n)
			k.hkdf(out, nil, ikm, info)
			if !bytes.Equal(out, ref) {
				t.Fatalf("hkdf zero salt %d/%d mismatch", i, n)
			}
		}
		// Chain step and message keys against libsignal's chain key.
		ck := lschain.NewKey(lskdf.DeriveSecrets, key, 0)
		var ours [32]byte
		copy(ours[:], key)
		mk := k.chainStep(&ours)
		keys := k.messageKeys(profile03, &mk)
		mks := ck.MessageKeys()
		if !bytes.Equal(keys[:32], mks.CipherKey()) || !bytes.Equal(keys[32:64], mks.MacKey()) || !bytes.Equal(keys[64:], mks.Iv()) {
			t.Fatalf("message keys %d mismatch", i)
		}
		if !bytes.Equal(ours[:], ck.NextKey().Key()) {
			t.Fatalf("next chain key %d mismatch", i)
		}
	}
}

// RFC 7748 section 5.2 vectors, and random agreement with crypto/ecdh.
func TestX25519(t *testing.T) {
	for _, tc := range []struct{ k, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	} {
		var k, u, out [32]byte
		copy(k[:], unhex(t, tc.k))
		copy(u[:], unhex(t, tc.u))
		if err := x25519(&out, &k, &u); err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(out[:]); got != tc.out {
			t.Errorf("X25519 = %s, want %s", got, tc.out)
		}
	}
	rnd := rand.New(rand.NewSource(2))
	for range 50 {
		a, err := generateKeyPair(rnd)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := generateKeyPair(rnd)
		ea, err := ecdh.X25519().NewPrivateKey(a.priv[:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ea.PublicKey().Bytes(), a.pub[:]) {
			t.Fatal("public key differs from crypto/ecdh")
		}
		eb, _ := ecdh.X25519().NewPublicKey(b.pub[:])
		want, _ := ea.ECDH(eb)
		var got [32]byte
		if err := x25519(&got, &a.priv, &b.pub); err != nil || !bytes.Equal(got[:], want) {
			t.Fatal("shared secret differs from crypto/ecdh")
		}
	}
	var zero, out [32]byte
	k, _ := generateKeyPair(rnd)
	if err := x25519(&out, &k.priv, &zero); err == nil {
		t.Fatal("low-order point accepted")
	}
}

// Signatures made by go.mau.fi/libsignal v0.2.1 (ecc.CalculateSignature on
// fixed private keys); the first and last carry the Ed25519 sign bit in
// sig[63].
func TestXEdDSAKnownAnswers(t *testing.T) {
	for _, tc := range []struct{ pub, msg, sig string }{
		{"07b8c542487686a78301855fcb6d3f6a8a911cd7f1983a9b44dc9dcd22839d23", "OMEMO XEdDSA KAT 1", "6bb226d05c73bea76b5702727438881c619cd2dc21da08b5f872843853693a2cfef73a2a8faa579d7fec46d97260d76a17575bca8db5b79a33d28efdc0e2ab8b"},
		{"15586e962482459cbdadd2055079aaa7d4652a4960c858a7e1641733b8c5374e", "OMEMO XEdDSA KAT 2", "67bf5f63bc1512c1338a05e9363777eef5eb644c5a8c80b50f70b9ce4182e428708f58c37b586b937f82f39712010f4985dac910a6b1cd2d886a21a54ef0fe09"},
		{"ad65f789413560b97cc68d0b9cb23e96bb43fd2f71a6c9952d7573064b767423", "OMEMO XEdDSA KAT 3", "2ed8d31921674b96631b7b3c39332982c3493cc2d3a06573332df04b69882abc9be68ec3b8006d12bf89599b1b59cda1f6a7a6d8e62cf98f7b0eaed790eb9b8b"},
	} {
		pub, sig := unhex(t, tc.pub), unhex(t, tc.sig)
		if !xeddsaVerify(pub, []byte(tc.msg), sig) {
			t.Errorf("libsignal signature over %q rejected", tc.msg)
		}
		sig[63] ^= 0x80 // wrong sign bit: another Edwards key
		if xeddsaVerify(pub, []byte(tc.msg), sig) {
			t.Errorf("signature with flipped sign bit accepted")
		}
	}
	// Ours, for identities of both signs.
	rnd := rand.New(rand.NewSource(3))
	for range 20 {
		seed := make([]byte, 32)
		rnd.Read(seed)
		ik, err := newIdentityKeys(seed)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("signed prekey")
		sig, err := ik.sign03(msg, rnd)
		if err != nil {
			t.Fatal(err)
		}
		if sig[63]&0x80 != ik.edPub[31]&0x80 || !xeddsaVerify(ik.curvePub[:], msg, sig) {
			t.Fatal("own 0.3 signature invalid or without our sign bit")
		}
		// The Ed25519 key recovered from the Curve25519 form and the sign
		// bit is the OMEMO 2 identity.
		if ed, err := curveToEd(ik.curvePub[:], sig[63]); err != nil || !bytes.Equal(ed, ik.edPub[:]) {
			t.Fatal("recovered Ed25519 identity differs")
		}
		// Spec XEdDSA (sign bit forced to 0) verifies too.
		xsig, err := xeddsaSign(&ik.curvePriv, msg, rnd)
		if err != nil || xsig[63]&0x80 != 0 || !xeddsaVerify(ik.curvePub[:], msg, xsig) {
			t.Fatal("XEdDSA signature invalid")
		}
		// Both public forms name the same key.
		c, err := CurveIdentityKey(V2, ik.edPub[:])
		if err != nil || !bytes.Equal(c, ik.curvePub[:]) {
			t.Fatal("Ed25519 → Curve25519 conversion mismatch")
		}
	}
}
