package aesgcm_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKnownAnswer is test case 15 of the GCM specification (McGrew and
// Viega): AES-256, 96-bit IV, no additional data.
func TestKnownAnswer(t *testing.T) {
	k := aesgcm.Key{
		Key: unhex(t, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
		IV:  unhex(t, "cafebabefacedbaddecaf888"),
	}
	plain := unhex(t, "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"+
		"1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
	want := unhex(t, "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"+
		"8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"+
		"b094dac5d93471bdec1a502270e3cc6c")
	got, err := aesgcm.Seal(k, plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("wrong ciphertext||tag:\nwant=%x\n got=%x", want, got)
	}
	link, err := aesgcm.Link("https://upload.example/a/b.bin", k)
	if err != nil {
		t.Fatal(err)
	}
	if wantLink := "aesgcm://upload.example/a/b.bin#cafebabefacedbaddecaf888feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"; link != wantLink {
		t.Fatalf("wrong link:\nwant=%s\n got=%s", wantLink, link)
	}
	getURL, k2, err := aesgcm.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if getURL != "https://upload.example/a/b.bin" {
		t.Errorf("wrong download URL %s", getURL)
	}
	back, err := aesgcm.Open(k2, got)
	if err != nil || !bytes.Equal(back, plain) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 4096} {
		plain := bytes.Repeat([]byte{0x5a}, n)
		ct, k, err := aesgcm.Encrypt(plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != n+aesgcm.TagSize || len(k.IV) != aesgcm.IVSize || len(k.Key) != aesgcm.KeySize {
			t.Fatalf("%d bytes: wrong sizes %d/%d/%d", n, len(ct), len(k.IV), len(k.Key))
		}
		if n >= 16 && bytes.Contains(ct, plain[:16]) {
			t.Fatalf("%d bytes: plaintext in the ciphertext", n)
		}
		out, err := aesgcm.Open(k, ct)
		if err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	_, k1, _ := aesgcm.Encrypt(nil)
	_, k2, _ := aesgcm.Encrypt(nil)
	if bytes.Equal(k1.Key, k2.Key) || bytes.Equal(k1.IV, k2.IV) {
		t.Fatal("two encryptions used the same key or IV")
	}
}

func TestLegacyIV(t *testing.T) {
	k := aesgcm.Key{IV: bytes.Repeat([]byte{1}, 16), Key: bytes.Repeat([]byte{2}, 32)}
	ct, err := aesgcm.Seal(k, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	_, k2, err := aesgcm.Parse("aesgcm://h/x#" + k.Fragment())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := aesgcm.Open(k2, ct); err != nil || string(out) != "hello" {
		t.Fatalf("16-byte IV: %q, %v", out, err)
	}
}

func TestBadInput(t *testing.T) {
	good := strings.Repeat("00", 12) + strings.Repeat("11", 32)
	for _, tc := range []struct {
		link string
		err  error
	}{
		{"https://h/x#" + good, aesgcm.ErrNotAESGCM},
		{"aesgcm:///x#" + good, aesgcm.ErrNotAESGCM},
		{"aesgcm://h/x", aesgcm.ErrBadFragment},
		{"aesgcm://h/x#zz" + good[2:], aesgcm.ErrBadFragment},
		{"aesgcm://h/x#" + good[:len(good)-2], aesgcm.ErrBadFragment},
		{"aesgcm://h/x#" + good + "00", aesgcm.ErrBadFragment},
	} {
		_, _, err := aesgcm.Parse(tc.link)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: want %v, got %v", tc.link, tc.err, err)
		}
		if err != nil && strings.Contains(err.Error(), good[24:]) {
			t.Errorf("%s: error leaks the key: %v", tc.link, err)
		}
	}

	ct, k, err := aesgcm.Encrypt([]byte("the file"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aesgcm.Open(k, ct[:aesgcm.TagSize-1]); !errors.Is(err, aesgcm.ErrShort) {
		t.Errorf("short file: %v", err)
	}
	wrong := aesgcm.Key{IV: k.IV, Key: bytes.Repeat([]byte{7}, 32)}
	if _, err := aesgcm.Open(wrong, ct); !errors.Is(err, aesgcm.ErrDecrypt) {
		t.Errorf("wrong key: %v", err)
	}
	ct[0] ^= 1
	if _, err := aesgcm.Open(k, ct); !errors.Is(err, aesgcm.ErrDecrypt) {
		t.Errorf("damaged file: %v", err)
	}
	if _, err := aesgcm.Open(aesgcm.Key{IV: k.IV, Key: k.Key[:16]}, ct); !errors.Is(err, aesgcm.ErrBadFragment) {
		t.Errorf("short key: %v", err)
	}
	if _, err := aesgcm.Link("http://h/x", k); err == nil {
		t.Error("http upload URL accepted")
	}
}

func TestRedact(t *testing.T) {
	if got := aesgcm.Redact("aesgcm://h/x#abcdef"); got != "aesgcm://h/x#…" {
		t.Errorf("Redact: %s", got)
	}
	if !aesgcm.IsLink("AESGCM://h/x") || aesgcm.IsLink("https://h/x") {
		t.Error("IsLink")
	}
}
