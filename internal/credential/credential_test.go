package credential

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func mustKey(t *testing.T) *Key {
	t.Helper()
	s, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"std", base64.StdEncoding.EncodeToString(raw), true},
		{"raw std", base64.RawStdEncoding.EncodeToString(raw), true},
		{"url", base64.URLEncoding.EncodeToString(raw), true},
		{"surrounding space", " " + base64.StdEncoding.EncodeToString(raw) + "\n", true},
		{"empty", "", false},
		{"placeholder", "generate", false},
		{"short", base64.StdEncoding.EncodeToString(raw[:16]), false},
		{"long", base64.StdEncoding.EncodeToString(append(raw, 0)), false},
		{"not base64", strings.Repeat("!", 44), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey(tc.in)
			if tc.ok && (err != nil || k == nil) {
				t.Fatalf("ParseKey = %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadKey) {
				t.Fatalf("ParseKey = %v, want ErrBadKey", err)
			}
		})
	}
	a, _ := ParseKey(base64.StdEncoding.EncodeToString(raw))
	b, _ := ParseKey(base64.RawURLEncoding.EncodeToString(raw))
	if a.ID() != b.ID() || len(a.ID()) != 8 {
		t.Errorf("key ids %q and %q of the same key", a.ID(), b.ID())
	}
}

func TestSealOpen(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	const ad, pw = "alice@example.org", "correct horse battery staple ✓"
	sealed, err := key.Seal(pw, ad)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, pw) || !strings.HasPrefix(sealed, "v1:"+key.ID()+":") {
		t.Fatalf("sealed = %q", sealed)
	}
	if again, _ := key.Seal(pw, ad); again == sealed {
		t.Error("two seals of the same password are equal: the nonce is not random")
	}
	// tamper flips one bit of the ciphertext part.
	tamper := func(s string) string {
		i := strings.LastIndex(s, ":") + 1
		raw, err := base64.RawStdEncoding.DecodeString(s[i:])
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-1] ^= 1
		return s[:i] + base64.RawStdEncoding.EncodeToString(raw)
	}
	for _, tc := range []struct {
		name   string
		key    *Key
		sealed string
		ad     string
		want   error
	}{
		{"round trip", key, sealed, ad, nil},
		{"wrong key", other, sealed, ad, ErrWrongKey},
		{"no key", nil, sealed, ad, ErrNoKey},
		{"tampered ciphertext", key, tamper(sealed), ad, ErrTampered},
		{"key id of another key", key, strings.Replace(sealed, key.ID(), other.ID(), 1), ad, ErrWrongKey},
		{"wrong associated data", key, sealed, "mallory@example.org", ErrTampered},
		{"unknown version", key, "v2" + sealed[2:], ad, ErrBadEncoding},
		{"no key id", key, "v1:" + sealed[strings.LastIndex(sealed, ":")+1:], ad, ErrBadEncoding},
		{"not base64", key, "v1:" + key.ID() + ":***", ad, ErrBadEncoding},
		{"too short", key, "v1:" + key.ID() + ":AAAA", ad, ErrBadEncoding},
		{"plaintext", key, pw, ad, ErrBadEncoding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.key.Open(tc.sealed, tc.ad)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.want)
			}
			if tc.want == nil && got != pw {
				t.Fatalf("Open = %q, want %q", got, pw)
			}
			if err != nil && (got != "" || strings.Contains(err.Error(), pw)) {
				t.Fatalf("a failed Open gave away %q / %v", got, err)
			}
		})
	}
	if _, err := (*Key)(nil).Seal(pw, ad); !errors.Is(err, ErrNoKey) {
		t.Errorf("Seal without a key = %v", err)
	}
}

func TestPassword(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	const ad = "alice@example.org"
	sealed, err := key.Seal("new-secret", ad)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		key            *Key
		sealed, legacy string
		want           string
		reseal         bool
		err            error
	}{
		{"sealed", key, sealed, "", "new-secret", false, nil},
		{"legacy plaintext", key, "", "old-secret", "old-secret", true, nil},
		{"legacy plaintext without key", nil, "", "old-secret", "old-secret", true, nil},
		{"legacy wins over sealed", key, sealed, "old-secret", "old-secret", true, nil},
		{"sealed with another key", other, sealed, "", "", false, ErrWrongKey},
		{"sealed without key", nil, sealed, "", "", false, ErrNoKey},
		{"nothing stored", key, "", "", "", false, ErrNoPassword},
		{"garbage", key, "v1:zz", "", "", false, ErrBadEncoding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reseal, err := Password(tc.key, tc.sealed, tc.legacy, ad)
			if !errors.Is(err, tc.err) || got != tc.want || reseal != tc.reseal {
				t.Fatalf("Password = %q, %v, %v; want %q, %v, %v", got, reseal, err, tc.want, tc.reseal, tc.err)
			}
		})
	}
}
