package omemoxmpp

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

func TestAnnounce(t *testing.T) {
	srv := newFakeServer()
	// Another client of alice already announced device 42 for 0.3.
	srv.put(t, "alice@example.org", omemo.V03.DeviceListNode(), "current",
		`<list xmlns='eu.siacs.conversations.axolotl'><device id='42'/></list>`)
	a := newDevice(t, srv, "alice@example.org", Options{Label: "Matrix bridge"})
	a.announce(t)
	id := a.m.DeviceID()
	ids := strconv.FormatUint(uint64(id), 10)

	calls := srv.calls()
	var order []string
	for _, c := range calls {
		order = append(order, c.node+"#"+c.id)
		if got, _ := optionValue(c, "pubsub#access_model"); got != "open" {
			t.Errorf("publish to %s without access_model=open: %v", c.node, c.options)
		}
		max, hasMax := optionValue(c, "pubsub#max_items")
		if c.node == omemo.NamespaceV2+":bundles" {
			if !hasMax || max != "max" {
				t.Errorf("OMEMO 2 bundles node max_items = %q, want max (XEP-0384)", max)
			}
		} else if hasMax {
			t.Errorf("unexpected max_items on %s", c.node)
		}
	}
	want := []string{
		omemo.NamespaceV2 + ":bundles#" + ids,
		omemo.NamespaceV03 + ".bundles:" + ids + "#current",
		omemo.NamespaceV2 + ":devices#current",
		omemo.NamespaceV03 + ".devicelist#current",
	}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("publish order\n got %v\nwant %v", order, want)
	}

	// The lists keep device 42 and carry ours.
	l03 := srv.itemXML("alice@example.org", omemo.V03.DeviceListNode(), "current")
	if !strings.Contains(l03, `id="42"`) || !strings.Contains(l03, `id="`+ids+`"`) {
		t.Errorf("0.3 list lost a device: %s", l03)
	}
	l2 := srv.itemXML("alice@example.org", omemo.V2.DeviceListNode(), "current")
	if !strings.Contains(l2, `id="`+ids+`"`) || !strings.Contains(l2, `label="Matrix bridge"`) || strings.Contains(l2, `id="42"`) {
		t.Errorf("wrong OMEMO 2 list: %s", l2)
	}
	// The published bundles parse and are ours.
	for _, v := range []omemo.Version{omemo.V03, omemo.V2} {
		b, err := a.c.FetchBundle(context.Background(), jid.MustParse("alice@example.org"), id, v)
		if err != nil {
			t.Fatalf("fetch own %s bundle: %v", v, err)
		}
		if !reflect.DeepEqual(b.IdentityKey, a.m.IdentityKey(v)) || len(b.PreKeys) != 25 {
			t.Errorf("%s bundle is not ours: %d prekeys", v, len(b.PreKeys))
		}
	}
	// Our own lists are stored for encryption to our other devices.
	stored, err := a.store.DeviceList(context.Background(), omemo.V03, "alice@example.org")
	if err != nil || len(stored) != 2 {
		t.Errorf("stored own 0.3 list = %v, %v", stored, err)
	}

	// Announcing again publishes bundles only: the lists already have us.
	n := len(srv.calls())
	a.announce(t)
	for _, c := range srv.calls()[n:] {
		if strings.Contains(c.node, "devices") || strings.Contains(c.node, "devicelist") {
			t.Errorf("second Announce republished %s", c.node)
		}
	}
	if got := len(srv.calls()) - n; got != 2 {
		t.Errorf("second Announce made %d publishes, want 2 bundles", got)
	}
}

func optionValue(c publishCall, v string) (string, bool) {
	for _, f := range c.options {
		if f.Var == v && len(f.Values) > 0 {
			return f.Values[0], true
		}
	}
	return "", false
}

func TestRepublishAfterPreKeyUse(t *testing.T) {
	srv := newFakeServer()
	a := newDevice(t, srv, "alice@example.org", Options{Versions: []omemo.Version{omemo.V03}})
	a.announce(t)
	before := srv.itemXML("alice@example.org", omemo.V03.BundleNode(a.m.DeviceID()), "current")
	b := newDevice(t, srv, "bob@example.org", Options{})
	b.announce(t)
	ctx := context.Background()
	out, err := b.c.Encrypt(ctx, jid.MustParse("alice@example.org"), "hi")
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	msg, err := a.c.DecryptStanza(ctx, stanzaReader(t, "bob@example.org/x", out))
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	if !msg.PreKeyConsumed {
		t.Fatal("first message did not report a consumed prekey")
	}
	if err := a.c.Republish(ctx); err != nil {
		t.Fatalf("republish: %v", err)
	}
	after := srv.itemXML("alice@example.org", omemo.V03.BundleNode(a.m.DeviceID()), "current")
	if before == after {
		t.Error("bundle unchanged after a prekey was consumed")
	}
	// Only the 0.3 bundle: this client speaks 0.3 only.
	if x := srv.itemXML("alice@example.org", omemo.V2.BundleNode(0), strconv.FormatUint(uint64(a.m.DeviceID()), 10)); x != "" {
		t.Error("a 0.3-only client published an OMEMO 2 bundle")
	}
}

func TestWithDevice(t *testing.T) {
	me := omemo.Device{ID: 7, Label: "bridge"}
	for _, tc := range []struct {
		name    string
		v       omemo.Version
		in      []omemo.Device
		want    []omemo.Device
		changed bool
	}{
		{"empty 0.3", omemo.V03, nil, []omemo.Device{{ID: 7}}, true},
		{"empty 2", omemo.V2, []omemo.Device{}, []omemo.Device{{ID: 7, Label: "bridge"}}, true},
		{"keep others", omemo.V03, []omemo.Device{{ID: 1}, {ID: 2}}, []omemo.Device{{ID: 1}, {ID: 2}, {ID: 7}}, true},
		{"present 0.3", omemo.V03, []omemo.Device{{ID: 1}, {ID: 7}}, []omemo.Device{{ID: 1}, {ID: 7}}, false},
		{"present 2", omemo.V2, []omemo.Device{{ID: 7, Label: "bridge"}, {ID: 1, Label: "phone"}}, []omemo.Device{{ID: 7, Label: "bridge"}, {ID: 1, Label: "phone"}}, false},
		{"label changed", omemo.V2, []omemo.Device{{ID: 7, Label: "old"}}, []omemo.Device{{ID: 7, Label: "bridge"}}, true},
		{"duplicate dropped", omemo.V03, []omemo.Device{{ID: 7}, {ID: 7}}, []omemo.Device{{ID: 7}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := withDevice(tc.in, me, tc.v)
			if !reflect.DeepEqual(got, tc.want) || changed != tc.changed {
				t.Errorf("withDevice = %v, %v; want %v, %v", got, changed, tc.want, tc.changed)
			}
		})
	}
}

// TestAnnounceWithoutConfigNodeMax: a service that refuses max_items=max
// gets the OMEMO 2 bundle with a number instead; the announcement succeeds.
func TestAnnounceWithoutConfigNodeMax(t *testing.T) {
	srv := newFakeServer()
	srv.refuseMax = true
	a := newDevice(t, srv, "alice@example.org", Options{})
	a.announce(t)
	var bundles int
	for _, c := range srv.calls() {
		if c.node != omemo.NamespaceV2+":bundles" {
			continue
		}
		bundles++
		if max, _ := optionValue(c, "pubsub#max_items"); max != strconv.Itoa(BundleMaxItems) {
			t.Errorf("fallback publish with max_items %q, want %d", max, BundleMaxItems)
		}
	}
	if bundles != 1 {
		t.Fatalf("%d OMEMO 2 bundles stored, want 1", bundles)
	}
}

// A service that refuses pubsub#max_items in publish-options altogether
// (ejabberd 23.01): the OMEMO 2 bundle is published without it.
func TestAnnounceWithoutMaxItems(t *testing.T) {
	srv := newFakeServer()
	srv.refuseMaxItems = true
	a := newDevice(t, srv, "alice@example.org", Options{})
	a.announce(t)
	ids := strconv.FormatUint(uint64(a.m.DeviceID()), 10)
	if srv.itemXML("alice@example.org", omemo.V2.BundleNode(a.m.DeviceID()), ids) == "" {
		t.Fatal("OMEMO 2 bundle not published")
	}
	if l2 := srv.itemXML("alice@example.org", omemo.V2.DeviceListNode(), "current"); !strings.Contains(l2, `id="`+ids+`"`) {
		t.Errorf("OMEMO 2 list without our device: %s", l2)
	}
}

// One version's bundle refused: the other version is announced all the
// same, the refused version's list never gets our device (not from
// Announce, not when our own list comes back in a notification), and the
// failure is reported for that version only.
func TestAnnounceVersionsIndependent(t *testing.T) {
	for _, refused := range []omemo.Version{omemo.V2, omemo.V03} {
		t.Run(refused.String(), func(t *testing.T) {
			srv := newFakeServer()
			a := newDevice(t, srv, "alice@example.org", Options{})
			srv.refuseNodes = map[string]bool{refused.BundleNode(a.m.DeviceID()): true}
			err := a.c.Announce(context.Background())
			if err == nil || !strings.Contains(err.Error(), "OMEMO "+refused.String()+":") {
				t.Fatalf("Announce = %v, want the %s failure", err, refused)
			}
			other := omemo.V2
			if refused == omemo.V2 {
				other = omemo.V03
			}
			st := a.c.AnnounceStatus()
			if st[refused].Err == nil || st[other].Err != nil {
				t.Errorf("status %+v", st)
			}
			ids := strconv.FormatUint(uint64(a.m.DeviceID()), 10)
			if l := srv.itemXML("alice@example.org", other.DeviceListNode(), "current"); !strings.Contains(l, `id="`+ids+`"`) {
				t.Errorf("%s list without our device: %s", other, l)
			}
			if l := srv.itemXML("alice@example.org", refused.DeviceListNode(), "current"); strings.Contains(l, `id="`+ids+`"`) {
				t.Errorf("%s list has our device without a bundle: %s", refused, l)
			}
			republished, err := a.c.HandleDeviceListUpdate(context.Background(), &DeviceListUpdate{
				JID: jid.MustParse("alice@example.org"), Version: refused, Devices: []omemo.Device{{ID: 42}}})
			if err != nil || republished {
				t.Errorf("own %s list pushed: republished %v, %v", refused, republished, err)
			}
			// Once the server accepts it, the next announcement (the retry) lists it.
			srv.refuseNodes = nil
			if err := a.c.Announce(context.Background()); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if l := srv.itemXML("alice@example.org", refused.DeviceListNode(), "current"); !strings.Contains(l, `id="`+ids+`"`) {
				t.Errorf("after the retry, %s list without our device: %s", refused, l)
			}
		})
	}
}
