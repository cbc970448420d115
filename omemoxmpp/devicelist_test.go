package omemoxmpp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

func TestDeviceListXML(t *testing.T) {
	devices := []omemo.Device{{ID: 1, Label: "phone"}, {ID: 22}}
	for _, tc := range []struct {
		v    omemo.Version
		want string
	}{
		{omemo.V03, `<list xmlns="eu.siacs.conversations.axolotl"><device xmlns="eu.siacs.conversations.axolotl" id="1"></device><device xmlns="eu.siacs.conversations.axolotl" id="22"></device></list>`},
		{omemo.V2, `<devices xmlns="urn:xmpp:omemo:2"><device xmlns="urn:xmpp:omemo:2" id="1" label="phone"></device><device xmlns="urn:xmpp:omemo:2" id="22"></device></devices>`},
	} {
		r, err := DeviceListXML(&omemo.DeviceList{Version: tc.v, Devices: devices})
		if err != nil {
			t.Fatalf("%s: %v", tc.v, err)
		}
		var buf bytes.Buffer
		e := xml.NewEncoder(&buf)
		if _, err := xmlstream.Copy(e, r); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.v, buf.String(), tc.want)
		}
	}
	if _, err := DeviceListXML(&omemo.DeviceList{}); err == nil {
		t.Error("device list without version marshalled")
	}
}

// TestDeviceListXMLRoundTrip: what is published parses back to the same
// devices, labels with markup characters included.
func TestDeviceListXMLRoundTrip(t *testing.T) {
	for _, v := range []omemo.Version{omemo.V03, omemo.V2} {
		in := &omemo.DeviceList{Version: v, Devices: []omemo.Device{{ID: 1}, {ID: 4242}}}
		if v == omemo.V2 {
			in.Devices[1].Label = "phone <&>"
		}
		r, err := DeviceListXML(in)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		enc := xml.NewEncoder(&b)
		if _, err := xmlstream.Copy(enc, r); err != nil {
			t.Fatal(err)
		}
		if err := enc.Flush(); err != nil {
			t.Fatal(err)
		}
		var out omemo.DeviceList
		if err := xml.Unmarshal(b.Bytes(), &out); err != nil {
			t.Fatalf("%s: %v in %s", v, err, b.String())
		}
		if out.Version != v || fmt.Sprint(out.Devices) != fmt.Sprint(in.Devices) {
			t.Errorf("%s: %s parsed as %+v", v, b.String(), out)
		}
	}
}
