package omemo

import (
	"encoding/hex"
	"io"
	"strconv"
	"time"
)

// Version selects the OMEMO wire profile.
type Version int

// The two supported versions. The zero value is invalid.
const (
	V03 Version = 1 // eu.siacs.conversations.axolotl ("oldmemo", XEP-0384 v0.3)
	V2  Version = 2 // urn:xmpp:omemo:2 ("twomemo", XEP-0384 v0.8+)
)

// Namespaces of the two versions.
const (
	NamespaceV03 = "eu.siacs.conversations.axolotl"
	NamespaceV2  = "urn:xmpp:omemo:2"
)

// Namespace returns the XML namespace of v, or "" when v is invalid.
func (v Version) Namespace() string {
	switch v {
	case V03:
		return NamespaceV03
	case V2:
		return NamespaceV2
	}
	return ""
}

// String returns "0.3" or "2".
func (v Version) String() string {
	switch v {
	case V03:
		return "0.3"
	case V2:
		return "2"
	}
	return "invalid(" + strconv.Itoa(int(v)) + ")"
}

// Valid reports whether v is V03 or V2.
func (v Version) Valid() bool { return v == V03 || v == V2 }

// VersionOf maps a namespace to its Version; ok is false for other namespaces.
func VersionOf(namespace string) (v Version, ok bool) {
	switch namespace {
	case NamespaceV03:
		return V03, true
	case NamespaceV2:
		return V2, true
	}
	return 0, false
}

// DeviceListNode is the PEP node holding the device list (item id "current").
func (v Version) DeviceListNode() string {
	if v == V03 {
		return NamespaceV03 + ".devicelist"
	}
	return NamespaceV2 + ":devices"
}

// BundleNode is the PEP node of device's bundle. For V03 the item id is
// "current"; for V2 all bundles share one node and the item id is the device id.
func (v Version) BundleNode(device uint32) string {
	if v == V03 {
		return NamespaceV03 + ".bundles:" + strconv.FormatUint(uint64(device), 10)
	}
	return NamespaceV2 + ":bundles"
}

// Address names one device of one bare JID.
type Address struct {
	JID    string
	Device uint32
}

// String returns "jid/device" for logs.
func (a Address) String() string { return a.JID + "/" + strconv.FormatUint(uint64(a.Device), 10) }

// Recipient is a device to encrypt for. Bundle, when set, starts a new
// session if none exists (it is ignored when a session exists).
type Recipient struct {
	Address
	Bundle *Bundle
}

// TrustLevel is the stored trust of one (JID, device, identity key).
type TrustLevel int

// Trust levels. Undecided is what Manual policy gives a new identity.
const (
	TrustUndecided TrustLevel = iota
	TrustTrusted
	TrustVerified
	TrustDistrusted
)

// String returns the level's lower-case name.
func (t TrustLevel) String() string {
	switch t {
	case TrustUndecided:
		return "undecided"
	case TrustTrusted:
		return "trusted"
	case TrustVerified:
		return "verified"
	case TrustDistrusted:
		return "distrusted"
	}
	return "invalid(" + strconv.Itoa(int(t)) + ")"
}

// TrustPolicy decides what a newly seen identity key gets.
type TrustPolicy int

const (
	// PolicyBTBV is blind trust before verification: a new identity is
	// trusted unless its JID already has a verified device.
	PolicyBTBV TrustPolicy = iota
	// PolicyManual leaves new identities undecided (not used for sending).
	PolicyManual
)

// Options tune a Manager. The zero value gives the defaults.
type Options struct {
	Policy TrustPolicy
	// PreKeys is the number of one-time prekeys kept published (default 100).
	PreKeys int
	// SignedPreKeyRotation is the signed prekey's age at which Setup
	// replaces it (default 7 days).
	SignedPreKeyRotation time.Duration
	// SignedPreKeyGrace is how long a replaced signed prekey is kept for
	// late key exchanges (default 30 days).
	SignedPreKeyGrace time.Duration
	// Rand is the randomness source (default crypto/rand.Reader).
	Rand io.Reader
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ListedOnly limits blind trust (PolicyBTBV) to devices in the
	// sender's stored device list (Store.DeviceList, either version): a
	// session from a device its account never published (asserted by a
	// room service, say) stays undecided.
	ListedOnly bool
}

// Decrypted is the result of Manager.Decrypt.
type Decrypted struct {
	Version Version
	Sender  Address
	// Plaintext is nil for empty messages (key transport, heartbeats); such
	// messages must never be shown as chat messages. For V2 it is the SCE
	// envelope (see ParseEnvelope).
	Plaintext []byte
	// KeyMaterial is the raw key material of an empty V03 message
	// (KeyTransportElement); nil otherwise.
	KeyMaterial []byte
	// IdentityKey is the sender's identity key in Curve25519 form, the form
	// trust records and fingerprints use.
	IdentityKey []byte
	// Trust is the stored level; Trusted applies the policy to it.
	Trust   TrustLevel
	Trusted bool
	// KeyChanged is set the first time an identity key is seen for a
	// device id that had another one: that key is never trusted blindly,
	// and the user must be told.
	KeyChanged bool
	// NewSession is set when this message started (or replaced) a session.
	NewSession bool
	// PreKeyConsumed is set when a one-time prekey was used up: the caller
	// should republish our bundle (Manager.Bundle) for this version.
	PreKeyConsumed bool
	// SendHeartbeat is set when the caller should answer with an empty
	// message (Manager.EncryptEmpty) to the sender device so the ratchet
	// moves on: after a key exchange, and when more than 53 messages arrived
	// on one chain without a reply (OMEMO 2's rule, applied to both
	// versions as python-omemo does).
	SendHeartbeat bool
}

// Fingerprint formats an identity key (either form) as the lower-case hex of
// its Curve25519 form in groups of 8, as clients display it.
func Fingerprint(v Version, identityKey []byte) (string, error) {
	k, err := CurveIdentityKey(v, identityKey)
	if err != nil {
		return "", err
	}
	h := hex.EncodeToString(k)
	out := make([]byte, 0, len(h)+len(h)/8)
	for i := 0; i < len(h); i += 8 {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, h[i:i+8]...)
	}
	return string(out), nil
}
