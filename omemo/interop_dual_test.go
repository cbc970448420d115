package omemo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// One device on both namespaces with one identity, as python-omemo (and the
// bridge) run it; trust decisions on keys that crossed the boundary; the
// skipped-message limit against a real sender.

// TestInteropBothVersions: one device of ours on both namespaces, one
// identity, as the bridge runs it. python-omemo keeps one Ed25519 identity
// per device across namespaces and refuses a key exchange whose identity
// differs from the one it knows (PublicDataInconsistency). A 0.3 bundle
// carries only the Curve25519 form, so python-omemo (like libsignal's
// curve25519_verify) takes the Ed25519 sign bit from sig[63]&0x80 of the
// signed prekey signature. Our identity must therefore come out the same
// from the 0.3 bundle as from the 2 bundle, for identities of either sign.
func TestInteropBothVersions(t *testing.T) {
	for _, sign := range []byte{0, 0x80} {
		t.Run(fmt.Sprintf("signbit%d", sign>>7), func(t *testing.T) { testBothVersions(t, sign) })
	}
}

func testBothVersions(t *testing.T, sign byte) {
	ctx := context.Background()
	var ours *omemo.Manager
	for tries := 0; ; tries++ {
		ours = omemo.NewManager(omemo.NewMemoryStore(), ourJID, omemo.Options{})
		if err := ours.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		if ours.IdentityKey(omemo.V2)[31]&0x80 == sign {
			break
		}
		if tries > 64 {
			t.Fatalf("no identity with Ed25519 sign bit %#x in 64 tries", sign)
		}
	}
	c03, err := omemo.CurveIdentityKey(omemo.V03, ours.IdentityKey(omemo.V03))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := omemo.CurveIdentityKey(omemo.V2, ours.IdentityKey(omemo.V2))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c03, c2) {
		t.Fatalf("our 0.3 and 2 identity keys differ: %x vs %x", c03, c2)
	}
	b03, err := ours.Bundle(ctx, omemo.V03)
	if err != nil {
		t.Fatal(err)
	}
	if got := b03.SignedPreKeySignature[63] & 0x80; got != sign {
		t.Errorf("0.3 bundle: sig[63]&0x80 = %#x, but our Ed25519 identity's sign bit is %#x; "+
			"python-omemo and libsignal rebuild the Ed25519 identity from the Curve25519 key and this bit", got, sign)
	}

	py := startPyPeer(t, "dual")
	var created struct {
		DeviceID    uint32 `json:"device_id"`
		IdentityKey []byte `json:"identity_key"`
	}
	py.mustInto("create", map[string]any{"jid": theirJID, "versions": []string{"2", "0.3"}}, &created)
	s03 := &session{t: t, ctx: ctx, v: omemo.V03, ours: ours, py: py, pyDev: created.DeviceID, pyIK: created.IdentityKey}
	s2 := &session{t: t, ctx: ctx, v: omemo.V2, ours: ours, py: py, pyDev: created.DeviceID, pyIK: created.IdentityKey}

	// python meets our device on 0.3 first (a 0.3-only contact that later
	// learns OMEMO 2, or simply PEP order) and records its identity from there.
	s03.publishOurs()
	var devs struct {
		Devices []struct {
			DeviceID    uint32   `json:"device_id"`
			IdentityKey []byte   `json:"identity_key"`
			Namespaces  []string `json:"namespaces"`
		} `json:"devices"`
	}
	py.mustInto("devices", map[string]any{"jid": ourJID}, &devs)
	if len(devs.Devices) != 1 || !bytes.Equal(devs.Devices[0].IdentityKey, ours.IdentityKey(omemo.V2)) {
		t.Errorf("python-omemo read our Ed25519 identity from the 0.3 bundle as %x, it is %x", devs.Devices[0].IdentityKey, ours.IdentityKey(omemo.V2))
	}
	s2.publishOurs()

	// python starts a 0.3 session, we start a 2 session, then both ways on both.
	if got := s03.body(s03.mustDecrypt(s03.pyEncrypt("0.3 from python"))); got != "0.3 from python" {
		t.Errorf("0.3: %q", got)
	}
	var pub struct {
		Bundle string `json:"bundle"`
	}
	py.mustInto("bundle", map[string]any{"version": "2"}, &pub)
	b2, err := omemo.ParseBundle([]byte(pub.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	_, x := s2.send("2 from the bridge", b2)
	if _, err := py.call("decrypt", map[string]any{"xml": x, "from": ourJID}); err != nil {
		t.Fatalf("python refuses our OMEMO 2 key exchange after meeting us on 0.3: %v", err)
	}
	for _, m := range s2.pyOutbox() {
		s2.mustDecrypt(m.XML)
	}
	for _, s := range []*session{s03, s2} {
		_, x := s.send(s.v.String()+" again from the bridge", nil)
		s.pyDecryptBody(x, s.v.String()+" again from the bridge")
		if got := s.body(s.mustDecrypt(s.pyEncrypt(s.v.String() + " again from python"))); got != s.v.String()+" again from python" {
			t.Errorf("%v: %q", s.v, got)
		}
	}
	py.mustInto("devices", map[string]any{"jid": ourJID}, &devs)
	if len(devs.Devices) != 1 || devs.Devices[0].DeviceID != ours.DeviceID() || len(devs.Devices[0].Namespaces) != 2 {
		t.Errorf("python's view of our device: %+v", devs.Devices)
	}
}

// Trust decided on keys that came from python: manual policy keeps a new
// device out of Encrypt until trusted; with blind trust, a JID with a
// verified device gets no blind trust for a new one.
func TestInteropTrust(t *testing.T) {
	forVersions(t, func(t *testing.T, v omemo.Version) {
		s := newSessionWith(t, v, omemo.Options{Policy: omemo.PolicyManual})
		d := s.mustDecrypt(s.pyEncrypt("from an undecided device"))
		if d.Trusted || d.Trust != omemo.TrustUndecided {
			t.Errorf("manual policy: new device trust %v trusted %v", d.Trust, d.Trusted)
		}
		rcpt := []omemo.Recipient{{Address: s.their()}}
		_, errs, err := s.ours.Encrypt(s.ctx, v, s.payload("withheld"), rcpt)
		if !errors.Is(err, omemo.ErrNoRecipients) || !errors.Is(errs[s.their()], omemo.ErrUntrusted) {
			t.Errorf("Encrypt to an undecided device: %v, per device %v", err, errs)
		}
		// Verify with the key python-omemo reports (Ed25519), in v's wire form.
		if err := s.ours.SetTrust(s.ctx, v, s.their(), wireIdentity(t, v, s.pyIK), omemo.TrustVerified); err != nil {
			t.Fatalf("SetTrust: %v", err)
		}
		_, x := s.send("to a verified device", nil)
		s.pyDecryptBody(x, "to a verified device")

		// Blind trust: a second device of a JID with a verified one stays out.
		b := newSession(t, v)
		b.mustDecrypt(b.pyEncrypt("first device"))
		if err := b.ours.SetTrust(b.ctx, v, b.their(), wireIdentity(t, v, b.pyIK), omemo.TrustVerified); err != nil {
			t.Fatalf("SetTrust: %v", err)
		}
		second := peerFor(t, b, "second-"+v.String())
		second.publishOurs()
		d = second.mustDecrypt(second.pyEncrypt("new device"))
		if d.Trusted {
			t.Errorf("new device of a JID with a verified device blindly trusted (level %v)", d.Trust)
		}
		_, errs, err = b.ours.Encrypt(b.ctx, v, b.payload("to both"), []omemo.Recipient{{Address: b.their()}, {Address: second.their()}})
		if err != nil || errs[second.their()] == nil || !errors.Is(errs[second.their()], omemo.ErrUntrusted) {
			t.Errorf("Encrypt to verified + new device: %v, per device %v", err, errs)
		}
	})
}

// python sends far ahead on one chain: beyond the skipped-key limit the
// message is refused without touching the session; within it, it decrypts.
func TestInteropSkippedLimit(t *testing.T) {
	forVersions(t, func(t *testing.T, v omemo.Version) {
		s := establish(t, v)
		var r struct {
			XML []string `json:"xml"`
		}
		s.py.mustInto("encrypt_many", map[string]any{"to": ourJID, "version": v.String(), "prefix": "far ", "n": 1102}, &r)
		if len(r.XML) != 1102 {
			t.Fatalf("python made %d messages", len(r.XML))
		}
		if _, err := s.decrypt(r.XML[1101]); !errors.Is(err, omemo.ErrTooManySkipped) {
			t.Errorf("message 1101 with 1101 skipped: %v, want ErrTooManySkipped", err)
		}
		for _, i := range []int{3, 900, 0, 1} {
			d, err := s.decrypt(r.XML[i])
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if got, want := s.body(d), fmt.Sprintf("far %d", i); got != want {
				t.Errorf("message %d: %q", i, got)
			}
		}
		// 1101 now lies 200 ahead of the highest one received.
		if got := s.body(s.mustDecrypt(r.XML[1101])); !strings.HasSuffix(got, "1101") {
			t.Errorf("message 1101 after catching up: %q", got)
		}
	})
}

// wireIdentity converts python-omemo's Ed25519 identity key to v's wire form.
func wireIdentity(t *testing.T, v omemo.Version, ed []byte) []byte {
	t.Helper()
	if v == omemo.V2 {
		return ed
	}
	k, err := omemo.CurveIdentityKey(omemo.V2, ed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Quirks of older 0.3 senders on python-omemo's real messages: a 16-byte
// GCM IV (Conversations before 2.x, Profanity), prekey='1', and
// line-wrapped base64.
func TestInteropLegacyQuirks(t *testing.T) {
	s := newSession(t, omemo.V03)
	var r struct {
		XML string `json:"xml"`
	}
	s.py.mustInto("encrypt", map[string]any{"to": ourJID, "version": "0.3", "plaintext": "sixteen byte iv", "iv_len": 16}, &r)
	enc, err := omemo.ParseEncrypted([]byte(r.XML))
	if err != nil {
		t.Fatal(err)
	}
	if len(enc.IV) != 16 {
		t.Fatalf("python was asked for a 16-byte IV and sent %d bytes", len(enc.IV))
	}
	x := strings.Replace(r.XML, `prekey="true"`, `prekey="1"`, 1)
	if x == r.XML {
		t.Fatalf("no prekey attribute in %s", r.XML)
	}
	x = wrapBase64(x, 64)
	if got := s.body(s.mustDecrypt(x)); got != "sixteen byte iv" {
		t.Errorf("16-byte IV, prekey='1', wrapped base64: %q", got)
	}
	s.py.mustInto("encrypt", map[string]any{"to": ourJID, "version": "0.3", "plaintext": "again", "iv_len": 16}, &r)
	if got := s.body(s.mustDecrypt(r.XML)); got != "again" {
		t.Errorf("second 16-byte IV message: %q", got)
	}
}

// wrapBase64 breaks every element text longer than width into lines, as
// some clients send it.
func wrapBase64(x string, width int) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(x, '>')
		if i < 0 {
			b.WriteString(x)
			return b.String()
		}
		b.WriteString(x[:i+1])
		x = x[i+1:]
		j := strings.IndexByte(x, '<')
		if j < 0 {
			j = len(x)
		}
		text := x[:j]
		for len(text) > width {
			b.WriteString(text[:width])
			b.WriteString("\n")
			text = text[width:]
		}
		b.WriteString(text)
		x = x[j:]
	}
}
