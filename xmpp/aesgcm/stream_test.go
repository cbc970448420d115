package aesgcm

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

// TestDecrypterMatchesOpen: streaming decryption gives what Open gives, for
// both IV sizes, many lengths and write sizes, and refuses what Open
// refuses.
func TestDecrypterMatchesOpen(t *testing.T) {
	for _, ivSize := range []int{IVSize, LegacyIVSize} {
		for _, size := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4096, 65537} {
			for _, chunk := range []int{1, 7, 16, 4096} {
				k := Key{IV: make([]byte, ivSize), Key: make([]byte, KeySize)}
				_, _ = rand.Read(k.IV)
				_, _ = rand.Read(k.Key)
				plain := make([]byte, size)
				_, _ = rand.Read(plain)
				file, err := Seal(k, plain)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				d, err := NewDecrypter(k, &out)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(file); i += chunk {
					if _, err := d.Write(file[i:min(len(file), i+chunk)]); err != nil {
						t.Fatal(err)
					}
				}
				if err := d.Close(); err != nil || !bytes.Equal(out.Bytes(), plain) {
					t.Fatalf("iv %d size %d chunk %d: %v, plaintext equal %v", ivSize, size, chunk, err, bytes.Equal(out.Bytes(), plain))
				}
				if size == 0 {
					continue
				}
				// A flipped bit anywhere fails at Close.
				for _, at := range []int{0, size / 2, len(file) - 1} {
					bad := bytes.Clone(file)
					bad[at] ^= 0x40
					d, _ := NewDecrypter(k, &bytes.Buffer{})
					_, _ = d.Write(bad)
					if err := d.Close(); !errors.Is(err, ErrDecrypt) {
						t.Fatalf("iv %d size %d: bit flipped at %d: %v", ivSize, size, at, err)
					}
				}
			}
		}
	}
	// Shorter than a tag.
	d, _ := NewDecrypter(Key{IV: make([]byte, IVSize), Key: make([]byte, KeySize)}, &bytes.Buffer{})
	_, _ = d.Write(make([]byte, TagSize-1))
	if err := d.Close(); !errors.Is(err, ErrShort) {
		t.Errorf("short file: %v", err)
	}
}

func BenchmarkDecrypter(b *testing.B) {
	k, _ := NewKey()
	plain := make([]byte, 1<<20)
	file, _ := Seal(k, plain)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		d, _ := NewDecrypter(k, discard{})
		_, _ = d.Write(file)
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestEncrypterMatchesSeal: streaming encryption gives what Seal gives.
func TestEncrypterMatchesSeal(t *testing.T) {
	for _, ivSize := range []int{IVSize, LegacyIVSize} {
		for _, size := range []int{0, 1, 15, 16, 17, 100, 4096, 65537} {
			for _, chunk := range []int{1, 13, 4096} {
				k := Key{IV: make([]byte, ivSize), Key: make([]byte, KeySize)}
				_, _ = rand.Read(k.IV)
				_, _ = rand.Read(k.Key)
				plain := make([]byte, size)
				_, _ = rand.Read(plain)
				want, err := Seal(k, plain)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				e, err := NewEncrypter(k, &out)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(plain); i += chunk {
					if _, err := e.Write(plain[i:min(len(plain), i+chunk)]); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.Close(); err != nil || !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("iv %d size %d chunk %d: %v, equal %v", ivSize, size, chunk, err, bytes.Equal(out.Bytes(), want))
				}
			}
		}
	}
}
