package omemo

import (
	"crypto/hmac"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

const (
	// maxSkip bounds the skipped message keys kept per session and the keys
	// one message may make us skip.
	maxSkip = 1000
	// maxOldChains is how many past receiving ratchet keys are remembered to
	// tell a replay on a finished chain from garbage.
	maxOldChains = 5
	// heartbeatAfter is OMEMO 2's (and python-omemo's, for both versions)
	// limit of messages received on one chain without answering before an
	// empty message is due.
	heartbeatAfter = 53
)

type chain struct {
	key [32]byte
	n   uint32
}

type skippedKey struct {
	dh [32]byte
	n  uint32
	mk [32]byte
}

// session is one Double Ratchet session, the same for both versions; p
// supplies what differs. Identity keys are in the version's wire form
// (Curve25519 for V03, Ed25519 for V2).
type session struct {
	p         *profile
	initiator bool
	ourIK     [32]byte
	theirIK   [32]byte

	root    [32]byte
	dhs     keyPair
	dhr     [32]byte
	hasDHr  bool
	send    chain
	hasSend bool
	recv    chain
	hasRecv bool
	pn      uint32
	skipped []skippedKey
	oldDHr  [][32]byte
	// prevRecv is the previous receiving chain, kept so late messages on it
	// beyond the sender's previous-counter still decrypt (libsignal sends
	// that counter one lower than the spec).
	prevDHr  [32]byte
	prevRecv chain
	hasPrev  bool

	// baseKey is the key exchange's ephemeral key: ours when we initiated,
	// the peer's when we responded; a repeated key exchange with the same
	// base key belongs to this session.
	baseKey [32]byte
	// pending: we initiated and have not heard back, so every outgoing
	// message carries the key exchange.
	pending bool
	hasPK   bool
	pkID    uint32
	spkID   uint32
	regID   uint32

	// theirCurve is theirIK in Curve25519 form, the form trust records
	// use, once hasCurve is set. It is not serialized: a decoded session
	// derives it on first use and keeps it while the Manager caches the
	// session, so an OMEMO 2 message's trust checks do not each convert the
	// Ed25519 key (a square root and an inversion, ~6 µs).
	theirCurve [32]byte
	hasCurve   bool
}

// curveIK returns theirIK in Curve25519 form (s's own storage).
func (s *session) curveIK() ([]byte, error) {
	if !s.hasCurve {
		if _, err := curveIdentityKey(s.theirCurve[:0], s.p.version, s.theirIK[:]); err != nil {
			return nil, err
		}
		s.hasCurve = true
	}
	return s.theirCurve[:], nil
}

// x3dhSecret derives the shared secret from the X3DH DH outputs.
func x3dhSecret(k *kdf, p *profile, dhs ...*[32]byte) [32]byte {
	var ikm [32 * 5]byte
	for i := range 32 {
		ikm[i] = 0xFF
	}
	n := 32
	for _, d := range dhs {
		n += copy(ikm[n:], d[:])
	}
	var sk [32]byte
	// V03 derives 64 bytes (root ‖ unused chain); HKDF's first block is the same.
	k.hkdf(sk[:], nil, ikm[:n], p.x3dhInfo)
	return sk
}

// theirCurve returns the peer identity key in Curve25519 form.
func theirCurve(v Version, ik *[32]byte) ([32]byte, error) {
	var out [32]byte
	if v == V03 {
		return *ik, nil
	}
	c, err := edToCurve(ik[:])
	if err != nil {
		return out, err
	}
	copy(out[:], c)
	return out, nil
}

func (ik *identityKeys) wire(v Version) [32]byte {
	if v == V03 {
		return ik.curvePub
	}
	return ik.edPub
}

// verifyBundle checks the signed prekey signature of b.
func verifyBundle(b *Bundle) error {
	if len(b.IdentityKey) != 32 || len(b.SignedPreKey) != 32 {
		return malformed("bundle key length")
	}
	var ok bool
	if b.Version == V03 {
		ok = xeddsaVerify(b.IdentityKey, typed33(b.SignedPreKey), b.SignedPreKeySignature)
	} else {
		ok = ed25519Verify(b.IdentityKey, b.SignedPreKey, b.SignedPreKeySignature)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// initiate starts a session from bundle b, whose signed prekey v verified,
// using one-time prekey opk.
func initiate(k *kdf, our *identityKeys, b *Bundle, v *verifiedSPK, opk *BundlePreKey, regID uint32, rnd io.Reader) (*session, error) {
	p := profileFor(b.Version)
	s := &session{p: p, initiator: true, ourIK: our.wire(b.Version), pending: true, spkID: b.SignedPreKeyID, regID: regID}
	copy(s.theirIK[:], b.IdentityKey)
	ikCurve, err := theirCurve(b.Version, &s.theirIK)
	if err != nil {
		return nil, err
	}
	s.theirCurve, s.hasCurve = ikCurve, true
	var opkKey [32]byte
	spk := v.spk
	if len(opk.Key) != 32 {
		return nil, malformed("prekey length")
	}
	copy(opkKey[:], opk.Key)
	s.hasPK, s.pkID = true, opk.ID
	ek, err := generateKeyPair(rnd)
	if err != nil {
		return nil, err
	}
	s.baseKey = ek.pub
	var dh2, dh3, dh4 [32]byte
	dh1 := v.dh1 // DH(IK_ours, SPK_theirs), computed once per signed prekey
	if err := firstErr(
		x25519(&dh2, &ek.priv, &ikCurve),
		x25519(&dh3, &ek.priv, &spk),
		x25519(&dh4, &ek.priv, &opkKey),
	); err != nil {
		return nil, malformed("bundle key")
	}
	s.root = x3dhSecret(k, p, &dh1, &dh2, &dh3, &dh4)
	s.dhr, s.hasDHr = spk, true
	if s.dhs, err = generateKeyPair(rnd); err != nil {
		return nil, err
	}
	var dh [32]byte
	if err := x25519(&dh, &s.dhs.priv, &spk); err != nil {
		return nil, malformed("bundle key")
	}
	s.send, s.hasSend = chain{key: k.rootStep(p, &s.root, &dh)}, true
	return s, nil
}

// respond builds the responder's session for key exchange kx with our
// signed prekey spk and one-time prekey opk (nil when kx names none).
func respond(k *kdf, v Version, our *identityKeys, kx *keyExchange, spk *keyPair, opk *keyPair) (*session, error) {
	p := profileFor(v)
	s := &session{p: p, ourIK: our.wire(v), theirIK: kx.ik, baseKey: kx.ek, dhs: *spk}
	ikCurve, err := theirCurve(v, &kx.ik)
	if err != nil {
		return nil, err
	}
	s.theirCurve, s.hasCurve = ikCurve, true
	var dh1, dh2, dh3, dh4 [32]byte
	if err := firstErr(
		x25519(&dh1, &spk.priv, &ikCurve),
		x25519(&dh2, &our.curvePriv, &kx.ek),
		x25519(&dh3, &spk.priv, &kx.ek),
	); err != nil {
		return nil, malformed("key exchange key")
	}
	if opk != nil {
		if err := x25519(&dh4, &opk.priv, &kx.ek); err != nil {
			return nil, malformed("key exchange key")
		}
		s.root = x3dhSecret(k, p, &dh1, &dh2, &dh3, &dh4)
	} else {
		s.root = x3dhSecret(k, p, &dh1, &dh2, &dh3)
	}
	return s, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ad writes the associated data for a message in direction sending into buf.
func (s *session) ad(buf *[66]byte, sending bool) []byte {
	if s.p.version == V2 {
		a, b := &s.ourIK, &s.theirIK
		if !s.initiator {
			a, b = b, a
		}
		copy(buf[:32], a[:])
		copy(buf[32:64], b[:])
		return buf[:64]
	}
	a, b := &s.ourIK, &s.theirIK
	if !sending {
		a, b = b, a
	}
	buf[0] = 0x05
	copy(buf[1:33], a[:])
	buf[33] = 0x05
	copy(buf[34:66], b[:])
	return buf[:66]
}

// encrypt encrypts plain (the payload key material) on the sending chain
// and returns the <key/> content and whether it is a key exchange.
func (s *session) encrypt(k *kdf, plain []byte) ([]byte, bool, error) {
	if !s.hasSend {
		return nil, false, ErrNoSession
	}
	mk := k.chainStep(&s.send.key)
	m := ratchetMessage{dh: s.dhs.pub, n: s.send.n, pn: s.pn}
	s.send.n++
	keys := k.messageKeys(s.p, &mk)
	ctLen := cbcLen(len(plain))
	var adBuf [66]byte
	ad := s.ad(&adBuf, true)
	var mac [32]byte
	var out []byte
	if s.p.version == V03 {
		// The ciphertext is written in place after its field header.
		out = make([]byte, 0, 1+48+ctLen+16)
		out = append(out, version03)
		out = appendRatchetHead(out, V03, &m, ctLen)
		out = cbcAppend(out, keys[:32], keys[64:80], plain)
		k.hmac(&mac, keys[32:64], ad, out)
		out = append(out, mac[:s.p.macLen]...)
	} else {
		// OMEMOAuthenticatedMessage (as appendAuthenticated writes it): the
		// MAC's field, then the message written in place after its field
		// header; the MAC, computed over the message, is filled in last.
		var hb [64]byte
		head := appendRatchetHead(hb[:0], V2, &m, ctLen)
		msgLen := len(head) + ctLen
		out = make([]byte, 0, 2+s.p.macLen+1+protowire.SizeVarint(uint64(msgLen))+msgLen)
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(s.p.macLen))
		macAt := len(out)
		out = out[:macAt+s.p.macLen]
		out = protowire.AppendTag(out, 2, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(msgLen))
		msgAt := len(out)
		out = append(out, head...)
		out = cbcAppend(out, keys[:32], keys[64:80], plain)
		k.hmac(&mac, keys[32:64], ad, out[msgAt:])
		copy(out[macAt:], mac[:s.p.macLen])
	}
	if !s.pending {
		return out, false, nil
	}
	kx := keyExchange{pkID: s.pkID, hasPK: s.hasPK, spkID: s.spkID, ik: s.ourIK, ek: s.baseKey, message: out, regID: s.regID}
	var wrapped []byte
	if s.p.version == V03 {
		wrapped = appendKeyExchange(append(make([]byte, 0, len(out)+90), version03), V03, &kx)
	} else {
		wrapped = appendKeyExchange(make([]byte, 0, len(out)+90), V2, &kx)
	}
	return wrapped, true, nil
}

// decrypt authenticates and decrypts one ratchet message (not wrapped in a
// key exchange), updating s. On error s is in an undefined state and must
// be discarded.
func (s *session) decrypt(k *kdf, raw []byte, rnd io.Reader) ([]byte, error) {
	var macd, msgBytes, mac []byte
	if s.p.version == V03 {
		if len(raw) < 1+s.p.macLen || raw[0]>>4 != 3 {
			return nil, malformed("message version or length")
		}
		macd = raw[:len(raw)-s.p.macLen]
		mac = raw[len(raw)-s.p.macLen:]
		msgBytes = macd[1:]
	} else {
		var err error
		if mac, msgBytes, err = parseAuthenticated(raw); err != nil {
			return nil, err
		}
		macd = msgBytes
	}
	var m ratchetMessage
	if err := parseRatchetMessageInto(s.p.version, msgBytes, &m); err != nil {
		return nil, err
	}
	mk, err := s.messageKey(k, &m, rnd)
	if err != nil {
		return nil, err
	}
	keys := k.messageKeys(s.p, &mk)
	var adBuf [66]byte
	var want [32]byte
	k.hmac(&want, keys[32:64], s.ad(&adBuf, false), macd)
	if !hmac.Equal(want[:s.p.macLen], mac) {
		return nil, ErrBadMAC
	}
	plain, err := cbcDecrypt(keys[:32], keys[64:80], m.ciphertext)
	if err != nil {
		return nil, err
	}
	s.pending = false
	return plain, nil
}

// messageKey finds or derives the message key seed for m.
func (s *session) messageKey(k *kdf, m *ratchetMessage, rnd io.Reader) ([32]byte, error) {
	for i := range s.skipped {
		if sk := &s.skipped[i]; sk.n == m.n && sk.dh == m.dh {
			mk := sk.mk
			s.skipped = append(s.skipped[:i], s.skipped[i+1:]...)
			return mk, nil
		}
	}
	if s.hasPrev && m.dh == s.prevDHr {
		if m.n < s.prevRecv.n {
			return [32]byte{}, ErrDuplicate
		}
		if err := s.skipChain(k, &s.prevRecv, &s.prevDHr, uint64(m.n)); err != nil {
			return [32]byte{}, err
		}
		mk := k.chainStep(&s.prevRecv.key)
		s.prevRecv.n++
		return mk, nil
	}
	if s.hasDHr && m.dh == s.dhr {
		if !s.hasRecv {
			return [32]byte{}, ErrBadMAC
		}
		if m.n < s.recv.n {
			return [32]byte{}, ErrDuplicate
		}
	} else {
		for i := range s.oldDHr {
			if s.oldDHr[i] == m.dh {
				return [32]byte{}, ErrDuplicate
			}
		}
		if m.n > maxSkip {
			return [32]byte{}, ErrTooManySkipped
		}
		if s.hasRecv {
			if err := s.skipChain(k, &s.recv, &s.dhr, uint64(m.pn)); err != nil {
				return [32]byte{}, err
			}
			s.prevDHr, s.prevRecv, s.hasPrev = s.dhr, s.recv, true
		}
		if s.hasDHr {
			s.oldDHr = append(s.oldDHr, s.dhr)
			if len(s.oldDHr) > maxOldChains {
				s.oldDHr = s.oldDHr[1:]
			}
		}
		var dh [32]byte
		if err := x25519(&dh, &s.dhs.priv, &m.dh); err != nil {
			return [32]byte{}, malformed("ratchet key")
		}
		s.recv, s.hasRecv = chain{key: k.rootStep(s.p, &s.root, &dh)}, true
		s.dhr, s.hasDHr = m.dh, true
		if s.hasSend {
			s.pn = s.send.n
		}
		kp, err := generateKeyPair(rnd)
		if err != nil {
			return [32]byte{}, err
		}
		s.dhs = kp
		if err := x25519(&dh, &s.dhs.priv, &s.dhr); err != nil {
			return [32]byte{}, malformed("ratchet key")
		}
		s.send, s.hasSend = chain{key: k.rootStep(s.p, &s.root, &dh)}, true
	}
	if err := s.skipChain(k, &s.recv, &s.dhr, uint64(m.n)); err != nil {
		return [32]byte{}, err
	}
	mk := k.chainStep(&s.recv.key)
	s.recv.n++
	return mk, nil
}

// skipChain stores the keys of chain c (ratchet key dh) up to, not
// including, until.
func (s *session) skipChain(k *kdf, c *chain, dh *[32]byte, until uint64) error {
	if until <= uint64(c.n) {
		return nil
	}
	if until-uint64(c.n) > maxSkip {
		return fmt.Errorf("%w: %d keys", ErrTooManySkipped, until-uint64(c.n))
	}
	for uint64(c.n) < until {
		s.skipped = append(s.skipped, skippedKey{dh: *dh, n: c.n, mk: k.chainStep(&c.key)})
		c.n++
	}
	if over := len(s.skipped) - maxSkip; over > 0 {
		s.skipped = append(s.skipped[:0], s.skipped[over:]...)
	}
	return nil
}

// wantsHeartbeat applies the staleness rule: more than 53 messages
// received on the current chain and nothing sent since.
func (s *session) wantsHeartbeat() bool {
	return s.hasRecv && s.recv.n > heartbeatAfter && s.send.n == 0
}
