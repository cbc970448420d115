package pubsub_test

import (
	"encoding/xml"
	"reflect"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

type device struct {
	ID string `xml:"id,attr"`
}

type deviceList struct {
	XMLName xml.Name `xml:"urn:xmpp:omemo:2 devices"`
	Devices []device `xml:"device"`
}

func TestParseItems(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		ids     []string
		devices []int // number of devices in each item's payload; -1: no payload
		err     error
	}{{
		name: "two items",
		in: `<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:omemo:2:devices">` +
			`<item id="current"><devices xmlns="urn:xmpp:omemo:2"><device id="1"/><device id="2"/></devices></item>` +
			`<item id="old"/></items><set xmlns="http://jabber.org/protocol/rsm"><count>2</count></set></pubsub></iq>`,
		ids: []string{"current", "old"}, devices: []int{2, -1},
	}, {
		name: "no items",
		in:   `<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="n"/></pubsub></iq>`,
	}, {
		name: "node missing",
		in:   `<iq xmlns="jabber:client" type="error"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`,
		err:  stanza.Error{Condition: stanza.ItemNotFound},
	}, {
		name: "empty result",
		in:   `<iq xmlns="jabber:client" type="result"/>`,
		err:  pubsub.ErrMalformed,
	}, {
		name: "no items element",
		in:   `<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub"/></iq>`,
		err:  pubsub.ErrMalformed,
	}, {
		name: "two payloads",
		in: `<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="n">` +
			`<item id="x"><a/><b/></item></items></pubsub></iq>`,
		err: pubsub.ErrMalformed,
	}, {
		name: "owner namespace is not a result",
		in:   `<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><items node="n"/></pubsub></iq>`,
		err:  pubsub.ErrMalformed,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := pubsub.ParseItems(xmltest.Reader(tc.in))
			checkErr(t, err, tc.err)
			if tc.err != nil {
				return
			}
			var ids []string
			for i, it := range items {
				ids = append(ids, it.ID)
				if !it.HasPayload() {
					if tc.devices[i] != -1 {
						t.Errorf("item %s: payload missing", it.ID)
					}
					if it.Decode(&deviceList{}) == nil {
						t.Errorf("item %s: decoding a missing payload succeeded", it.ID)
					}
					continue
				}
				// Payloads can be decoded twice.
				for n := 0; n < 2; n++ {
					var l deviceList
					if err := it.Decode(&l); err != nil {
						t.Fatalf("item %s: %v", it.ID, err)
					}
					if len(l.Devices) != tc.devices[i] {
						t.Errorf("item %s: want %d devices, got %d", it.ID, tc.devices[i], len(l.Devices))
					}
				}
			}
			if !reflect.DeepEqual(ids, tc.ids) {
				t.Errorf("wrong ids: want=%v, got=%v", tc.ids, ids)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	const in = `<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="n">` +
		`<x xmlns="jabber:x:data" type="form"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field>` +
		`<field var="pubsub#access_model" type="list-single" label="Who may subscribe"><option><value>open</value></option><value>presence</value></field>` +
		`<field var="pubsub#max_items" type="text-single"><value>1</value></field></x></configure></pubsub></iq>`
	f, err := pubsub.ParseConfig(xmltest.Reader(in))
	if err != nil {
		t.Fatal(err)
	}
	if f.FormType != pubsub.NSNodeConfig || f.Type != "form" {
		t.Errorf("wrong form header: %+v", f)
	}
	if v, _ := f.Get("pubsub#access_model"); v != "presence" {
		t.Errorf("wrong access model %q (option values must not count)", v)
	}
	if v, ok := f.Get("pubsub#max_items"); v != "1" || !ok {
		t.Errorf("wrong max items %q", v)
	}
	if _, ok := f.Get("missing"); ok {
		t.Error("missing field found")
	}
	if _, err := pubsub.ParseConfig(xmltest.Reader(`<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="n"/></pubsub></iq>`)); err == nil {
		t.Error("config without form accepted")
	}
}

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		from      string
		node      string
		ids       []string
		retracted []string
		purged    bool
		err       error
	}{{
		name: "device list",
		in: `<message xmlns="jabber:client" from="juliet@capulet.example" to="romeo@montague.example/home" type="headline">` +
			`<event xmlns="http://jabber.org/protocol/pubsub#event"><items node="urn:xmpp:omemo:2:devices">` +
			`<item id="current" publisher="juliet@capulet.example"><devices xmlns="urn:xmpp:omemo:2"><device id="7"/></devices></item></items></event>` +
			`<addresses xmlns="http://jabber.org/protocol/address"/></message>`,
		from: "juliet@capulet.example", node: "urn:xmpp:omemo:2:devices", ids: []string{"current"},
	}, {
		name: "retraction",
		in: `<message xmlns="jabber:client" from="juliet@capulet.example"><event xmlns="http://jabber.org/protocol/pubsub#event">` +
			`<items node="n"><retract id="a"/><retract id="b"/></items></event></message>`,
		from: "juliet@capulet.example", node: "n", retracted: []string{"a", "b"},
	}, {
		name: "purge",
		in:   `<message xmlns="jabber:client"><event xmlns="http://jabber.org/protocol/pubsub#event"><purge node="n"/></event></message>`,
		node: "n", purged: true,
	}, {
		name: "no event",
		in:   `<message xmlns="jabber:client"><body>hi</body></message>`,
		err:  pubsub.ErrNoEvent,
	}, {
		name: "event in request namespace",
		in:   `<message xmlns="jabber:client"><event xmlns="http://jabber.org/protocol/pubsub"><items node="n"/></event></message>`,
		err:  pubsub.ErrNoEvent,
	}, {
		name: "items without node",
		in:   `<message xmlns="jabber:client"><event xmlns="http://jabber.org/protocol/pubsub#event"><items><item id="a"/></items></event></message>`,
		err:  pubsub.ErrMalformed,
	}, {
		name: "empty event",
		in:   `<message xmlns="jabber:client"><event xmlns="http://jabber.org/protocol/pubsub#event"/></message>`,
		err:  pubsub.ErrMalformed,
	}, {
		name: "retract without id",
		in:   `<message xmlns="jabber:client"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="n"><retract/></items></event></message>`,
		err:  pubsub.ErrMalformed,
	}, {
		name: "bad from",
		in:   `<message xmlns="jabber:client" from="@"><event xmlns="http://jabber.org/protocol/pubsub#event"><purge node="n"/></event></message>`,
		err:  pubsub.ErrMalformed,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := pubsub.ParseEvent(xmltest.Reader(tc.in))
			checkErr(t, err, tc.err)
			if tc.err != nil {
				return
			}
			var ids []string
			for _, it := range ev.Items {
				ids = append(ids, it.ID)
			}
			if ev.From.String() != tc.from || ev.Node != tc.node || ev.Purged != tc.purged ||
				!reflect.DeepEqual(ids, tc.ids) || !reflect.DeepEqual(ev.Retracted, tc.retracted) {
				t.Errorf("wrong event: %+v", ev)
			}
			if tc.name == "device list" {
				var l deviceList
				if err := ev.Items[0].Decode(&l); err != nil || len(l.Devices) != 1 || l.Devices[0].ID != "7" {
					t.Errorf("wrong payload %+v: %v", l, err)
				}
				if ev.Items[0].Publisher != "juliet@capulet.example" {
					t.Errorf("wrong publisher %q", ev.Items[0].Publisher)
				}
			}
		})
	}
}

func TestItemBytes(t *testing.T) {
	items, err := pubsub.ParseItems(xmltest.Reader(`<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub">` +
		`<items node="n"><item id="a"><devices xmlns="urn:xmpp:omemo:2"><device id="1" label="phone"/></devices></item><item id="b"/></items></pubsub></iq>`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := items[0].Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var l deviceList
	if err := xml.Unmarshal(b, &l); err != nil || len(l.Devices) != 1 || l.Devices[0].ID != "1" {
		t.Errorf("bytes do not parse back: %s: %+v %v", b, l, err)
	}
	if _, err := items[1].Bytes(); err == nil {
		t.Error("bytes of an empty item")
	}
}
