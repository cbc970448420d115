package omemoxmpp

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// Sentinel errors. The engine's own (omemo.ErrNotForThisDevice,
// omemo.ErrUntrusted, omemo.ErrBadMAC, omemo.ErrDuplicate,
// omemo.ErrMalformed, …) come through wrapped; test with errors.Is.
var (
	// ErrNoDevices: the contact has published no OMEMO device (for any
	// version we speak), so nothing can be encrypted for them.
	ErrNoDevices = errors.New("omemoxmpp: contact has no OMEMO device")
	// ErrNoTrustedDevices: the contact has devices, but none could be
	// encrypted for (untrusted, no bundle, bad bundle). The message must not
	// be sent in plaintext instead.
	ErrNoTrustedDevices = errors.New("omemoxmpp: no trusted device of the contact could be encrypted for")
	// ErrNotEncrypted: the stanza has no <encrypted/> element.
	ErrNotEncrypted = errors.New("omemoxmpp: message is not OMEMO-encrypted")
	// ErrNoBundle: a device's bundle is not published (or not readable).
	ErrNoBundle = errors.New("omemoxmpp: no bundle published")
	// ErrMalformed: a stanza, item or envelope that does not follow XEP-0384.
	ErrMalformed = errors.New("omemoxmpp: malformed element")

	errInvalidVersion = errors.New("omemoxmpp: invalid OMEMO version")
)

// DeviceError reports why devices could not be encrypted for. It wraps
// ErrNoTrustedDevices (when Devices is not empty) so callers can use
// errors.Is, and errors.As gives the per-device reasons for a notice.
type DeviceError struct {
	// JID is the contact's bare JID.
	JID string
	// Devices maps every failed device to its reason (omemo.ErrUntrusted,
	// ErrNoBundle, omemo.ErrBadSignature, …).
	Devices map[omemo.Address]error
}

func (e *DeviceError) Error() string {
	addrs := make([]omemo.Address, 0, len(e.Devices))
	for a := range e.Devices {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool {
		if addrs[i].JID != addrs[j].JID {
			return addrs[i].JID < addrs[j].JID
		}
		return addrs[i].Device < addrs[j].Device
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%s for %s", ErrNoTrustedDevices.Error(), e.JID)
	for i, a := range addrs {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", a, e.Devices[a])
	}
	return b.String()
}

// Unwrap returns ErrNoTrustedDevices.
func (e *DeviceError) Unwrap() error { return ErrNoTrustedDevices }
