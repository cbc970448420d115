package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Scheme is the URL scheme of XEP-0454 links.
const Scheme = "aesgcm"

// Sizes of the key material. Senders use a 12-byte IV; 16-byte IVs from
// older clients are still accepted when decrypting.
const (
	KeySize      = 32
	IVSize       = 12
	LegacyIVSize = 16
	TagSize      = 16
)

// Errors for bad links and files; none of them includes key material.
var (
	ErrNotAESGCM   = errors.New("aesgcm: not an aesgcm:// URL")
	ErrBadFragment = errors.New("aesgcm: URL fragment is not a hex IV and key")
	ErrShort       = errors.New("aesgcm: file is shorter than the authentication tag")
	ErrDecrypt     = errors.New("aesgcm: file does not decrypt with the key of the link (wrong key or damaged file)")
)

// Key is the secret of one file.
type Key struct {
	IV  []byte // 12 bytes (16 accepted from others)
	Key []byte // 32 bytes
}

// NewKey returns a fresh random key and 12-byte IV.
func NewKey() (Key, error) {
	k := Key{IV: make([]byte, IVSize), Key: make([]byte, KeySize)}
	if _, err := rand.Read(k.IV); err != nil {
		return Key{}, fmt.Errorf("aesgcm: failed to read random IV: %w", err)
	}
	if _, err := rand.Read(k.Key); err != nil {
		return Key{}, fmt.Errorf("aesgcm: failed to read random key: %w", err)
	}
	return k, nil
}

// Fragment is the URL fragment naming k: the IV then the key, in hex.
func (k Key) Fragment() string {
	return hex.EncodeToString(k.IV) + hex.EncodeToString(k.Key)
}

func (k Key) aead() (cipher.AEAD, error) {
	if len(k.Key) != KeySize {
		return nil, fmt.Errorf("%w: key of %d bytes", ErrBadFragment, len(k.Key))
	}
	block, err := aes.NewCipher(k.Key)
	if err != nil {
		return nil, fmt.Errorf("aesgcm: %w", err)
	}
	switch len(k.IV) {
	case IVSize:
		return cipher.NewGCM(block)
	case LegacyIVSize:
		return cipher.NewGCMWithNonceSize(block, LegacyIVSize)
	}
	return nil, fmt.Errorf("%w: IV of %d bytes", ErrBadFragment, len(k.IV))
}

// Seal encrypts plaintext under k: the ciphertext followed by the tag, as
// it is uploaded.
func Seal(k Key, plaintext []byte) ([]byte, error) {
	a, err := k.aead()
	if err != nil {
		return nil, err
	}
	return a.Seal(nil, k.IV, plaintext, nil), nil
}

// Open decrypts a downloaded file (ciphertext followed by the tag).
func Open(k Key, file []byte) ([]byte, error) {
	a, err := k.aead()
	if err != nil {
		return nil, err
	}
	if len(file) < TagSize {
		return nil, fmt.Errorf("%w (%d bytes)", ErrShort, len(file))
	}
	out, err := a.Open(nil, k.IV, file, nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// Encrypt encrypts plaintext under a fresh key.
func Encrypt(plaintext []byte) ([]byte, Key, error) {
	k, err := NewKey()
	if err != nil {
		return nil, Key{}, err
	}
	out, err := Seal(k, plaintext)
	return out, k, err
}

// Link turns the HTTPS GET URL of an uploaded ciphertext into the aesgcm://
// link for k.
func Link(getURL string, k Key) (string, error) {
	u, err := url.Parse(getURL)
	if err != nil {
		return "", fmt.Errorf("aesgcm: bad upload URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("aesgcm: upload URL %s is not https", u.Redacted())
	}
	u.Scheme = Scheme
	u.Fragment, u.RawFragment = "", ""
	return u.String() + "#" + k.Fragment(), nil
}

// Parse splits an aesgcm:// link into the HTTPS URL to download and the key.
func Parse(link string) (string, Key, error) {
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil || !strings.EqualFold(u.Scheme, Scheme) || u.Host == "" {
		return "", Key{}, ErrNotAESGCM
	}
	raw, err := hex.DecodeString(u.Fragment)
	if err != nil {
		return "", Key{}, fmt.Errorf("%w: not hex", ErrBadFragment)
	}
	var k Key
	switch len(raw) {
	case IVSize + KeySize:
		k = Key{IV: raw[:IVSize], Key: raw[IVSize:]}
	case LegacyIVSize + KeySize:
		k = Key{IV: raw[:LegacyIVSize], Key: raw[LegacyIVSize:]}
	default:
		return "", Key{}, fmt.Errorf("%w: %d bytes instead of %d or %d", ErrBadFragment, len(raw), IVSize+KeySize, LegacyIVSize+KeySize)
	}
	u.Scheme = "https"
	u.Fragment, u.RawFragment = "", ""
	return u.String(), k, nil
}

// IsLink reports whether s looks like an aesgcm:// link (it may still fail
// to parse).
func IsLink(s string) bool {
	return len(s) > len(Scheme)+3 && strings.EqualFold(s[:len(Scheme)+3], Scheme+"://")
}

// Redact returns link without its fragment (the key), for logs and notices.
func Redact(link string) string {
	if i := strings.IndexByte(link, '#'); i >= 0 {
		return link[:i] + "#…"
	}
	return link
}
