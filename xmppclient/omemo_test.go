package xmppclient

import (
	"testing"

	"mellium.im/xmpp/jid"
)

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

// TestDeviceFetchesDue: a contact's lists are fetched again only after
// their age passes the limit, or at once after Forget; room members have
// their own record.
func TestDeviceFetchesDue(t *testing.T) {
	var f DeviceFetches
	const bob = "bob@example.org"
	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"never fetched", func() bool { return f.due(&f.contacts, bob, DeviceListMaxAge, false) }, true},
		{"recorded", func() bool { return f.due(&f.contacts, bob, 0, true) }, true},
		{"fresh", func() bool { return f.due(&f.contacts, bob, DeviceListMaxAge, false) }, false},
		{"member record apart", func() bool { return f.due(&f.members, bob, MemberDevicesTTL, true) }, true},
		{"member fresh", func() bool { return f.due(&f.members, bob, MemberDevicesTTL, true) }, false},
		{"after Forget", func() bool {
			f.Forget(jid.MustParse(bob + "/phone"))
			return f.due(&f.contacts, bob, DeviceListMaxAge, false)
		}, true},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Errorf("%s: due %v, want %v", s.name, got, s.want)
		}
	}
}
