package omemo_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// Session life cycle across the boundary: python-omemo replacing a session,
// our signed prekey rotating under python's feet, and one message for
// several devices of several accounts.

// python-omemo heals a session by building a new one from our bundle; the old
// session's in-flight messages still decrypt, and we answer on the new one.
func TestInteropTheyReinitiate(t *testing.T) {
	forVersions(t, func(t *testing.T, v omemo.Version) {
		s := establish(t, v)
		inFlight := s.pyEncrypt("sent on the old session")

		s.py.must("replace_sessions", map[string]any{"jid": ourJID})
		out := s.pyOutbox()
		if len(out) != 1 {
			t.Fatalf("python announced its new session with %d messages, want 1", len(out))
		}
		d := s.mustDecrypt(out[0].XML)
		if d.Plaintext != nil || !d.NewSession {
			t.Errorf("session announcement: plaintext %q NewSession %v", d.Plaintext, d.NewSession)
		}
		if got := s.body(s.mustDecrypt(s.pyEncrypt("on the new session"))); got != "on the new session" {
			t.Errorf("new session: %q", got)
		}
		d, err := s.decrypt(inFlight)
		if err != nil {
			t.Fatalf("message in flight on the replaced session: %v", err)
		}
		if got := s.body(d); got != "sent on the old session" {
			t.Errorf("message on the replaced session: %q", got)
		}
		// python-omemo keeps only its newest session: our reply must go out on
		// it, so decrypting a late message on an archived session must not
		// make that session current again.
		_, reply := s.send("answer on the new session", nil)
		if _, err := s.py.call("decrypt", map[string]any{"xml": reply, "from": ourJID}); err != nil {
			t.Fatalf("python cannot read our reply after we decrypted a late message on the replaced session (did it become current again?): %v", err)
		}
		if got := s.body(s.mustDecrypt(s.pyEncrypt("still fine"))); got != "still fine" {
			t.Errorf("after the answer: %q", got)
		}
	})
}

// python starts sessions from our bundle before and after we rotate the
// signed prekey: within the grace period the old one still works, after it
// the key exchange is refused.
func TestInteropSignedPreKeyRotation(t *testing.T) {
	forVersions(t, func(t *testing.T, v omemo.Version) {
		now := time.Unix(1_800_000_000, 0)
		s := newSessionWith(t, v, omemo.Options{Now: func() time.Time { return now }})
		old, err := s.ours.Bundle(s.ctx, v)
		if err != nil {
			t.Fatal(err)
		}

		now = now.Add(8 * 24 * time.Hour)
		if err := s.ours.Setup(s.ctx); err != nil {
			t.Fatalf("Setup after a week: %v", err)
		}
		rotated, err := s.ours.Bundle(s.ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if rotated.SignedPreKeyID == old.SignedPreKeyID {
			t.Fatalf("signed prekey %d not rotated after 8 days", old.SignedPreKeyID)
		}

		// s's python peer still holds the old bundle.
		if got := s.body(s.mustDecrypt(s.pyEncrypt("from the old bundle"))); got != "from the old bundle" {
			t.Errorf("old bundle in grace period: %q", got)
		}
		// That key exchange used up one of the prekeys rotated offers too; a
		// new peer fetches the bundle we republish after it (omemoxmpp's
		// Republish on PreKeyConsumed), never a copy from before. Handing it
		// rotated made it pick the used prekey one time in a hundred.
		republished, err := s.ours.Bundle(s.ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if republished.SignedPreKeyID != rotated.SignedPreKeyID {
			t.Fatalf("signed prekey %d after a key exchange, want %d", republished.SignedPreKeyID, rotated.SignedPreKeyID)
		}
		offered, gone := prekeyIDs(republished), 0
		for _, pk := range rotated.PreKeys {
			if !offered[pk.ID] {
				gone++
			}
		}
		if gone != 1 {
			t.Fatalf("%d prekeys of the rotated bundle gone after one key exchange, want 1", gone)
		}
		fresh := peerFor(t, s, "fresh-"+v.String())
		fresh.publishBundle(republished)
		if got := fresh.body(fresh.mustDecrypt(fresh.pyEncrypt("from the new bundle"))); got != "from the new bundle" {
			t.Errorf("rotated bundle: %q", got)
		}

		now = now.Add(31 * 24 * time.Hour)
		if err := s.ours.Setup(s.ctx); err != nil {
			t.Fatalf("Setup after the grace period: %v", err)
		}
		stale := peerFor(t, s, "stale-"+v.String())
		stale.publishBundle(old)
		_, err = stale.decrypt(stale.pyEncrypt("from a bundle long gone"))
		if !errors.Is(err, omemo.ErrUnknownPreKey) {
			t.Errorf("key exchange on a dropped signed prekey: %v, want ErrUnknownPreKey", err)
		}
	})
}

// peerFor starts another python device of the contact talking to s's engine.
func peerFor(t *testing.T, s *session, name string) *session {
	t.Helper()
	o := &session{t: t, ctx: s.ctx, v: s.v, ours: s.ours, py: startPyPeer(t, name)}
	var c struct {
		DeviceID    uint32 `json:"device_id"`
		IdentityKey []byte `json:"identity_key"`
		Fingerprint string `json:"fingerprint"`
	}
	o.py.mustInto("create", map[string]any{"jid": theirJID, "versions": []string{s.v.String()}}, &c)
	o.pyDev, o.pyIK, o.pyFP = c.DeviceID, c.IdentityKey, c.Fingerprint
	return o
}

// One Encrypt for two devices of the contact and one other device of our own
// account (all python), and python's message to our account read by us and
// by our other device.
func TestInteropMultiDevice(t *testing.T) {
	forVersions(t, func(t *testing.T, v omemo.Version) {
		ctx := t.Context()
		ours := omemo.NewManager(omemo.NewMemoryStore(), ourJID, omemo.Options{})
		if err := ours.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		type dev struct {
			p   *pyPeer
			jid string
			id  uint32
			b   *omemo.Bundle
		}
		mk := func(name, jid string) *dev {
			d := &dev{p: startPyPeer(t, name+"-"+v.String()), jid: jid}
			var c struct {
				DeviceID uint32 `json:"device_id"`
			}
			d.p.mustInto("create", map[string]any{"jid": jid, "versions": []string{v.String()}}, &c)
			d.id = c.DeviceID
			var pub struct {
				Bundle string `json:"bundle"`
			}
			d.p.mustInto("bundle", map[string]any{"version": v.String()}, &pub)
			b, err := omemo.ParseBundle([]byte(pub.Bundle))
			if err != nil {
				t.Fatal(err)
			}
			d.b = b
			return d
		}
		c1, c2, o2 := mk("contact1", theirJID), mk("contact2", theirJID), mk("own2", ourJID)
		ourBundle, err := ours.Bundle(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		ourBX, err := ourBundle.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		all := []*dev{c1, c2, o2}
		lists := map[string][]uint32{theirJID: {c1.id, c2.id}, ourJID: {ours.DeviceID(), o2.id}}
		for _, d := range all {
			for jid, ids := range lists {
				d.p.must("set_devices", map[string]any{"jid": jid, "version": v.String(), "ids": ids})
			}
			d.p.must("set_bundle", map[string]any{"jid": ourJID, "version": v.String(), "device_id": ours.DeviceID(), "xml": string(ourBX)})
			for _, e := range all {
				if e != d {
					bx, err := e.b.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					d.p.must("set_bundle", map[string]any{"jid": e.jid, "version": v.String(), "device_id": e.id, "xml": string(bx)})
				}
			}
		}

		body := "to everyone"
		payload := []byte(body)
		if v == omemo.V2 {
			payload, err = (&omemo.Envelope{Content: []byte("<body xmlns='jabber:client'>" + body + "</body>"), From: ourJID}).Marshal(nil)
			if err != nil {
				t.Fatal(err)
			}
		}
		rcpts := []omemo.Recipient{{Address: omemo.Address{JID: ourJID, Device: ours.DeviceID()}}}
		for _, d := range all {
			rcpts = append(rcpts, omemo.Recipient{Address: omemo.Address{JID: d.jid, Device: d.id}, Bundle: d.b})
		}
		enc, errs, err := ours.Encrypt(ctx, v, payload, rcpts)
		if err != nil || len(errs) != 0 {
			t.Fatalf("Encrypt: %v, per device %v", err, errs)
		}
		if len(enc.Keys) != 3 {
			t.Fatalf("%d keys, want 3 (our own device skipped)", len(enc.Keys))
		}
		x, err := enc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range all {
			var r pyDecrypted
			d.p.mustInto("decrypt", map[string]any{"xml": string(x), "from": ourJID}, &r)
			if r.Empty || r.Body != body || r.DeviceID != ours.DeviceID() {
				t.Errorf("%s/%d decrypted %+v", d.jid, d.id, r)
			}
		}

		// c1 writes to our account: python encrypts for our two devices and c1's sibling.
		var m struct {
			XML        string  `json:"xml"`
			Recipients [][]any `json:"recipients"`
		}
		c1.p.mustInto("encrypt", map[string]any{"to": ourJID, "version": v.String(), "plaintext": "hello all of you"}, &m)
		if len(m.Recipients) != 3 {
			t.Errorf("python encrypted for %v, want our two devices and c2", m.Recipients)
		}
		in, err := omemo.ParseEncrypted([]byte(m.XML))
		if err != nil {
			t.Fatal(err)
		}
		d, err := ours.Decrypt(ctx, in, theirJID)
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		got := string(d.Plaintext)
		if v == omemo.V2 {
			env, err := omemo.ParseEnvelope(d.Plaintext, theirJID)
			if err != nil {
				t.Fatal(err)
			}
			got = string(env.Content)
		}
		if want := "hello all of you"; !strings.Contains(got, want) || d.Sender != (omemo.Address{JID: theirJID, Device: c1.id}) {
			t.Errorf("decrypted %q from %v", got, d.Sender)
		}
		for _, e := range []*dev{c2, o2} {
			var r pyDecrypted
			e.p.mustInto("decrypt", map[string]any{"xml": m.XML, "from": theirJID}, &r)
			if r.Body != "hello all of you" {
				t.Errorf("%s/%d decrypted %+v", e.jid, e.id, r)
			}
		}
	})
}
