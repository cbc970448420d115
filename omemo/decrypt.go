package omemo

import (
	"context"
	"errors"
	"fmt"
)

// Decrypt decrypts the key addressed to our device in enc, sent by the bare
// JID senderJID, and the payload. It is all-or-nothing: new session state,
// the used one-time prekey's removal and its replacement, and a first-seen
// trust record are written to the Store only after everything succeeded.
func (m *Manager) Decrypt(ctx context.Context, enc *Encrypted, senderJID string) (*Decrypted, error) {
	v := enc.Version
	if !v.Valid() {
		return nil, malformed("version")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := getKDF()
	defer putKDF(k)
	// One return here keeps the defers open-coded (cheap).
	return m.decrypt(ctx, k, enc, senderJID)
}

// decrypt is Decrypt under m.mu.
func (m *Manager) decrypt(ctx context.Context, k *kdf, enc *Encrypted, senderJID string) (*Decrypted, error) {
	v := enc.Version
	if m.keys == nil {
		return nil, ErrNoIdentity
	}
	key := enc.KeyFor(m.ownJID, m.identity.DeviceID)
	if key == nil {
		return nil, ErrNotForThisDevice
	}
	addr := Address{JID: senderJID, Device: enc.SenderDevice}
	e, err := m.loadRecord(ctx, v, addr)
	if err != nil {
		return nil, err
	}
	rec := &e.rec
	// The result and its identity key share one allocation.
	res := &struct {
		d  Decrypted
		ik [32]byte
	}{d: Decrypted{Version: v, Sender: addr}}
	out := &res.d
	var s *session
	var keyMaterial []byte
	var usedPreKey uint32
	if key.KeyExchange {
		s, keyMaterial, usedPreKey, err = m.decryptKeyExchange(ctx, k, v, rec, key.Data, out)
	} else {
		s, keyMaterial, err = m.decryptMessage(k, v, rec, key.Data)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to decrypt from %s: %w", addr, err)
	}
	if enc.Payload == nil {
		out.KeyMaterial = nil
		if v == V03 {
			out.KeyMaterial = keyMaterial
		}
	} else if out.Plaintext, err = openPayload(k, v, keyMaterial, enc.IV, enc.Payload); err != nil {
		return nil, fmt.Errorf("failed to decrypt payload from %s: %w", addr, err)
	}
	if s.wantsHeartbeat() {
		out.SendHeartbeat = true
	}

	// Everything checked: persist.
	curve, err := s.curveIK()
	if err != nil {
		return nil, err
	}
	res.ik = [32]byte(curve)
	out.IdentityKey = res.ik[:]
	out.Trust, out.Trusted, out.KeyChanged, err = m.trustRecordCurve(ctx, addr, out.IdentityKey, true)
	if err != nil {
		return nil, err
	}
	if err := m.storeRecord(ctx, v, addr, e); err != nil {
		return nil, err
	}
	if out.NewSession {
		if err := m.putBaseKey(ctx, v, addr, s.baseKey[:]); err != nil {
			return nil, err
		}
	}
	if out.PreKeyConsumed {
		if err := m.store.RemovePreKey(ctx, usedPreKey); err != nil {
			return nil, fmt.Errorf("failed to remove used prekey: %w", err)
		}
		if _, err := m.refillPreKeys(ctx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decryptMessage tries the current session, then archived ones, and
// updates the one that worked in rec. An archived session is not made
// current again: the peer moved on to a newer one and reads our replies
// there; late messages on the old one still decrypt.
func (m *Manager) decryptMessage(k *kdf, v Version, rec *record, data []byte) (*session, []byte, error) {
	if len(rec.sessions) == 0 {
		return nil, nil, ErrNoSession
	}
	var firstErr error
	for i := range rec.sessions {
		s, err := rec.session(i)
		if err != nil {
			return nil, nil, err
		}
		if s.p.version != v {
			return nil, nil, malformed("session version")
		}
		plain, err := s.decrypt(k, data, m.opts.Rand)
		if err == nil {
			rec.set(i, s)
			return s, plain, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if errors.Is(err, ErrDuplicate) {
			// The message names a chain of this session: no other can have it.
			return nil, nil, err
		}
		if errors.Is(err, ErrMalformed) && i == 0 {
			// A message that does not parse will not parse for older sessions.
			if _, perr := m.parseCheck(v, data); perr != nil {
				return nil, nil, err
			}
		}
	}
	return nil, nil, firstErr
}

// parseCheck reports whether data is a well-formed ratchet message.
func (m *Manager) parseCheck(v Version, data []byte) (*ratchetMessage, error) {
	if v == V03 {
		if len(data) < 1+profile03.macLen {
			return nil, malformed("message length")
		}
		return parseRatchetMessage(v, data[1:len(data)-profile03.macLen])
	}
	_, msg, err := parseAuthenticated(data)
	if err != nil {
		return nil, err
	}
	return parseRatchetMessage(v, msg)
}

// decryptKeyExchange handles a key exchange: a repeat of one we already
// answered continues that session; a new one builds a session with our
// prekeys and archives the previous session.
func (m *Manager) decryptKeyExchange(ctx context.Context, k *kdf, v Version, rec *record, data []byte, out *Decrypted) (*session, []byte, uint32, error) {
	body := data
	if v == V03 {
		if len(data) < 1 || data[0]>>4 != 3 {
			return nil, nil, 0, malformed("key exchange version")
		}
		body = data[1:]
	}
	kx, err := parseKeyExchange(v, body)
	if err != nil {
		return nil, nil, 0, err
	}
	for i := range rec.sessions {
		s, err := rec.session(i)
		if err != nil {
			return nil, nil, 0, err
		}
		if s.initiator || s.baseKey != kx.ek || s.theirIK != kx.ik {
			continue
		}
		plain, err := s.decrypt(k, kx.message, m.opts.Rand)
		if err != nil {
			return nil, nil, 0, err
		}
		rec.set(i, s)
		return s, plain, 0, nil
	}
	if !kx.hasPK {
		// Without a one-time prekey nothing else stops a replay once the
		// session it started is gone.
		if err := m.seenBaseKey(ctx, v, out.Sender, kx.ek[:]); err != nil {
			return nil, nil, 0, err
		}
	}
	spk, err := m.store.SignedPreKey(ctx, kx.spkID)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("failed to load signed prekey: %w", err)
	}
	if spk == nil {
		return nil, nil, 0, fmt.Errorf("%w: signed prekey %d", ErrUnknownPreKey, kx.spkID)
	}
	var spkPair keyPair
	if len(spk.Private) != 32 || len(spk.Public) != 32 {
		return nil, nil, 0, malformed("stored signed prekey")
	}
	copy(spkPair.priv[:], spk.Private)
	copy(spkPair.pub[:], spk.Public)
	var opkPair *keyPair
	if kx.hasPK {
		pk, err := m.store.PreKey(ctx, kx.pkID)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("failed to load prekey: %w", err)
		}
		if pk == nil {
			return nil, nil, 0, fmt.Errorf("%w: prekey %d", ErrUnknownPreKey, kx.pkID)
		}
		if len(pk.Private) != 32 || len(pk.Public) != 32 {
			return nil, nil, 0, malformed("stored prekey")
		}
		opkPair = &keyPair{}
		copy(opkPair.priv[:], pk.Private)
		copy(opkPair.pub[:], pk.Public)
	}
	s, err := respond(k, v, m.keys, kx, &spkPair, opkPair)
	if err != nil {
		return nil, nil, 0, err
	}
	plain, err := s.decrypt(k, kx.message, m.opts.Rand)
	if err != nil {
		return nil, nil, 0, err
	}
	rec.push(s)
	out.NewSession, out.PreKeyConsumed, out.SendHeartbeat = true, kx.hasPK, true
	return s, plain, kx.pkID, nil
}
