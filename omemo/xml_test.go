package omemo

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func b64s(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestBundleXML(t *testing.T) {
	ik, spk, pk1, pk2 := key32of(1), key32of(2), key32of(3), key32of(4)
	sig := bytes.Repeat([]byte{9}, 64)
	t33 := func(k [32]byte) string { return b64s(append([]byte{5}, k[:]...)) }
	for _, tc := range []struct {
		b   Bundle
		xml string
	}{
		{Bundle{Version: V03, IdentityKey: ik[:], SignedPreKeyID: 5, SignedPreKey: spk[:], SignedPreKeySignature: sig,
			PreKeys: []BundlePreKey{{ID: 1, Key: pk1[:]}, {ID: 2, Key: pk2[:]}}},
			`<bundle xmlns="eu.siacs.conversations.axolotl"><signedPreKeyPublic signedPreKeyId="5">` + t33(spk) +
				`</signedPreKeyPublic><signedPreKeySignature>` + b64s(sig) + `</signedPreKeySignature><identityKey>` + t33(ik) +
				`</identityKey><prekeys><preKeyPublic preKeyId="1">` + t33(pk1) + `</preKeyPublic><preKeyPublic preKeyId="2">` + t33(pk2) +
				`</preKeyPublic></prekeys></bundle>`},
		{Bundle{Version: V2, IdentityKey: ik[:], SignedPreKeyID: 5, SignedPreKey: spk[:], SignedPreKeySignature: sig,
			PreKeys: []BundlePreKey{{ID: 1, Key: pk1[:]}}},
			`<bundle xmlns="urn:xmpp:omemo:2"><spk id="5">` + b64s(spk[:]) + `</spk><spks>` + b64s(sig) + `</spks><ik>` + b64s(ik[:]) +
				`</ik><prekeys><pk id="1">` + b64s(pk1[:]) + `</pk></prekeys></bundle>`},
	} {
		got, err := tc.b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.xml {
			t.Errorf("%s: marshal\n got %s\nwant %s", tc.b.Version, got, tc.xml)
		}
		back, err := ParseBundle([]byte(tc.xml))
		if err != nil {
			t.Fatalf("%s: %v", tc.b.Version, err)
		}
		if !reflect.DeepEqual(*back, tc.b) {
			t.Errorf("%s: parse gave %+v", tc.b.Version, back)
		}
	}
	// Other clients: keys without 0x05, line-wrapped base64, other prefixes.
	wrapped := b64s(sig[:30]) + "\n  " + b64s(sig[30:])
	_ = wrapped
	x := `<b:bundle xmlns:b="eu.siacs.conversations.axolotl"><b:signedPreKeyPublic signedPreKeyId="5">` + b64s(spk[:]) +
		`</b:signedPreKeyPublic><b:signedPreKeySignature>` + b64s(sig)[:40] + "\n" + b64s(sig)[40:] + `</b:signedPreKeySignature><b:identityKey>` + t33(ik) +
		`</b:identityKey><b:prekeys><b:preKeyPublic preKeyId="1">` + t33(pk1) + `</b:preKeyPublic></b:prekeys></b:bundle>`
	if b, err := ParseBundle([]byte(x)); err != nil || !bytes.Equal(b.SignedPreKey, spk[:]) || !bytes.Equal(b.SignedPreKeySignature, sig) {
		t.Errorf("lenient parse: %+v %v", b, err)
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	if _, err := (&Bundle{Version: V2, IdentityKey: make([]byte, 31), SignedPreKey: make([]byte, 32), SignedPreKeySignature: make([]byte, 64)}).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("bundle with short key: %v", err)
	}
	if _, err := (&Encrypted{Version: V2, Keys: []EncryptedKey{{Device: 1, Data: []byte("k")}}}).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("OMEMO 2 key without jid: %v", err)
	}
	if _, err := (&DeviceList{}).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("device list without version: %v", err)
	}
}

func TestBundleXMLMalformed(t *testing.T) {
	ok := func(v Version) string {
		b := Bundle{Version: v, IdentityKey: make([]byte, 32), SignedPreKey: make([]byte, 32), SignedPreKeySignature: make([]byte, 64),
			PreKeys: []BundlePreKey{{ID: 1, Key: make([]byte, 32)}}}
		x, _ := b.Marshal()
		return string(x)
	}
	for _, tc := range []struct{ name, xml string }{
		{"not xml", "<bundle"},
		{"wrong namespace", strings.Replace(ok(V2), NamespaceV2, "urn:other", 1)},
		{"wrong element", strings.Replace(strings.Replace(ok(V2), "<bundle", "<bundel", 1), "</bundle", "</bundel", 1)},
		{"no prekeys", strings.Replace(ok(V2), `<prekeys><pk id="1">AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</pk></prekeys>`, "", 1)},
		{"no ik", strings.Replace(ok(V2), `<ik>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</ik>`, "", 1)},
		{"bad id", strings.Replace(ok(V2), `<spk id="0">`, `<spk id="x">`, 1)},
		{"negative id", strings.Replace(ok(V2), `<pk id="1">`, `<pk id="-1">`, 1)},
		{"id too large", strings.Replace(ok(V2), `<pk id="1">`, `<pk id="4294967296">`, 1)},
		{"bad base64", strings.Replace(ok(V2), `<ik>AAAA`, `<ik>!!!!`, 1)},
		{"short key", strings.Replace(ok(V2), `<ik>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</ik>`, `<ik>AAAA</ik>`, 1)},
		{"v2 key with type byte", strings.Replace(ok(V2), `<ik>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</ik>`, `<ik>`+b64s(make([]byte, 33))+`</ik>`, 1)},
		{"short signature", strings.Replace(ok(V03), `<signedPreKeySignature>`, `<signedPreKeySignature>AAAA`, 1)},
	} {
		if _, err := ParseBundle([]byte(tc.xml)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestDeviceListXML(t *testing.T) {
	for _, tc := range []struct {
		l   DeviceList
		xml string
	}{
		{DeviceList{Version: V03, Devices: []Device{{ID: 1}, {ID: 2147483647}}},
			`<list xmlns="eu.siacs.conversations.axolotl"><device id="1"></device><device id="2147483647"></device></list>`},
		{DeviceList{Version: V2, Devices: []Device{{ID: 5, Label: "Gajim & co"}, {ID: 6}}},
			`<devices xmlns="urn:xmpp:omemo:2"><device id="5" label="Gajim &amp; co"></device><device id="6"></device></devices>`},
		{DeviceList{Version: V2, Devices: []Device{}}, `<devices xmlns="urn:xmpp:omemo:2"></devices>`},
	} {
		got, err := tc.l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.xml {
			t.Errorf("marshal\n got %s\nwant %s", got, tc.xml)
		}
		back, err := ParseDeviceList(got)
		if err != nil || !reflect.DeepEqual(*back, tc.l) {
			t.Errorf("parse: %+v %v", back, err)
		}
	}
	// Adding our device keeps the others.
	l0 := &DeviceList{Version: V2, Devices: []Device{{ID: 1, Label: "phone"}}}
	l1 := l0.With(Device{ID: 9, Label: "bridge"})
	if !reflect.DeepEqual(l1.Devices, []Device{{ID: 1, Label: "phone"}, {ID: 9, Label: "bridge"}}) || !l1.Has(9) || l0.Has(9) {
		t.Errorf("With: %+v", l1)
	}
	if l2 := l1.With(Device{ID: 9}); len(l2.Devices) != 2 || l2.Devices[1].Label != "" {
		t.Errorf("With existing: %+v", l2)
	}
	// Self-closing elements as other clients write them; labels ignored for 0.3.
	l, err := ParseDeviceList([]byte(`<list xmlns='eu.siacs.conversations.axolotl'><device id='7' label='x'/><device id=' 8 '/></list>`))
	if err != nil || !reflect.DeepEqual(l.Devices, []Device{{ID: 7}, {ID: 8}}) {
		t.Errorf("got %+v %v", l, err)
	}
	for _, x := range []string{
		`<list xmlns='urn:xmpp:omemo:2'/>`,
		`<devices xmlns='eu.siacs.conversations.axolotl'/>`,
		`<devices xmlns='urn:xmpp:omemo:2'><device/></devices>`,
		`<devices xmlns='urn:xmpp:omemo:2'><device id='0'/></devices>`,
		`<devices xmlns='urn:xmpp:omemo:2'><device id='abc'/></devices>`,
		`<devices xmlns='urn:xmpp:omemo:2'><device id='1'>`,
	} {
		if _, err := ParseDeviceList([]byte(x)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", x, err)
		}
	}
}

func TestEncryptedXML(t *testing.T) {
	iv := bytes.Repeat([]byte{1}, 12)
	for _, tc := range []struct {
		e   Encrypted
		xml string
	}{
		{Encrypted{Version: V03, SenderDevice: 27183, IV: iv, Payload: []byte("payload"),
			Keys: []EncryptedKey{{Device: 31415, KeyExchange: true, Data: []byte("k1")}, {Device: 12321, Data: []byte("k2")}}},
			`<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="27183"><key rid="31415" prekey="true">` + b64s([]byte("k1")) +
				`</key><key rid="12321">` + b64s([]byte("k2")) + `</key><iv>` + b64s(iv) + `</iv></header><payload>` + b64s([]byte("payload")) + `</payload></encrypted>`},
		{Encrypted{Version: V03, SenderDevice: 1, IV: iv, Keys: []EncryptedKey{{Device: 2, Data: []byte("k")}}},
			`<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="1"><key rid="2">` + b64s([]byte("k")) + `</key><iv>` + b64s(iv) + `</iv></header></encrypted>`},
		{Encrypted{Version: V2, SenderDevice: 27183, Payload: []byte("payload"),
			Keys: []EncryptedKey{{JID: "juliet@capulet.lit", Device: 31415, KeyExchange: true, Data: []byte("k1")},
				{JID: "romeo@montague.lit", Device: 1, Data: []byte("k2")}, {JID: "juliet@capulet.lit", Device: 2, Data: []byte("k3")}}},
			`<encrypted xmlns="urn:xmpp:omemo:2"><header sid="27183"><keys jid="juliet@capulet.lit"><key rid="31415" kex="true">` + b64s([]byte("k1")) +
				`</key><key rid="2">` + b64s([]byte("k3")) + `</key></keys><keys jid="romeo@montague.lit"><key rid="1">` + b64s([]byte("k2")) +
				`</key></keys></header><payload>` + b64s([]byte("payload")) + `</payload></encrypted>`},
	} {
		got, err := tc.e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.xml {
			t.Errorf("marshal\n got %s\nwant %s", got, tc.xml)
		}
		back, err := ParseEncrypted(got)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range tc.e.Keys {
			bk := back.KeyFor(k.JID, k.Device)
			if bk == nil || !reflect.DeepEqual(*bk, k) {
				t.Errorf("key %+v parsed as %+v", k, bk)
			}
		}
		if back.SenderDevice != tc.e.SenderDevice || !bytes.Equal(back.IV, tc.e.IV) || !bytes.Equal(back.Payload, tc.e.Payload) || (back.Payload == nil) != (tc.e.Payload == nil) {
			t.Errorf("parse gave %+v", back)
		}
	}
	// prekey='1' and 16-byte IVs from older clients; kex='1'.
	e, err := ParseEncrypted([]byte(`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key prekey='1' rid='2'>AAAA</key><iv>` + b64s(make([]byte, 16)) + `</iv></header></encrypted>`))
	if err != nil || !e.Keys[0].KeyExchange || len(e.IV) != 16 || e.Payload != nil {
		t.Errorf("got %+v %v", e, err)
	}
	e, err = ParseEncrypted([]byte(`<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'><key kex='1' rid='2'>AAAA</key></keys></header><payload/></encrypted>`))
	if err != nil || !e.Keys[0].KeyExchange || e.Payload == nil || len(e.Payload) != 0 {
		t.Errorf("got %+v %v", e, err)
	}
	for _, x := range []string{
		`<encrypted xmlns='eu.siacs.conversations.axolotl'/>`,
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>AAAA</key></header></encrypted>`,
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><iv>AAAA</iv></header></encrypted>`,
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2' prekey='yes'>AAAA</key><iv>` + b64s(iv) + `</iv></header></encrypted>`,
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header><iv>` + b64s(iv) + `</iv></header></encrypted>`,
		`<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys><key rid='2'>AAAA</key></keys></header></encrypted>`,
		`<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'><key>AAAA</key></keys></header></encrypted>`,
		`<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'><key rid='1'>A!AA</key></keys></header></encrypted>`,
		`<encrypted xmlns='urn:xmpp:omemo:3'><header sid='1'/></encrypted>`,
		`<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'>`,
	} {
		if _, err := ParseEncrypted([]byte(x)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", x, err)
		}
	}
}

func TestEnvelope(t *testing.T) {
	e := &Envelope{Content: []byte(`<body xmlns='jabber:client'>Hi &amp; bye</body>`), From: "romeo@montague.lit/orchard", To: "room@muc.lit"}
	x, err := e.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelope(x, "romeo@montague.lit")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Content) != string(e.Content) || got.From != e.From || got.To != e.To || got.RPad == "" {
		t.Errorf("round trip: %+v from %s", got, x)
	}
	// Padding varies.
	y, _ := e.Marshal(nil)
	if bytes.Equal(x, y) {
		t.Error("two envelopes with identical padding")
	}
	if _, err := ParseEnvelope(x, "mallory@evil.lit"); !errors.Is(err, ErrEnvelope) {
		t.Errorf("foreign from: %v", err)
	}
	for _, bad := range []string{
		`<envelope xmlns='urn:xmpp:sce:1'><content/></envelope>`,
		`<envelope xmlns='urn:xmpp:sce:1'><from jid='a@b'/></envelope>`,
		`<envelope xmlns='urn:xmpp:other'><content/><from jid='a@b'/></envelope>`,
		`<envelope xmlns='urn:xmpp:sce:1'><content/><content/><from jid='a@b'/></envelope>`,
		`<envelope xmlns='urn:xmpp:sce:1'><content/><from jid='a@b'/><from jid='c@d'/></envelope>`,
		`<envelope xmlns='urn:xmpp:sce:1'><content/><from jid='a@b'/></envelope><envelope/>`,
		`<envelope xmlns='urn:xmpp:sce:1'><content>`,
	} {
		if _, err := ParseEnvelope([]byte(bad), ""); !errors.Is(err, ErrEnvelope) {
			t.Errorf("%s: got %v", bad, err)
		}
	}
	// Content must not break out of <content/>.
	for _, c := range []string{`</content><from jid='x@y'/><content>`, `<body>`, `a</b>`} {
		if _, err := (&Envelope{Content: []byte(c), From: "a@b"}).Marshal(nil); !errors.Is(err, ErrEnvelope) {
			t.Errorf("content %q accepted: %v", c, err)
		}
	}
}
