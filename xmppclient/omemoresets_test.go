package xmppclient

import (
	"fmt"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

func TestSessionResetsDue(t *testing.T) {
	bob := omemo.Address{JID: "bob@example.org", Device: 7}
	for _, tc := range []struct {
		name string
		errs []error
		want []bool
	}{
		{"no session resets at once", []error{omemo.ErrNoSession}, []bool{true}},
		{"unknown prekey resets at once", []error{omemo.ErrUnknownPreKey}, []bool{true}},
		{"once per interval", []error{omemo.ErrNoSession, omemo.ErrNoSession}, []bool{true, false}},
		{"bad MACs in a row", []error{omemo.ErrBadMAC, omemo.ErrBadMAC, omemo.ErrBadMAC}, []bool{false, false, true}},
		{"a good message starts the count over", []error{omemo.ErrBadMAC, omemo.ErrBadMAC, nil, omemo.ErrBadMAC, omemo.ErrBadMAC}, []bool{false, false, false, false, false}},
		{"other errors never", []error{omemo.ErrDuplicate, fmt.Errorf("x")}, []bool{false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r SessionResets
			for i, err := range tc.errs {
				if got := r.Due(bob, err); got != tc.want[i] {
					t.Errorf("message %d (%v): due = %v, want %v", i, err, got, tc.want[i])
				}
			}
		})
	}
}

// TestSessionResetsFlood: strangers inventing device ids fill the record
// only up to its bound; then no more resets are due.
func TestSessionResetsFlood(t *testing.T) {
	var r SessionResets
	due := 0
	for i := range 3 * resetStateMax {
		if r.Due(omemo.Address{JID: "flood@example.org", Device: uint32(i + 1)}, omemo.ErrNoSession) {
			due++
		}
	}
	if due != resetStateMax {
		t.Errorf("%d resets due in a flood, want %d", due, resetStateMax)
	}
	if len(r.resets) > resetStateMax {
		t.Errorf("%d devices recorded, want at most %d", len(r.resets), resetStateMax)
	}
}
