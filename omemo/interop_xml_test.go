package omemo_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// The XML codec on its own against python-omemo's etree serialisers and
// schema validation: python's elements go through our parser and marshaller
// and python still accepts (and decrypts) the result.

// pyPair is two python devices that know each other.
type pyPair struct {
	alice, bob       *pyPeer
	aliceDev, bobDev uint32
}

const (
	aliceJID = "alice@example.org"
	bobJID   = "bob@example.org"
)

func newPyPair(t *testing.T, v omemo.Version) *pyPair {
	t.Helper()
	p := &pyPair{alice: startPyPeer(t, "alice-"+v.String()), bob: startPyPeer(t, "bob-"+v.String())}
	var c struct {
		DeviceID uint32 `json:"device_id"`
	}
	p.alice.mustInto("create", map[string]any{"jid": aliceJID, "versions": []string{v.String()}}, &c)
	p.aliceDev = c.DeviceID
	p.bob.mustInto("create", map[string]any{"jid": bobJID, "versions": []string{v.String()}}, &c)
	p.bobDev = c.DeviceID
	return p
}

// relay hands from's published device list and bundle to to, through our
// parser and marshaller.
func relayPublished(t *testing.T, v omemo.Version, from *pyPeer, fromJID string, to *pyPeer) {
	t.Helper()
	var pub struct {
		DeviceID   uint32 `json:"device_id"`
		Bundle     string `json:"bundle"`
		DeviceList string `json:"device_list"`
	}
	from.mustInto("bundle", map[string]any{"version": v.String()}, &pub)
	dl, err := omemo.ParseDeviceList([]byte(pub.DeviceList))
	if err != nil {
		t.Fatalf("ParseDeviceList(%s): %v", pub.DeviceList, err)
	}
	dx, err := dl.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := omemo.ParseBundle([]byte(pub.Bundle))
	if err != nil {
		t.Fatalf("ParseBundle(%s): %v", pub.Bundle, err)
	}
	bx, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var ids struct {
		Devices []uint32 `json:"devices"`
	}
	to.mustInto("set_devices", map[string]any{"jid": fromJID, "version": v.String(), "xml": string(dx)}, &ids)
	if len(ids.Devices) != 1 || ids.Devices[0] != pub.DeviceID {
		t.Fatalf("python read our re-marshalled device list %s as %v", dx, ids.Devices)
	}
	to.must("set_bundle", map[string]any{"jid": fromJID, "version": v.String(), "device_id": pub.DeviceID, "xml": string(bx)})
}

// reencode parses python's <encrypted/> and marshals it again.
func reencode(t *testing.T, v omemo.Version, x string) (*omemo.Encrypted, string) {
	t.Helper()
	enc, err := omemo.ParseEncrypted([]byte(x))
	if err != nil {
		t.Fatalf("ParseEncrypted(%s): %v", x, err)
	}
	if enc.Version != v {
		t.Fatalf("parsed version %v, want %v", enc.Version, v)
	}
	out, err := enc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return enc, string(out)
}

func TestInteropXMLCodec(t *testing.T) {
	forVersions(t, func(t *testing.T, v omemo.Version) {
		p := newPyPair(t, v)
		relayPublished(t, v, p.alice, aliceJID, p.bob)
		relayPublished(t, v, p.bob, bobJID, p.alice)

		send := func(from, to *pyPeer, fromJID, toJID string, toDev, fromDev uint32, body string, wantKex bool) {
			t.Helper()
			var r struct {
				XML string `json:"xml"`
			}
			from.mustInto("encrypt", map[string]any{"to": toJID, "version": v.String(), "plaintext": body}, &r)
			enc, x := reencode(t, v, r.XML)
			if enc.SenderDevice != fromDev || enc.Payload == nil {
				t.Errorf("parsed sid %d payload %v", enc.SenderDevice, enc.Payload != nil)
			}
			if v == omemo.V03 && len(enc.IV) != 12 {
				t.Errorf("python's IV is %d bytes", len(enc.IV))
			}
			k := enc.KeyFor(toJID, toDev)
			if k == nil || k.KeyExchange != wantKex {
				t.Fatalf("parsed keys %+v: want one for %s/%d with key exchange %v", enc.Keys, toJID, toDev, wantKex)
			}
			var d pyDecrypted
			to.mustInto("decrypt", map[string]any{"xml": x, "from": fromJID}, &d)
			if d.Empty || d.Body != body {
				t.Errorf("python decrypted our re-encoding of its message as %+v", d)
			}
		}
		send(p.alice, p.bob, aliceJID, bobJID, p.bobDev, p.aliceDev, "kex through our codec", true)
		var out struct {
			Messages []pyOutMsg `json:"messages"`
		}
		p.bob.mustInto("outbox", nil, &out)
		if len(out.Messages) != 1 {
			t.Fatalf("bob sent %d automatic messages", len(out.Messages))
		}
		enc, x := reencode(t, v, out.Messages[0].XML)
		if enc.Payload != nil {
			t.Errorf("empty message parsed with payload %x", enc.Payload)
		}
		var d pyDecrypted
		p.alice.mustInto("decrypt", map[string]any{"xml": x, "from": bobJID}, &d)
		if !d.Empty {
			t.Errorf("alice read bob's empty message as %+v", d)
		}
		send(p.bob, p.alice, bobJID, aliceJID, p.aliceDev, p.bobDev, "reply <with> & markup", false)
		send(p.alice, p.bob, aliceJID, bobJID, p.bobDev, p.aliceDev, "ünïcödé ✓", false)

		if v == omemo.V2 {
			// Our envelope, read by python; python's, read by us.
			env := &omemo.Envelope{Content: []byte("<body xmlns='jabber:client'>our envelope</body>"), From: aliceJID, To: bobJID}
			ex, err := env.Marshal(nil)
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				XML string `json:"xml"`
			}
			p.alice.mustInto("encrypt", map[string]any{"to": bobJID, "version": "2", "envelope": string(ex)}, &r)
			p.bob.mustInto("decrypt", map[string]any{"xml": r.XML, "from": aliceJID}, &d)
			if d.Body != "our envelope" || d.Envelope == nil || d.Envelope.From != aliceJID || d.Envelope.To != bobJID || !d.Envelope.RPad {
				t.Errorf("python read our envelope %s as %+v", ex, d)
			}
			var pe struct {
				Envelope string `json:"envelope"`
			}
			p.alice.mustInto("encrypt", map[string]any{"to": bobJID, "version": "2", "plaintext": "python's envelope"}, &pe)
			got, err := omemo.ParseEnvelope([]byte(pe.Envelope), aliceJID)
			if err != nil {
				t.Fatalf("ParseEnvelope(%s): %v", pe.Envelope, err)
			}
			if !bytes.Contains(got.Content, []byte("python's envelope")) || got.To != bobJID || got.RPad == "" {
				t.Errorf("parsed python's envelope %s as %+v", pe.Envelope, got)
			}
			if _, err := omemo.ParseEnvelope([]byte(pe.Envelope), "mallory@example.org"); err == nil {
				t.Error("python's envelope accepted from the wrong sender")
			}
		}
	})
}

// Our device list with labels and python's; python's schema validates ours.
func TestInteropXMLDeviceList(t *testing.T) {
	forVersions(t, func(t *testing.T, v omemo.Version) {
		p := startPyPeer(t, "devlist-"+v.String())
		p.must("create", map[string]any{"jid": aliceJID, "versions": []string{v.String()}})
		dl := &omemo.DeviceList{Version: v, Devices: []omemo.Device{{ID: 1}, {ID: 2147483647, Label: "Bridge"}, {ID: 42}}}
		x, err := dl.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if v == omemo.V03 && strings.Contains(string(x), "label") {
			t.Errorf("0.3 device list carries a label: %s", x)
		}
		var ids struct {
			Devices []uint32 `json:"devices"`
		}
		p.mustInto("set_devices", map[string]any{"jid": bobJID, "version": v.String(), "xml": string(x)}, &ids)
		if len(ids.Devices) != 3 || ids.Devices[0] != 1 || ids.Devices[1] != 42 || ids.Devices[2] != 2147483647 {
			t.Errorf("python read %s as %v", x, ids.Devices)
		}
	})
}
