package credential

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// version is the prefix of the current format.
const version = "v1"

// Errors of the package; callers decide on them with errors.Is.
var (
	ErrBadKey      = errors.New("credential: the key must be 32 random bytes in base64")
	ErrNoKey       = errors.New("credential: no credential key is configured")
	ErrWrongKey    = errors.New("credential: the password was stored with a different credential key")
	ErrTampered    = errors.New("credential: the stored password was altered or belongs to another login")
	ErrBadEncoding = errors.New("credential: the stored password is not in a known format")
	ErrNoPassword  = errors.New("credential: no password is stored")
)

// Key seals and opens passwords.
type Key struct {
	aead cipher.AEAD
	id   string
}

// GenerateKey returns a new random key in the form ParseKey reads.
func GenerateKey() (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("failed to read random bytes: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// ParseKey reads a base64 key (standard or URL alphabet, padded or not).
func ParseKey(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			raw = b
			break
		}
	}
	if len(raw) != KeySize {
		return nil, ErrBadKey
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	// A short hash under its own label: enough to tell keys apart, useless
	// for guessing one.
	sum := sha256.Sum256(append([]byte("mxomemo-xmpp-bridge credential key id\x00"), raw...))
	return &Key{aead: aead, id: hex.EncodeToString(sum[:4])}, nil
}

// ID is the key's short id, as written into sealed passwords.
func (k *Key) ID() string {
	return k.id
}

// Seal encrypts password for the login named by ad.
func (k *Key) Seal(password, ad string) (string, error) {
	if k == nil {
		return "", ErrNoKey
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(password)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("failed to read random bytes: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, []byte(password), []byte(ad))
	return version + ":" + k.id + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal returned for the same ad.
func (k *Key) Open(sealed, ad string) (string, error) {
	if k == nil {
		return "", ErrNoKey
	}
	ver, rest, ok := strings.Cut(sealed, ":")
	if !ok || ver != version {
		return "", ErrBadEncoding
	}
	id, data, ok := strings.Cut(rest, ":")
	if !ok {
		return "", ErrBadEncoding
	}
	raw, err := base64.RawStdEncoding.DecodeString(data)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return "", ErrBadEncoding
	}
	if id != k.id {
		return "", ErrWrongKey
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return "", ErrTampered
	}
	return string(plain), nil
}

// Password is the password of a stored login: legacy is a plaintext
// password from before encryption, which wins when present (reseal then
// says that the caller should seal it and drop the plaintext); otherwise
// sealed is opened.
func Password(k *Key, sealed, legacy, ad string) (password string, reseal bool, err error) {
	if legacy != "" {
		return legacy, true, nil
	}
	if sealed == "" {
		return "", false, ErrNoPassword
	}
	password, err = k.Open(sealed, ad)
	return password, false, err
}
