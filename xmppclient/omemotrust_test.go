package xmppclient

import "testing"

func TestNormalizeFingerprint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0A1B2C3D 4e5f:6a7b", "0a1b2c3d4e5f6a7b"},
		{"  0a1b\t2c3d  ", "0a1b2c3d"},
		{"", ""},
	} {
		if got := normalizeFingerprint(tc.in); got != tc.want {
			t.Errorf("normalizeFingerprint(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
