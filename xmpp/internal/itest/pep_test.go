//go:build integration

package itest

import (
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

const (
	devicesNode = "urn:xmpp:omemo:2:devices"
	capsNode    = "https://github.com/mxomemo/xmpp-bridge"
)

type devices struct {
	XMLName xml.Name `xml:"urn:xmpp:omemo:2 devices"`
	Devices []struct {
		ID string `xml:"id,attr"`
	} `xml:"device"`
}

func deviceList(ids ...string) xml.TokenReader {
	var kids []xml.TokenReader
	for _, id := range ids {
		kids = append(kids, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "device"}, Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: id}}}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(kids...), xml.StartElement{Name: xml.Name{Space: "urn:xmpp:omemo:2", Local: "devices"}})
}

// Caps with +notify make Prosody push our own PEP node to us: this checks
// the caps hash (Prosody asks our disco#info for node#ver and only uses
// it if it hashes to ver; without the +notify feature no event arrives),
// the publish-options path and event parsing together.
func TestPEPCapsPublishEvent(t *testing.T) {
	alice, alicePW := account(t, "pep-alice")
	bob, bobPW := account(t, "pep-bob")

	info := caps.Info{
		Identities: []caps.Identity{{Category: "client", Type: "bot", Name: "xmpp-bridge test"}},
		Features:   []string{caps.NS, caps.NSInfo, devicesNode, caps.Notify(devicesNode)},
	}
	c, err := info.Caps(capsNode)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan pubsub.Event, 10)
	onEvent := mux.MessageFunc(stanza.HeadlineMessage, xml.Name{Space: pubsub.NSEvent, Local: "event"},
		func(_ stanza.Message, r xmlstream.TokenReadEncoder) error {
			ev, err := pubsub.ParseEvent(r)
			if err != nil {
				t.Errorf("bad event: %v", err)
				return nil
			}
			events <- ev
			return nil
		})
	s := dial(t, alice, alicePW, c.TokenReader(), caps.Handle(capsNode, info), onEvent)

	id, err := pubsub.PublishReconfigure(ctx(t), s, devicesNode, "current", deviceList("1", "2"),
		pubsub.AccessModel(pubsub.AccessOpen), pubsub.MaxItems(1))
	if err != nil {
		t.Fatalf("failed to publish: %v", err)
	}
	if id != "current" {
		t.Errorf("wrong item id %q", id)
	}

	var ev pubsub.Event
	for ev = wait(t, events, "PEP notification"); len(ev.Items) == 0; ev = wait(t, events, "PEP notification") {
	}
	if ev.Node != devicesNode || ev.Items[0].ID != "current" || !(ev.From.Equal(jid.JID{}) || ev.From.Equal(alice)) {
		t.Fatalf("wrong event: %+v", ev)
	}
	var got devices
	if err := ev.Items[0].Decode(&got); err != nil || len(got.Devices) != 2 {
		t.Fatalf("wrong event payload %+v: %v", got, err)
	}

	// With access_model=open another account reads the node without
	// subscribing.
	bs := dial(t, bob, bobPW, nil)
	items, err := pubsub.Items(ctx(t), bs, alice, devicesNode, 0)
	if err != nil {
		t.Fatalf("bob failed to fetch alice's devices: %v", err)
	}
	if len(items) != 1 || items[0].ID != "current" {
		t.Fatalf("wrong items: %+v", items)
	}
	items, err = pubsub.Items(ctx(t), bs, alice, devicesNode, 0, "current")
	if err != nil || len(items) != 1 {
		t.Fatalf("fetch by id: %+v %v", items, err)
	}

	cfg, err := pubsub.Config(ctx(t), s, jid.JID{}, devicesNode)
	if err != nil {
		t.Fatalf("failed to read node config: %v", err)
	}
	if v, _ := cfg.Get("pubsub#access_model"); v != pubsub.AccessOpen {
		t.Errorf("access model is %q", v)
	}

	if err := pubsub.Retract(ctx(t), s, jid.JID{}, devicesNode, "current", true); err != nil {
		t.Fatalf("failed to retract: %v", err)
	}
	for {
		ev = wait(t, events, "retraction notification")
		if len(ev.Retracted) > 0 {
			break
		}
	}
	if ev.Retracted[0] != "current" {
		t.Errorf("wrong retraction %+v", ev)
	}
	items, err = pubsub.Items(ctx(t), bs, alice, devicesNode, 0)
	if err != nil || len(items) != 0 {
		t.Errorf("items after retraction: %+v %v", items, err)
	}
}

// A node created with the default access model refuses publish-options
// asking for open access; PublishReconfigure fixes the node and publishes.
func TestPreconditionNotMet(t *testing.T) {
	alice, pw := account(t, "pre-alice")
	s := dial(t, alice, pw, nil)
	node := unique("urn:example:bundles:")

	if _, err := pubsub.Publish(ctx(t), s, jid.JID{}, node, "current", deviceList("1")); err != nil {
		t.Fatalf("failed to create node: %v", err)
	}
	_, err := pubsub.Publish(ctx(t), s, jid.JID{}, node, "current", deviceList("1"), pubsub.AccessModel(pubsub.AccessOpen))
	if !errors.Is(err, pubsub.ErrPreconditionNotMet) {
		t.Fatalf("want precondition-not-met, got %v", err)
	}
	if !errors.Is(err, stanza.Error{Condition: stanza.Conflict}) {
		t.Errorf("precondition-not-met is not a conflict: %v", err)
	}
	if _, err := pubsub.PublishReconfigure(ctx(t), s, node, "current", deviceList("1", "3"), pubsub.AccessModel(pubsub.AccessOpen)); err != nil {
		t.Fatalf("failed to reconfigure and publish: %v", err)
	}
	cfg, err := pubsub.Config(ctx(t), s, jid.JID{}, node)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cfg.Get("pubsub#access_model"); v != pubsub.AccessOpen {
		t.Errorf("access model is %q after reconfigure", v)
	}
	items, err := pubsub.Items(ctx(t), s, alice, node, 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("items: %+v %v", items, err)
	}
	var got devices
	if err := items[0].Decode(&got); err != nil || len(got.Devices) != 2 {
		t.Errorf("republished payload wrong: %+v %v", got, err)
	}

	_, err = pubsub.Items(ctx(t), s, alice, "urn:example:missing", 0)
	if !errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		t.Errorf("missing node: want item-not-found, got %v", err)
	}
}
