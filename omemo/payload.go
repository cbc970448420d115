package omemo

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/subtle"
	"fmt"
	"io"
)

func ed25519Verify(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, sig)
}

// cbcEncrypt encrypts plain with AES-256-CBC and PKCS#7 padding.
func cbcEncrypt(key, iv, plain []byte) []byte {
	return cbcAppend(make([]byte, 0, cbcLen(len(plain))), key, iv, plain)
}

// cbcLen is the AES-CBC/PKCS#7 ciphertext length of n plaintext bytes.
func cbcLen(n int) int { return n + aes.BlockSize - n%aes.BlockSize }

// cbcAppend appends the AES-256-CBC/PKCS#7 encryption of plain to dst. The
// chaining is done here block by block rather than by cipher's CBC mode,
// which costs an allocation per message for the few blocks of key material.
func cbcAppend(dst, key, iv, plain []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // key is always 32 bytes
	}
	at := len(dst)
	n := cbcLen(len(plain))
	pad := byte(n - len(plain))
	dst = append(dst, plain...)
	for range pad {
		dst = append(dst, pad)
	}
	out := dst[at:]
	prev := iv[:aes.BlockSize]
	for i := 0; i < n; i += aes.BlockSize {
		b := out[i : i+aes.BlockSize]
		subtle.XORBytes(b, b, prev)
		block.Encrypt(b, b)
		prev = b
	}
	return dst
}

// cbcDecrypt reverses cbcEncrypt. It runs after the MAC check, so a padding
// error means a broken peer, not an oracle.
func cbcDecrypt(key, iv, ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, malformed("ciphertext length")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(ct))
	if len(ct) > 4*aes.BlockSize {
		// The mode gets a copy: handing it iv would move the caller's
		// derived keys (iv is a slice of them) to the heap on every call.
		iv := [aes.BlockSize]byte(iv)
		cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(out, ct)
	} else {
		// Key material: a few blocks, not worth the mode's allocation.
		prev := iv[:aes.BlockSize]
		for i := 0; i < len(ct); i += aes.BlockSize {
			block.Decrypt(out[i:i+aes.BlockSize], ct[i:i+aes.BlockSize])
			subtle.XORBytes(out[i:i+aes.BlockSize], out[i:i+aes.BlockSize], prev)
			prev = ct[i : i+aes.BlockSize]
		}
	}
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, malformed("padding")
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return nil, malformed("padding")
		}
	}
	return out[:len(out)-pad], nil
}

// sealPayload encrypts a message payload once for all recipients and
// returns the key material that goes through each ratchet. plain == nil
// makes an empty message. k may be nil.
func sealPayload(k *kdf, v Version, plain []byte, rnd io.Reader) (keyMaterial, iv, payload []byte, err error) {
	if v == V03 {
		// Key then IV, drawn in one read into the key material's room
		// (the tag overwrites the IV's copy there).
		key := make([]byte, 16+12, 32)
		if _, err := io.ReadFull(rnd, key); err != nil {
			return nil, nil, nil, fmt.Errorf("failed to read randomness: %w", err)
		}
		iv = append(make([]byte, 0, 12), key[16:]...)
		key = key[:16]
		if plain == nil {
			// Key transport: python-oldmemo sends the bare 16-byte key.
			return key, iv, nil, nil
		}
		block, _ := aes.NewCipher(key)
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, nil, nil, err
		}
		sealed := gcm.Seal(nil, iv, plain, nil)
		ct, tag := sealed[:len(plain)], sealed[len(plain):]
		return append(key, tag...), iv, ct, nil
	}
	if plain == nil {
		return make([]byte, 32), nil, nil, nil
	}
	key := make([]byte, 32, 48)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return nil, nil, nil, fmt.Errorf("failed to read randomness: %w", err)
	}
	if k == nil {
		k = getKDF()
		defer putKDF(k)
	}
	var km [80]byte
	k.hkdf(km[:], nil, key, payloadInfo2)
	ct := cbcEncrypt(km[:32], km[64:80], plain)
	var mac [32]byte
	k.hmac(&mac, km[32:64], ct)
	return append(key, mac[:16]...), nil, ct, nil
}

// openPayload decrypts a payload with the key material from the ratchet.
// k may be nil.
func openPayload(k *kdf, v Version, keyMaterial, iv, payload []byte) ([]byte, error) {
	if v == V03 {
		var key, tag []byte
		switch len(keyMaterial) {
		case 32:
			key, tag = keyMaterial[:16], keyMaterial[16:]
		case 16:
			// Legacy senders append the tag to the payload.
			if len(payload) < 16 {
				return nil, malformed("payload length")
			}
			key = keyMaterial
		default:
			return nil, malformed("key material length")
		}
		block, _ := aes.NewCipher(key)
		gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
		if err != nil {
			return nil, malformed("iv length")
		}
		sealed := payload
		if tag != nil {
			sealed = make([]byte, 0, len(payload)+16)
			sealed = append(append(sealed, payload...), tag...)
		}
		// Opened in place when sealed is our own copy; the caller's
		// payload is never written.
		dst := sealed[:0:0]
		if tag != nil {
			dst = sealed[:0]
		}
		plain, err := gcm.Open(dst, iv, sealed, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: payload", ErrBadMAC)
		}
		if plain == nil {
			plain = []byte{}
		}
		return plain, nil
	}
	if len(keyMaterial) != 48 {
		return nil, malformed("key material length")
	}
	if k == nil {
		k = getKDF()
		defer putKDF(k)
	}
	var km [80]byte
	k.hkdf(km[:], nil, keyMaterial[:32], payloadInfo2)
	var mac [32]byte
	k.hmac(&mac, km[32:64], payload)
	if !hmac.Equal(mac[:16], keyMaterial[32:]) {
		return nil, fmt.Errorf("%w: payload", ErrBadMAC)
	}
	return cbcDecrypt(km[:32], km[64:80], payload)
}
