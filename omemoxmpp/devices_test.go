package omemoxmpp

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

const (
	ev03 = `<message xmlns='jabber:client' from='bob@example.org' to='alice@example.org/bridge' type='headline'>` +
		`<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='eu.siacs.conversations.axolotl.devicelist'>` +
		`<item id='current'><list xmlns='eu.siacs.conversations.axolotl'><device id='11'/><device id='12'/></list></item></items></event></message>`
	ev2 = `<message xmlns='jabber:client' from='bob@example.org' type='headline'>` +
		`<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:omemo:2:devices'>` +
		`<item id='current'><devices xmlns='urn:xmpp:omemo:2'><device id='21' label='Phone'/></devices></item></items></event></message>`
)

func TestParseDeviceListEvent(t *testing.T) {
	own := jid.MustParse("alice@example.org/bridge")
	for _, tc := range []struct {
		name    string
		in      string
		want    *DeviceListUpdate
		wantErr error
	}{
		{"0.3 contact", ev03, &DeviceListUpdate{JID: jid.MustParse("bob@example.org"), Version: omemo.V03, Devices: []omemo.Device{{ID: 11}, {ID: 12}}}, nil},
		{"2 contact", ev2, &DeviceListUpdate{JID: jid.MustParse("bob@example.org"), Version: omemo.V2, Devices: []omemo.Device{{ID: 21, Label: "Phone"}}}, nil},
		{"own, no from", strings.Replace(ev2, ` from='bob@example.org'`, ``, 1),
			&DeviceListUpdate{JID: jid.MustParse("alice@example.org"), Version: omemo.V2, Devices: []omemo.Device{{ID: 21, Label: "Phone"}}}, nil},
		{"normal type, unterminated reader", strings.Replace(ev03, "headline", "normal", 1),
			&DeviceListUpdate{JID: jid.MustParse("bob@example.org"), Version: omemo.V03, Devices: []omemo.Device{{ID: 11}, {ID: 12}}}, nil},
		{"retracted", `<message xmlns='jabber:client' from='bob@example.org'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:omemo:2:devices'><retract id='current'/></items></event></message>`,
			&DeviceListUpdate{JID: jid.MustParse("bob@example.org"), Version: omemo.V2, Devices: []omemo.Device{}}, nil},
		{"purged", `<message xmlns='jabber:client' from='bob@example.org'><event xmlns='http://jabber.org/protocol/pubsub#event'><purge node='eu.siacs.conversations.axolotl.devicelist'/></event></message>`,
			&DeviceListUpdate{JID: jid.MustParse("bob@example.org"), Version: omemo.V03, Devices: []omemo.Device{}}, nil},
		{"other node", strings.Replace(ev03, "eu.siacs.conversations.axolotl.devicelist", "urn:xmpp:avatar:metadata", 1), nil, ErrNotDeviceList},
		{"no event", `<message xmlns='jabber:client' from='bob@example.org'><body>hi</body></message>`, nil, ErrNotDeviceList},
		{"full JID from", strings.Replace(ev03, "from='bob@example.org'", "from='bob@example.org/phone'", 1), nil, ErrMalformed},
		{"server from", strings.Replace(ev03, "from='bob@example.org'", "from='example.org'", 1), nil, ErrMalformed},
		{"wrong namespace payload", strings.Replace(ev2, "<devices xmlns='urn:xmpp:omemo:2'>", "<devices xmlns='urn:example'>", 1), nil, ErrMalformed},
		{"bad id", strings.Replace(ev03, "id='11'", "id='x'", 1), nil, ErrMalformed},
		{"0.3 list in 2 node", strings.Replace(ev03, "eu.siacs.conversations.axolotl.devicelist", "urn:xmpp:omemo:2:devices", 1), nil, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := xmlReader(tc.in)
			if strings.Contains(tc.name, "unterminated") {
				r = truncated(t, tc.in)
			}
			got, err := ParseDeviceListEvent(r, own)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !got.JID.Equal(tc.want.JID) || got.Version != tc.want.Version || !reflect.DeepEqual(got.Devices, tc.want.Devices) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHandleDeviceListEvent(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer()
	a := newDevice(t, srv, "alice@example.org", Options{})
	a.announce(t)

	// A contact's list is stored.
	if _, err := a.c.HandleDeviceListEvent(ctx, xmlReader(ev03)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	got, err := a.store.DeviceList(ctx, omemo.V03, "bob@example.org")
	if err != nil || !reflect.DeepEqual(got, []omemo.Device{{ID: 11}, {ID: 12}}) {
		t.Errorf("stored %v, %v", got, err)
	}
	set, err := a.c.Devices(ctx, jid.MustParse("bob@example.org"))
	if err != nil || !reflect.DeepEqual(set, DeviceSet{11: {omemo.V03}, 12: {omemo.V03}}) {
		t.Errorf("Devices = %v, %v", set, err)
	}

	// Another client overwrote our own list without us: we come back.
	own := `<message xmlns='jabber:client' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:omemo:2:devices'>` +
		`<item id='current'><devices xmlns='urn:xmpp:omemo:2'><device id='99'/></devices></item></items></event></message>`
	n := len(srv.calls())
	upd, err := a.c.HandleDeviceListEvent(ctx, xmlReader(own))
	if err != nil {
		t.Fatalf("handle own: %v", err)
	}
	if !upd.JID.Equal(jid.MustParse("alice@example.org")) {
		t.Errorf("own update attributed to %s", upd.JID)
	}
	calls := srv.calls()[n:]
	if len(calls) != 1 || calls[0].node != omemo.V2.DeviceListNode() || !strings.Contains(calls[0].payload, `id="99"`) ||
		!strings.Contains(calls[0].payload, `id="`+itoa(a.m.DeviceID())+`"`) {
		t.Errorf("own list not republished with both devices: %+v", calls)
	}
	// An own list that has us changes nothing on the server.
	n = len(srv.calls())
	if _, err := a.c.HandleDeviceListEvent(ctx, xmlReader(strings.Replace(own, "<device id='99'/>",
		"<device id='99'/><device id='"+itoa(a.m.DeviceID())+"'/>", 1))); err != nil {
		t.Fatalf("handle own: %v", err)
	}
	if len(srv.calls()) != n {
		t.Error("republished a list that had our device")
	}
}

func TestFetchDevicesAndBundle(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer()
	b1 := newDevice(t, srv, "bob@example.org", Options{})
	b1.announce(t)
	b2 := newDevice(t, srv, "bob@example.org", Options{Versions: []omemo.Version{omemo.V03}})
	b2.announce(t)
	a := newDevice(t, srv, "alice@example.org", Options{})

	set, err := a.c.FetchDevices(ctx, jid.MustParse("bob@example.org/phone"))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	want := DeviceSet{b1.m.DeviceID(): {omemo.V2, omemo.V03}, b2.m.DeviceID(): {omemo.V03}}
	if !reflect.DeepEqual(set, want) {
		t.Errorf("set = %v, want %v", set, want)
	}
	if set.Preferred(b1.m.DeviceID()) != omemo.V2 || set.Preferred(b2.m.DeviceID()) != omemo.V03 || set.Preferred(1) != 0 {
		t.Error("wrong preferred versions")
	}
	for _, v := range []omemo.Version{omemo.V03, omemo.V2} {
		if l, _ := a.store.DeviceList(ctx, v, "bob@example.org"); len(l) == 0 {
			t.Errorf("%s list not stored", v)
		}
	}
	// A JID without OMEMO has an empty set and no error.
	set, err = a.c.FetchDevices(ctx, jid.MustParse("carol@example.org"))
	if err != nil || len(set) != 0 {
		t.Errorf("carol: %v, %v", set, err)
	}
	if _, err := a.c.FetchBundle(ctx, jid.MustParse("bob@example.org"), b2.m.DeviceID(), omemo.V2); !errors.Is(err, ErrNoBundle) {
		t.Errorf("0.3-only device's OMEMO 2 bundle: err = %v, want ErrNoBundle", err)
	}
	if _, err := a.c.FetchBundle(ctx, jid.MustParse("bob@example.org"), 12345, omemo.V03); !errors.Is(err, ErrNoBundle) {
		t.Errorf("unknown device: err = %v, want ErrNoBundle", err)
	}
	// A fetch failure keeps the stored list and reports the error.
	a.pep.fail = map[string]error{omemo.V2.DeviceListNode(): errors.New("timeout")}
	set, err = a.c.FetchDevices(ctx, jid.MustParse("bob@example.org"))
	if err == nil || !set.Speaks(b1.m.DeviceID(), omemo.V2) {
		t.Errorf("failed fetch: %v, %v", set, err)
	}
}

// TestListed: Listed finds a device in either version's stored list, tells
// "no list stored" from "not listed", and follows list changes.
func TestListed(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer()
	a := newDevice(t, srv, "alice@example.org", Options{})
	bob := jid.MustParse("bob@example.org/phone")
	for _, tc := range []struct {
		name          string
		v2, v03       []omemo.Device // nil: not stored (not written)
		device        uint32
		listed, known bool
	}{
		{"nothing stored", nil, nil, 7, false, false},
		{"in the OMEMO 2 list", []omemo.Device{{ID: 7}}, nil, 7, true, true},
		{"in the 0.3 list only", []omemo.Device{{ID: 8}}, []omemo.Device{{ID: 9}, {ID: 7}}, 7, true, true},
		{"removed from both", []omemo.Device{{ID: 8}}, []omemo.Device{{ID: 9}}, 7, false, true},
		{"lists stored empty", []omemo.Device{}, []omemo.Device{}, 7, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for v, l := range map[omemo.Version][]omemo.Device{omemo.V2: tc.v2, omemo.V03: tc.v03} {
				if l == nil {
					continue
				}
				if err := a.store.PutDeviceList(ctx, v, "bob@example.org", l); err != nil {
					t.Fatal(err)
				}
			}
			listed, known, err := a.c.Listed(ctx, bob, tc.device)
			if err != nil || listed != tc.listed || known != tc.known {
				t.Fatalf("Listed = %v, %v, %v; want %v, %v", listed, known, err, tc.listed, tc.known)
			}
		})
	}
}
