package omemo

// go.mau.fi/libsignal as an independent oracle for the OMEMO 0.3 wire
// format: its sessions talk to ours byte for byte in both directions.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"go.mau.fi/libsignal/ecc"
	groupRecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	lssession "go.mau.fi/libsignal/session"
	lsrecord "go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/keyhelper"
	"go.mau.fi/libsignal/util/optional"
)

// lsStore is a minimal libsignal protocol store keyed by address string.
type lsStore struct {
	ser      *serialize.Serializer
	ik       *identity.KeyPair
	regID    uint32
	sessions map[string]*lsrecord.Session
	preKeys  map[uint32]*lsrecord.PreKey
	spks     map[uint32]*lsrecord.SignedPreKey
}

func (s *lsStore) GetIdentityKeyPair() *identity.KeyPair { return s.ik }
func (s *lsStore) GetLocalRegistrationID() uint32        { return s.regID }
func (s *lsStore) SaveIdentity(context.Context, *protocol.SignalAddress, *identity.Key) error {
	return nil
}
func (s *lsStore) IsTrustedIdentity(context.Context, *protocol.SignalAddress, *identity.Key) (bool, error) {
	return true, nil
}
func (s *lsStore) LoadPreKey(_ context.Context, id uint32) (*lsrecord.PreKey, error) {
	return s.preKeys[id], nil
}
func (s *lsStore) StorePreKey(_ context.Context, id uint32, r *lsrecord.PreKey) error {
	s.preKeys[id] = r
	return nil
}
func (s *lsStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := s.preKeys[id]
	return ok, nil
}
func (s *lsStore) RemovePreKey(_ context.Context, id uint32) error {
	delete(s.preKeys, id)
	return nil
}
func (s *lsStore) LoadSession(_ context.Context, a *protocol.SignalAddress) (*lsrecord.Session, error) {
	if r, ok := s.sessions[a.String()]; ok {
		return r, nil
	}
	r := lsrecord.NewSession(s.ser.Session, s.ser.State)
	s.sessions[a.String()] = r
	return r, nil
}
func (s *lsStore) GetSubDeviceSessions(context.Context, string) ([]uint32, error) { return nil, nil }
func (s *lsStore) StoreSession(_ context.Context, a *protocol.SignalAddress, r *lsrecord.Session) error {
	s.sessions[a.String()] = r
	return nil
}
func (s *lsStore) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok := s.sessions[a.String()]
	return ok, nil
}
func (s *lsStore) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	delete(s.sessions, a.String())
	return nil
}
func (s *lsStore) DeleteAllSessions(context.Context) error {
	s.sessions = map[string]*lsrecord.Session{}
	return nil
}
func (s *lsStore) LoadSignedPreKey(_ context.Context, id uint32) (*lsrecord.SignedPreKey, error) {
	return s.spks[id], nil
}
func (s *lsStore) LoadSignedPreKeys(context.Context) ([]*lsrecord.SignedPreKey, error) {
	var out []*lsrecord.SignedPreKey
	for _, r := range s.spks {
		out = append(out, r)
	}
	return out, nil
}
func (s *lsStore) StoreSignedPreKey(_ context.Context, id uint32, r *lsrecord.SignedPreKey) error {
	s.spks[id] = r
	return nil
}
func (s *lsStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := s.spks[id]
	return ok, nil
}
func (s *lsStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	delete(s.spks, id)
	return nil
}
func (s *lsStore) StoreSenderKey(context.Context, *protocol.SenderKeyName, *groupRecord.SenderKey) error {
	return nil
}
func (s *lsStore) LoadSenderKey(context.Context, *protocol.SenderKeyName) (*groupRecord.SenderKey, error) {
	return nil, nil
}

// lsPeer is a libsignal device.
type lsPeer struct {
	store   *lsStore
	jid     string
	device  uint32
	preKeys []*lsrecord.PreKey
	spk     *lsrecord.SignedPreKey
	builder map[string]*lssession.Builder
}

func newLSPeer(t testing.TB, jid string, device uint32) *lsPeer {
	t.Helper()
	ser := serialize.NewProtoBufSerializer()
	ik, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	st := &lsStore{ser: ser, ik: ik, regID: device, sessions: map[string]*lsrecord.Session{},
		preKeys: map[uint32]*lsrecord.PreKey{}, spks: map[uint32]*lsrecord.SignedPreKey{}}
	pks, err := keyhelper.GeneratePreKeys(1, 20, ser.PreKeyRecord)
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range pks {
		st.preKeys[pk.ID().Value] = pk
	}
	spk, err := keyhelper.GenerateSignedPreKey(ik, 7, ser.SignedPreKeyRecord)
	if err != nil {
		t.Fatal(err)
	}
	st.spks[spk.ID()] = spk
	return &lsPeer{store: st, jid: jid, device: device, preKeys: pks, spk: spk, builder: map[string]*lssession.Builder{}}
}

func (l *lsPeer) addr() Address { return Address{JID: l.jid, Device: l.device} }

func (l *lsPeer) cipher(a Address) *lssession.Cipher {
	sa := protocol.NewSignalAddress(a.JID, a.Device)
	b, ok := l.builder[sa.String()]
	if !ok {
		b = lssession.NewBuilderFromSignal(l.store, sa, l.store.ser)
		l.builder[sa.String()] = b
	}
	return lssession.NewCipher(b, sa)
}

// bundle returns l's bundle in our type, as its XML would carry it.
func (l *lsPeer) bundle() *Bundle {
	ikPub := l.store.ik.PublicKey().PublicKey().PublicKey()
	spkPub := l.spk.KeyPair().PublicKey().PublicKey()
	sig := l.spk.Signature()
	b := &Bundle{Version: V03, IdentityKey: bytes.Clone(ikPub[:]), SignedPreKeyID: l.spk.ID(),
		SignedPreKey: bytes.Clone(spkPub[:]), SignedPreKeySignature: bytes.Clone(sig[:])}
	for _, pk := range l.preKeys {
		pub := pk.KeyPair().PublicKey().PublicKey()
		b.PreKeys = append(b.PreKeys, BundlePreKey{ID: pk.ID().Value, Key: bytes.Clone(pub[:])})
	}
	return b
}

func (l *lsPeer) sigAddr() *protocol.SignalAddress { return protocol.NewSignalAddress(l.jid, l.device) }

// processBundle starts a libsignal session with another libsignal peer.
func (l *lsPeer) processBundle(t testing.TB, to *lsPeer, b *Bundle) {
	t.Helper()
	pk := b.PreKeys[0]
	bundle := prekey.NewBundle(to.device, to.device, optional.NewOptionalUint32(pk.ID), b.SignedPreKeyID,
		ecc.NewDjbECPublicKey([32]byte(pk.Key)), ecc.NewDjbECPublicKey([32]byte(b.SignedPreKey)),
		[64]byte(b.SignedPreKeySignature), identity.NewKey(ecc.NewDjbECPublicKey([32]byte(b.IdentityKey))))
	l.cipher(to.addr())
	if err := l.builder[to.sigAddr().String()].ProcessBundle(context.Background(), bundle); err != nil {
		t.Fatalf("libsignal ProcessBundle: %v", err)
	}
}

// processOurBundle starts a libsignal session from our bundle.
func (l *lsPeer) processOurBundle(t testing.TB, p *peer) {
	t.Helper()
	b := p.bundle(t, V03)
	pk := b.PreKeys[3]
	bundle := prekey.NewBundle(p.m.DeviceID(), p.m.DeviceID(), optional.NewOptionalUint32(pk.ID), b.SignedPreKeyID,
		ecc.NewDjbECPublicKey([32]byte(pk.Key)), ecc.NewDjbECPublicKey([32]byte(b.SignedPreKey)),
		[64]byte(b.SignedPreKeySignature), identity.NewKey(ecc.NewDjbECPublicKey([32]byte(b.IdentityKey))))
	sa := protocol.NewSignalAddress(p.jid, p.m.DeviceID())
	l.cipher(p.addr()) // create builder
	if err := l.builder[sa.String()].ProcessBundle(context.Background(), bundle); err != nil {
		t.Fatalf("libsignal ProcessBundle: %v", err)
	}
}

// encryptTo encrypts a chat message from libsignal to p as an <encrypted/>.
func (l *lsPeer) encryptTo(t testing.TB, p *peer, msg string) *Encrypted {
	t.Helper()
	km, iv, payload, err := sealPayload(nil, V03, []byte(msg), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := l.cipher(p.addr()).Encrypt(context.Background(), km)
	if err != nil {
		t.Fatalf("libsignal encrypt: %v", err)
	}
	return &Encrypted{Version: V03, SenderDevice: l.device, IV: iv, Payload: payload,
		Keys: []EncryptedKey{{Device: p.m.DeviceID(), KeyExchange: ct.Type() == protocol.PREKEY_TYPE, Data: ct.Serialize()}}}
}

// decryptFrom decrypts our <encrypted/> with libsignal.
func (l *lsPeer) decryptFrom(t testing.TB, p *peer, enc *Encrypted) (string, error) {
	t.Helper()
	k := enc.KeyFor(l.jid, l.device)
	if k == nil {
		t.Fatal("no key for libsignal device")
	}
	c := l.cipher(p.addr())
	var km []byte
	var err error
	if k.KeyExchange {
		var m *protocol.PreKeySignalMessage
		if m, err = protocol.NewPreKeySignalMessageFromBytes(k.Data, l.store.ser.PreKeySignalMessage, l.store.ser.SignalMessage); err != nil {
			return "", err
		}
		km, err = c.DecryptMessage(context.Background(), m)
	} else {
		var m *protocol.SignalMessage
		if m, err = protocol.NewSignalMessageFromBytes(k.Data, l.store.ser.SignalMessage); err != nil {
			return "", err
		}
		km, err = c.Decrypt(context.Background(), m)
	}
	if err != nil {
		return "", err
	}
	pt, err := openPayload(nil, V03, km, enc.IV, enc.Payload)
	return string(pt), err
}

func TestLibsignalTheyInitiate(t *testing.T) {
	ctx := context.Background()
	us := newPeer(t, "us@example.org", Options{})
	them := newLSPeer(t, "them@example.org", 4242)
	them.processOurBundle(t, us)

	// Their PreKeySignalMessages (two before any reply), decrypted by us.
	for i := range 2 {
		e := them.encryptTo(t, us, fmt.Sprint("first ", i))
		if !e.Keys[0].KeyExchange {
			t.Fatal("libsignal did not send a key exchange")
		}
		d, err := us.m.Decrypt(ctx, e, them.jid)
		if err != nil {
			t.Fatalf("decrypt libsignal prekey message %d: %v", i, err)
		}
		if string(d.Plaintext) != fmt.Sprint("first ", i) || d.NewSession != (i == 0) || d.PreKeyConsumed != (i == 0) {
			t.Fatalf("got %+v", d)
		}
		ik := them.store.ik.PublicKey().PublicKey().PublicKey()
		if !bytes.Equal(d.IdentityKey, ik[:]) {
			t.Fatal("identity key mismatch")
		}
	}
	lsConversation(t, us, them)
}

// lsConversation exchanges messages in both directions, out of order.
func lsConversation(t *testing.T, us *peer, them *lsPeer) {
	ctx := context.Background()
	for round := range 4 {
		var ours []*Encrypted
		for i := range 3 {
			msg := fmt.Sprintf("us %d.%d", round, i)
			enc, errs, err := us.m.Encrypt(ctx, V03, []byte(msg), []Recipient{{Address: them.addr()}})
			if err != nil {
				t.Fatalf("encrypt: %v %v", err, errs)
			}
			ours = append(ours, enc)
		}
		for _, i := range []int{0, 2, 1} {
			got, err := them.decryptFrom(t, us, ours[i])
			if err != nil {
				t.Fatalf("libsignal decrypt of our message %d.%d: %v", round, i, err)
			}
			if want := fmt.Sprintf("us %d.%d", round, i); got != want {
				t.Fatalf("libsignal got %q want %q", got, want)
			}
		}
		var theirs []*Encrypted
		for i := range 3 {
			theirs = append(theirs, them.encryptTo(t, us, fmt.Sprintf("them %d.%d", round, i)))
		}
		for _, i := range []int{1, 0, 2} {
			d, err := us.m.Decrypt(ctx, theirs[i], them.jid)
			if err != nil {
				t.Fatalf("decrypt libsignal message %d.%d: %v", round, i, err)
			}
			if want := fmt.Sprintf("them %d.%d", round, i); string(d.Plaintext) != want {
				t.Fatalf("got %q want %q", d.Plaintext, want)
			}
		}
		if _, err := us.m.Decrypt(ctx, theirs[0], them.jid); err == nil {
			t.Fatal("replayed libsignal message decrypted")
		}
	}
}

func TestLibsignalWeInitiate(t *testing.T) {
	ctx := context.Background()
	us := newPeer(t, "us@example.org", Options{})
	them := newLSPeer(t, "them@example.org", 4243)
	r := []Recipient{{Address: them.addr(), Bundle: them.bundle()}}
	for i := range 2 {
		msg := fmt.Sprint("hello ", i)
		enc, errs, err := us.m.Encrypt(ctx, V03, []byte(msg), r)
		if err != nil {
			t.Fatalf("encrypt: %v %v", err, errs)
		}
		if !enc.Keys[0].KeyExchange {
			t.Fatal("first messages must be key exchanges")
		}
		got, err := them.decryptFrom(t, us, enc)
		if err != nil {
			t.Fatalf("libsignal decrypt of our key exchange %d: %v", i, err)
		}
		if got != msg {
			t.Fatalf("libsignal got %q", got)
		}
	}
	// Their reply ends our key exchange phase.
	d, err := us.m.Decrypt(ctx, them.encryptTo(t, us, "reply"), them.jid)
	if err != nil || string(d.Plaintext) != "reply" {
		t.Fatalf("decrypt reply: %v %+v", err, d)
	}
	enc, _, err := us.m.Encrypt(ctx, V03, []byte("after"), r)
	if err != nil || enc.Keys[0].KeyExchange {
		t.Fatalf("after reply: %v kex=%v", err, enc != nil && enc.Keys[0].KeyExchange)
	}
	if got, err := them.decryptFrom(t, us, enc); err != nil || got != "after" {
		t.Fatalf("libsignal: %q %v", got, err)
	}
	lsConversation(t, us, them)
}

// TestXEdDSALibsignal checks signatures across implementations: libsignal's
// (which set the Ed25519 sign bit in sig[63]) verify with ours, and ours
// with libsignal's verifier.
func TestXEdDSALibsignal(t *testing.T) {
	for i := range 32 {
		kp, err := ecc.GenerateKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte(fmt.Sprint("message ", i))
		sig := ecc.CalculateSignature(kp.PrivateKey(), msg)
		pub := kp.PublicKey().PublicKey()
		if !xeddsaVerify(pub[:], msg, sig[:]) {
			t.Fatalf("libsignal signature %d did not verify", i)
		}
		bad := sig
		bad[5] ^= 1
		if xeddsaVerify(pub[:], msg, bad[:]) {
			t.Fatal("corrupted signature verified")
		}
		if xeddsaVerify(pub[:], append(msg, 0), sig[:]) {
			t.Fatal("signature verified for another message")
		}
		priv := kp.PrivateKey().Serialize()
		ours, err := xeddsaSign(&priv, msg, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !ecc.VerifySignature(kp.PublicKey(), msg, [64]byte(ours)) {
			t.Fatalf("libsignal rejected our signature %d", i)
		}
		if !xeddsaVerify(pub[:], msg, ours) {
			t.Fatal("own signature did not verify")
		}
	}
}

// TestLibsignalLateAcrossChains: libsignal sends its previous-counter one
// lower than the spec, so the last message of a finished chain lies beyond
// it; it must still decrypt when it arrives after the next chain started.
func TestLibsignalLateAcrossChains(t *testing.T) {
	ctx := context.Background()
	us := newPeer(t, "us@example.org", Options{})
	them := newLSPeer(t, "them@example.org", 4244)
	them.processOurBundle(t, us)
	first := []*Encrypted{them.encryptTo(t, us, "c1 m0"), them.encryptTo(t, us, "c1 m1"), them.encryptTo(t, us, "c1 m2")}
	if d, err := us.m.Decrypt(ctx, first[0], them.jid); err != nil || string(d.Plaintext) != "c1 m0" {
		t.Fatalf("first: %v", err)
	}
	// Our reply makes libsignal start a new chain.
	enc, _, err := us.m.Encrypt(ctx, V03, []byte("reply"), []Recipient{{Address: them.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := them.decryptFrom(t, us, enc); err != nil || got != "reply" {
		t.Fatalf("libsignal: %q %v", got, err)
	}
	next := them.encryptTo(t, us, "c2 m0")
	for _, e := range []*Encrypted{next, first[2], first[1]} {
		if _, err := us.m.Decrypt(ctx, e, them.jid); err != nil {
			t.Fatalf("decrypt after chain change: %v", err)
		}
	}
	for _, e := range first {
		if _, err := us.m.Decrypt(ctx, e, them.jid); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("replay: %v", err)
		}
	}
}
