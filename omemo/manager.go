package omemo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultPreKeys              = 100
	DefaultSignedPreKeyRotation = 7 * 24 * time.Hour
	DefaultSignedPreKeyGrace    = 30 * 24 * time.Hour
)

// Manager is our OMEMO device: it owns the identity, prekeys, sessions and
// trust of one account's device, persisted through a Store. Its methods are
// safe for concurrent use; calls that touch sessions are serialised.
type Manager struct {
	store   Store
	matcher SessionMatcher // store, when it is one
	checker SessionChecker // store, when it is one
	ownJID  string
	opts    Options

	mu       sync.Mutex
	identity *Identity
	keys     *identityKeys
	// records caches decoded session records (see sessioncache.go).
	records map[cacheKey]*cachedRecord
	// lastRecord is the entry of records used last.
	lastRecord *cachedRecord
	// bundles caches verified signed prekeys (see bundlecache.go); our
	// identity is part of what it holds, so Setup empties it.
	bundles map[bundleKey]*verifiedSPK
}

// NewManager returns a Manager for ownJID (a bare JID) on store. Call Setup
// before anything else.
func NewManager(store Store, ownJID string, opts Options) *Manager {
	if opts.PreKeys <= 0 {
		opts.PreKeys = DefaultPreKeys
	}
	if opts.SignedPreKeyRotation <= 0 {
		opts.SignedPreKeyRotation = DefaultSignedPreKeyRotation
	}
	if opts.SignedPreKeyGrace <= 0 {
		opts.SignedPreKeyGrace = DefaultSignedPreKeyGrace
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	matcher, _ := store.(SessionMatcher)
	checker, _ := store.(SessionChecker)
	return &Manager{store: store, matcher: matcher, checker: checker, ownJID: ownJID, opts: opts}
}

// Setup loads our identity, generating the identity key, device id, prekeys
// and signed prekey on first use; refills one-time prekeys, rotates the
// signed prekey when due and drops replaced ones after the grace period.
// Call it at start and periodically (e.g. daily), then republish bundles.
func (m *Manager) Setup(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, err := m.store.Identity(ctx)
	if err != nil {
		return fmt.Errorf("failed to load identity: %w", err)
	}
	if id == nil {
		id, err = m.newIdentity()
		if err != nil {
			return err
		}
		if err := m.idsPastStoredKeys(ctx, id); err != nil {
			return err
		}
		// Stored before any key it signs: a setup killed after this finds
		// it again, instead of making a second identity beside signed
		// prekeys the first one signed.
		if err := m.store.PutIdentity(ctx, id); err != nil {
			return fmt.Errorf("failed to store identity: %w", err)
		}
	}
	keys, err := newIdentityKeys(id.PrivateKey)
	if err != nil {
		return err
	}
	m.identity, m.keys = id, keys
	m.bundles, m.records, m.lastRecord = nil, nil, nil
	if err := m.maintainSignedPreKeys(ctx); err != nil {
		return err
	}
	if _, err := m.refillPreKeys(ctx); err != nil {
		return err
	}
	return m.pruneBaseKeys(ctx)
}

// idsPastStoredKeys moves a new identity's next prekey ids past the keys an
// identity lost before it left in the store: without it the first refill
// after a consumed key could give a new key the id of one a peer already
// used (the refill raises the id only past the keys still stored).
func (m *Manager) idsPastStoredKeys(ctx context.Context, id *Identity) error {
	pks, err := m.store.PreKeys(ctx)
	if err != nil {
		return fmt.Errorf("failed to load prekeys: %w", err)
	}
	for _, k := range pks {
		id.NextPreKeyID = max(id.NextPreKeyID, k.ID+1)
	}
	spks, err := m.store.SignedPreKeys(ctx)
	if err != nil {
		return fmt.Errorf("failed to load signed prekeys: %w", err)
	}
	for _, k := range spks {
		id.NextSignedPreKeyID = max(id.NextSignedPreKeyID, k.ID+1)
	}
	return nil
}

func (m *Manager) newIdentity() (*Identity, error) {
	id := &Identity{PrivateKey: make([]byte, 32), NextPreKeyID: 1, NextSignedPreKeyID: 1}
	if _, err := io.ReadFull(m.opts.Rand, id.PrivateKey); err != nil {
		return nil, fmt.Errorf("failed to generate identity key: %w", err)
	}
	var b [4]byte
	for id.DeviceID == 0 {
		if _, err := io.ReadFull(m.opts.Rand, b[:]); err != nil {
			return nil, fmt.Errorf("failed to generate device id: %w", err)
		}
		id.DeviceID = binary.BigEndian.Uint32(b[:]) & 0x7FFFFFFF
	}
	return id, nil
}

// DeviceID returns our device id (0 before Setup).
func (m *Manager) DeviceID() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.identity == nil {
		return 0
	}
	return m.identity.DeviceID
}

// OwnJID returns the bare JID the Manager was created for.
func (m *Manager) OwnJID() string { return m.ownJID }

// IdentityKey returns our public identity key in v's wire form (raw 32 bytes:
// Curve25519 for V03, Ed25519 for V2); nil before Setup.
func (m *Manager) IdentityKey(v Version) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		return nil
	}
	k := m.keys.wire(v)
	return k[:]
}

// Fingerprint returns our own fingerprint (see the package-level
// Fingerprint); "" before Setup.
func (m *Manager) Fingerprint() string {
	k := m.IdentityKey(V03)
	if k == nil {
		return ""
	}
	fp, _ := Fingerprint(V03, k)
	return fp
}

// Bundle returns our current bundle for v, to publish on v.BundleNode.
func (m *Manager) Bundle(ctx context.Context, v Version) (*Bundle, error) {
	if !v.Valid() {
		return nil, malformed("version")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		return nil, ErrNoIdentity
	}
	spks, err := m.store.SignedPreKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to load signed prekeys: %w", err)
	}
	if len(spks) == 0 {
		return nil, ErrNoIdentity
	}
	cur := slices.MaxFunc(spks, func(a, b SignedPreKey) int { return int(a.Created - b.Created) })
	pks, err := m.store.PreKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to load prekeys: %w", err)
	}
	ik := m.keys.wire(v)
	b := &Bundle{Version: v, IdentityKey: ik[:], SignedPreKeyID: cur.ID, SignedPreKey: cur.Public}
	if v == V03 {
		b.SignedPreKeySignature = cur.SignatureV03
	} else {
		b.SignedPreKeySignature = cur.SignatureV2
	}
	b.PreKeys = make([]BundlePreKey, len(pks))
	for i, pk := range pks {
		b.PreKeys[i] = BundlePreKey{ID: pk.ID, Key: pk.Public}
	}
	return b, nil
}

// Encrypt encrypts plaintext once and its key for every recipient device,
// starting sessions from the recipients' bundles where needed. Devices that
// fail (no session and no bundle, bad bundle signature, untrusted) are
// listed in errs and skipped; err is non-nil only when nothing could be
// encrypted (ErrNoRecipients) or the store failed. Our own device is
// skipped silently. A nil plaintext makes an empty message.
func (m *Manager) Encrypt(ctx context.Context, v Version, plaintext []byte, recipients []Recipient) (enc *Encrypted, errs map[Address]error, err error) {
	if !v.Valid() {
		return nil, nil, malformed("version")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		return nil, nil, ErrNoIdentity
	}
	k := getKDF()
	defer putKDF(k)
	km, iv, payload, err := sealPayload(k, v, plaintext, m.opts.Rand)
	if err != nil {
		return nil, nil, err
	}
	// One recipient (the common case) shares the result's allocation.
	res := &struct {
		e    Encrypted
		keys [1]EncryptedKey
	}{e: Encrypted{Version: v, SenderDevice: m.identity.DeviceID, IV: iv, Payload: payload}}
	enc = &res.e
	if len(recipients) <= 1 {
		enc.Keys = res.keys[:0:1]
	} else {
		enc.Keys = make([]EncryptedKey, 0, len(recipients))
	}
	for _, r := range recipients {
		if r.JID == m.ownJID && r.Device == m.identity.DeviceID {
			continue
		}
		data, kex, err := m.encryptFor(ctx, k, v, r, km)
		if err != nil {
			if errs == nil {
				errs = make(map[Address]error)
			}
			errs[r.Address] = err
			if isStoreError(err) {
				return nil, errs, err
			}
			continue
		}
		jid := r.JID
		if v == V03 {
			jid = ""
		}
		enc.Keys = append(enc.Keys, EncryptedKey{JID: jid, Device: r.Device, KeyExchange: kex, Data: data})
	}
	if len(enc.Keys) == 0 {
		return nil, errs, ErrNoRecipients
	}
	return enc, errs, nil
}

// EncryptEmpty builds an empty message (no payload) for the recipients: a
// heartbeat, or a message completing a new session.
func (m *Manager) EncryptEmpty(ctx context.Context, v Version, recipients []Recipient) (*Encrypted, map[Address]error, error) {
	return m.Encrypt(ctx, v, nil, recipients)
}

type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func isStoreError(err error) bool {
	_, ok := err.(*storeError)
	return ok
}

func (m *Manager) encryptFor(ctx context.Context, k *kdf, v Version, r Recipient, km []byte) ([]byte, bool, error) {
	e, err := m.loadRecord(ctx, v, r.Address)
	if err != nil {
		return nil, false, err
	}
	rec := &e.rec
	var s *session
	if len(rec.sessions) > 0 {
		if s, err = rec.session(0); err != nil {
			return nil, false, fmt.Errorf("failed to load session with %s: %w", r.Address, err)
		}
	}
	if s == nil {
		if r.Bundle == nil {
			return nil, false, ErrNoSession
		}
		b := r.Bundle
		if b.Version != v {
			return nil, false, malformed("bundle version")
		}
		spk, err := m.verifiedBundle(b)
		if err != nil {
			return nil, false, fmt.Errorf("bundle of %s: %w", r.Address, err)
		}
		if len(b.PreKeys) == 0 {
			return nil, false, malformed("bundle without prekeys")
		}
		if err := m.checkTrust(ctx, v, r.Address, b.IdentityKey); err != nil {
			return nil, false, err
		}
		var idx [2]byte
		if _, err := io.ReadFull(m.opts.Rand, idx[:]); err != nil {
			return nil, false, fmt.Errorf("failed to read randomness: %w", err)
		}
		opk := &b.PreKeys[int(binary.BigEndian.Uint16(idx[:]))%len(b.PreKeys)]
		if s, err = initiate(k, m.keys, b, spk, opk, m.identity.DeviceID, m.opts.Rand); err != nil {
			return nil, false, fmt.Errorf("failed to start session with %s: %w", r.Address, err)
		}
		rec.push(s)
	} else {
		curve, err := s.curveIK()
		if err != nil {
			return nil, false, err
		}
		if err := m.checkTrustCurve(ctx, r.Address, curve); err != nil {
			return nil, false, err
		}
	}
	data, kex, err := s.encrypt(k, km)
	if err != nil {
		return nil, false, err
	}
	rec.set(0, s)
	if err := m.storeRecord(ctx, v, r.Address, e); err != nil {
		return nil, false, err
	}
	return data, kex, nil
}

// checkTrust records a first-seen identity per policy and fails with
// ErrUntrusted unless the identity may be encrypted for.
func (m *Manager) checkTrust(ctx context.Context, v Version, addr Address, ik []byte) error {
	var buf [32]byte
	curve, err := curveIdentityKey(buf[:0], v, ik)
	if err != nil {
		return err
	}
	return m.checkTrustCurve(ctx, addr, curve)
}

// checkTrustCurve is checkTrust for a key in Curve25519 form.
func (m *Manager) checkTrustCurve(ctx context.Context, addr Address, curve []byte) error {
	level, trusted, _, err := m.trustRecordCurve(ctx, addr, curve, true)
	if err != nil {
		return err
	}
	if !trusted {
		return fmt.Errorf("%w: %s is %s", ErrUntrusted, addr, level)
	}
	return nil
}

// trustRecord looks up the trust of (addr, ik), recording a first-seen
// identity when record is set. It returns the stored level, the effective
// trust, and whether ik is new for a device id that had another key.
//
// Blind trust (PolicyBTBV) needs: no verified device of the JID, no other
// key ever seen for this device id (a changed key is never trusted
// silently), and with ListedOnly the device in the JID's device list.
// These are checked each time, so an undecided key becomes blindly trusted
// once its device is listed, and never while another key of its device id
// is on record.
func (m *Manager) trustRecord(ctx context.Context, v Version, addr Address, ik []byte, record bool) (TrustLevel, bool, []byte, bool, error) {
	return m.trustRecordInto(ctx, v, addr, ik, record, nil)
}

// trustRecordInto is trustRecord with the Curve25519 key returned in
// curveBuf's storage when it has room.
func (m *Manager) trustRecordInto(ctx context.Context, v Version, addr Address, ik []byte, record bool, curveBuf *[32]byte) (TrustLevel, bool, []byte, bool, error) {
	var curve []byte
	var err error
	if curveBuf != nil {
		curve, err = curveIdentityKey(curveBuf[:0], v, ik)
	} else {
		curve, err = curveIdentityKey(nil, v, ik)
	}
	if err != nil {
		return 0, false, nil, false, err
	}
	level, trusted, changed, err := m.trustRecordCurve(ctx, addr, curve, record)
	if err != nil {
		return 0, false, nil, false, err
	}
	return level, trusted, curve, changed, nil
}

// trustRecordCurve is trustRecord for a key in Curve25519 form (kept only
// for the call: a record it stores gets a copy).
func (m *Manager) trustRecordCurve(ctx context.Context, addr Address, curve []byte, record bool) (TrustLevel, bool, bool, error) {
	recs, err := m.store.TrustRecords(ctx, addr.JID)
	if err != nil {
		return 0, false, false, &storeError{fmt.Errorf("failed to load trust of %s: %w", addr.JID, err)}
	}
	verified, changed := false, false
	found := -1
	for i, r := range recs {
		if r.Level == TrustVerified {
			verified = true
		}
		if r.Device == addr.Device {
			if bytes.Equal(r.IdentityKey, curve) {
				found = i
			} else {
				changed = true
			}
		}
	}
	blind := m.opts.Policy == PolicyBTBV && !verified && !changed
	if blind && (m.opts.ListedOnly || listedOnly(ctx)) {
		if blind, err = m.listed(ctx, addr); err != nil {
			return 0, false, false, err
		}
	}
	var level TrustLevel
	if found >= 0 {
		level = recs[found].Level
	} else {
		level = TrustUndecided
		if blind {
			level = TrustTrusted
		}
		if record {
			if err := m.store.PutTrust(ctx, TrustRecord{JID: addr.JID, Device: addr.Device, IdentityKey: bytes.Clone(curve), Level: level}); err != nil {
				return 0, false, false, &storeError{fmt.Errorf("failed to store trust of %s: %w", addr, err)}
			}
		}
	}
	trusted := level == TrustTrusted || level == TrustVerified || (level == TrustUndecided && blind)
	return level, trusted, changed && found < 0, nil
}

type listedOnlyKey struct{}

// ListedOnly returns ctx under which Decrypt trusts blindly only devices
// in the sender's stored device list, as Options.ListedOnly does for every
// call: for messages whose sender JID a third party asserts (a room
// service naming an occupant's real JID), where a device that JID never
// published must not be trusted under it.
func ListedOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, listedOnlyKey{}, true)
}

func listedOnly(ctx context.Context) bool {
	on, _ := ctx.Value(listedOnlyKey{}).(bool)
	return on
}

// listed reports whether addr's device is in its JID's stored device list
// of either version.
func (m *Manager) listed(ctx context.Context, addr Address) (bool, error) {
	for _, v := range []Version{V2, V03} {
		list, err := m.store.DeviceList(ctx, v, addr.JID)
		if err != nil {
			return false, &storeError{fmt.Errorf("failed to load device list of %s: %w", addr.JID, err)}
		}
		for _, d := range list {
			if d.ID == addr.Device {
				return true, nil
			}
		}
	}
	return false, nil
}

// SetTrust stores the trust level of a device's identity key (in v's wire
// form, or Curve25519 form with V03).
func (m *Manager) SetTrust(ctx context.Context, v Version, addr Address, identityKey []byte, level TrustLevel) error {
	if level < TrustUndecided || level > TrustDistrusted {
		return malformed("trust level")
	}
	curve, err := CurveIdentityKey(v, identityKey)
	if err != nil {
		return err
	}
	if err := m.store.PutTrust(ctx, TrustRecord{JID: addr.JID, Device: addr.Device, IdentityKey: curve, Level: level}); err != nil {
		return fmt.Errorf("failed to store trust of %s: %w", addr, err)
	}
	return nil
}

// Trust returns the stored trust level of a device's identity key and
// whether it is trusted for sending under the Manager's policy.
func (m *Manager) Trust(ctx context.Context, v Version, addr Address, identityKey []byte) (level TrustLevel, trusted bool, err error) {
	level, trusted, _, _, err = m.trustRecord(ctx, v, addr, identityKey, false)
	return level, trusted, err
}

// Devices returns the trust records known for jid (one per device and
// identity key seen).
func (m *Manager) Devices(ctx context.Context, jid string) ([]TrustRecord, error) {
	recs, err := m.store.TrustRecords(ctx, jid)
	// The caller's own slice: a Store may hand out what it keeps.
	return slices.Clone(recs), err
}

// HasSession reports whether a session with addr exists for v.
func (m *Manager) HasSession(ctx context.Context, v Version, addr Address) (bool, error) {
	if m.checker != nil {
		return m.checker.HasSession(ctx, v, addr)
	}
	rec, err := m.store.Session(ctx, v, addr)
	return rec != nil, err
}

// DeleteSession forgets the session with addr for v (including archived
// ones); the next Encrypt needs a bundle.
func (m *Manager) DeleteSession(ctx context.Context, v Version, addr Address) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetRecord(v, addr)
	return m.store.RemoveSession(ctx, v, addr)
}
