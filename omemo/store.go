package omemo

import "context"

// Identity is our own device. PrivateKey is the 32-byte Ed25519 seed from
// which both public forms derive.
type Identity struct {
	DeviceID   uint32
	PrivateKey []byte
	// NextPreKeyID and NextSignedPreKeyID are the ids the next generated
	// keys get; ids are never reused.
	NextPreKeyID       uint32
	NextSignedPreKeyID uint32
}

// PreKey is a one-time prekey: 32-byte Curve25519 private and public keys.
type PreKey struct {
	ID      uint32
	Private []byte
	Public  []byte
}

// SignedPreKey is a signed prekey with its signature for each version
// (XEdDSA over 0x05||Public for V03, Ed25519 over Public for V2).
type SignedPreKey struct {
	ID           uint32
	Private      []byte
	Public       []byte
	SignatureV03 []byte
	SignatureV2  []byte
	// Created is the creation time in Unix seconds.
	Created int64
}

// Device is one entry of a device list.
type Device struct {
	ID    uint32
	Label string // V2 only; may be empty
}

// TrustRecord is the trust of one identity key of one device. IdentityKey is
// the 32-byte Curve25519 form.
type TrustRecord struct {
	JID         string
	Device      uint32
	IdentityKey []byte
	Level       TrustLevel
}

// Store persists a Manager's state. Every method gets the caller's context,
// so an implementation may run the call in a transaction carried there.
// Getters return nil (and no error) when the item is absent. The engine may
// reuse values after handing them to a Put method, so implementations copy
// what they keep; values returned by getters are not modified by the engine.
type Store interface {
	// Identity returns our identity, or nil before the first Setup.
	Identity(ctx context.Context) (*Identity, error)
	PutIdentity(ctx context.Context, id *Identity) error

	PreKey(ctx context.Context, id uint32) (*PreKey, error)
	PreKeys(ctx context.Context) ([]PreKey, error)
	PutPreKeys(ctx context.Context, keys []PreKey) error
	RemovePreKey(ctx context.Context, id uint32) error

	SignedPreKey(ctx context.Context, id uint32) (*SignedPreKey, error)
	SignedPreKeys(ctx context.Context) ([]SignedPreKey, error)
	PutSignedPreKey(ctx context.Context, key *SignedPreKey) error
	RemoveSignedPreKey(ctx context.Context, id uint32) error

	// Session returns the engine's opaque session record for the device.
	Session(ctx context.Context, v Version, addr Address) ([]byte, error)
	PutSession(ctx context.Context, v Version, addr Address, record []byte) error
	RemoveSession(ctx context.Context, v Version, addr Address) error

	// DeviceList returns the last known device list of jid, nil if unknown.
	DeviceList(ctx context.Context, v Version, jid string) ([]Device, error)
	PutDeviceList(ctx context.Context, v Version, jid string, devices []Device) error

	// TrustRecords returns every trust record of jid.
	TrustRecords(ctx context.Context, jid string) ([]TrustRecord, error)
	// PutTrust inserts or replaces the record for (JID, Device, IdentityKey).
	PutTrust(ctx context.Context, rec TrustRecord) error
}

// SessionMatcher is optionally implemented by a Store. SessionMatches
// reports whether the stored record of addr is byte for byte record,
// without handing out a copy. Before it reuses a decoded session (see
// sessioncache.go) the Manager asks this instead of loading the record,
// which lets a Store that keeps records in memory overwrite them in place;
// on false (or without SessionMatcher) it loads the record with Session.
type SessionMatcher interface {
	SessionMatches(ctx context.Context, v Version, addr Address, record []byte) (bool, error)
}

// SessionChecker is optionally implemented by a Store. HasSession reports
// whether a record of addr is stored, without loading it: Manager.HasSession
// asks it before every send (a bundle is fetched when there is none), and
// the encryption then loads the record anyway.
type SessionChecker interface {
	HasSession(ctx context.Context, v Version, addr Address) (bool, error)
}
