package omemo

import (
	"context"
	"errors"
	"sync"
)

var errNotImplemented = errors.New("omemo: not implemented yet")

// Manager is our OMEMO device: it owns the identity, prekeys, sessions and
// trust of one account's device, persisted through a Store. Its methods are
// safe for concurrent use; calls that change sessions are serialised.
type Manager struct {
	store  Store
	ownJID string
	opts   Options

	mu sync.Mutex
}

// NewManager returns a Manager for ownJID (a bare JID) on store. Call Setup
// before anything else.
func NewManager(store Store, ownJID string, opts Options) *Manager {
	return &Manager{store: store, ownJID: ownJID, opts: opts}
}

// Setup loads our identity, generating the identity key, device id, prekeys
// and signed prekey on first use; refills one-time prekeys, rotates the
// signed prekey when due and drops expired old ones. Call it at start and
// periodically (e.g. daily).
func (m *Manager) Setup(ctx context.Context) error { return errNotImplemented }

// DeviceID returns our device id (0 before Setup).
func (m *Manager) DeviceID() uint32 { return 0 }

// OwnJID returns the bare JID the Manager was created for.
func (m *Manager) OwnJID() string { return m.ownJID }

// IdentityKey returns our public identity key in v's wire form (raw 32 bytes:
// Curve25519 for V03, Ed25519 for V2).
func (m *Manager) IdentityKey(v Version) []byte { return nil }

// Fingerprint returns our own fingerprint (see the package-level Fingerprint).
func (m *Manager) Fingerprint() string { return "" }

// Bundle returns our current bundle for v, to publish on v.BundleNode.
func (m *Manager) Bundle(ctx context.Context, v Version) (*Bundle, error) {
	return nil, errNotImplemented
}

// Encrypt encrypts plaintext once and its key for every recipient device,
// starting sessions from the recipients' bundles where needed. Devices that
// fail (no session and no bundle, bad bundle signature, untrusted) are
// listed in errs and skipped; err is non-nil only when nothing could be
// encrypted (ErrNoRecipients) or the store failed. Our own device is skipped.
func (m *Manager) Encrypt(ctx context.Context, v Version, plaintext []byte, recipients []Recipient) (enc *Encrypted, errs map[Address]error, err error) {
	return nil, nil, errNotImplemented
}

// EncryptEmpty builds an empty message (no payload) for the recipients: a
// heartbeat, or a key-transport message to complete a new session.
func (m *Manager) EncryptEmpty(ctx context.Context, v Version, recipients []Recipient) (enc *Encrypted, errs map[Address]error, err error) {
	return nil, nil, errNotImplemented
}

// Decrypt decrypts the key addressed to our device in enc, sent by the bare
// JID senderJID, and the payload. On any error the stored state is
// unchanged.
func (m *Manager) Decrypt(ctx context.Context, enc *Encrypted, senderJID string) (*Decrypted, error) {
	return nil, errNotImplemented
}

// SetTrust stores the trust level of a device's identity key (either form
// for v).
func (m *Manager) SetTrust(ctx context.Context, v Version, addr Address, identityKey []byte, level TrustLevel) error {
	return errNotImplemented
}

// Trust returns the stored trust level of a device's identity key and
// whether it is trusted for sending under the Manager's policy.
func (m *Manager) Trust(ctx context.Context, v Version, addr Address, identityKey []byte) (level TrustLevel, trusted bool, err error) {
	return 0, false, errNotImplemented
}

// Devices returns the trust records known for jid (one per device and
// identity key seen).
func (m *Manager) Devices(ctx context.Context, jid string) ([]TrustRecord, error) {
	return m.store.TrustRecords(ctx, jid)
}

// HasSession reports whether a session with addr exists for v.
func (m *Manager) HasSession(ctx context.Context, v Version, addr Address) (bool, error) {
	rec, err := m.store.Session(ctx, v, addr)
	return rec != nil, err
}

// DeleteSession forgets the session with addr for v.
func (m *Manager) DeleteSession(ctx context.Context, v Version, addr Address) error {
	return m.store.RemoveSession(ctx, v, addr)
}

// CurveIdentityKey converts an identity key in v's wire form (32 bytes, or
// 33 with the 0x05 prefix for V03) to its Curve25519 form.
func CurveIdentityKey(v Version, key []byte) ([]byte, error) {
	return nil, errNotImplemented
}
