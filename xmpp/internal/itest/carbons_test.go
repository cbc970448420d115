//go:build integration

package itest

import (
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/carbons"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	ourcarbons "github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
)

type chat struct {
	msg stanza.Message
	ids sid.IDs
}

// Carbons from Prosody pass our checks (sent and received), and messages
// carry a stanza-id stamped by the account that StanzaIDBy trusts.
func TestCarbonsAndStanzaIDs(t *testing.T) {
	alice, alicePW := account(t, "carbon-alice")
	bob, bobPW := account(t, "carbon-bob")

	copies := make(chan ourcarbons.Carbon, 10)
	dropped := make(chan error, 10)
	a := dial(t, alice, alicePW, nil, ourcarbons.Handle(alice, func(c ourcarbons.Carbon) error {
		copies <- c
		return nil
	}, func(_ stanza.Message, err error) { dropped <- err }))
	if err := carbons.Enable(ctx(t), a); err != nil {
		t.Fatalf("failed to enable carbons: %v", err)
	}

	direct := make(chan chat, 10)
	b := dial(t, alice, alicePW, nil, mux.MessageFunc(stanza.ChatMessage, xml.Name{Local: "body"},
		func(m stanza.Message, r xmlstream.TokenReadEncoder) error {
			ids, err := sid.Extract(r)
			if err != nil {
				t.Errorf("bad ids: %v", err)
			}
			direct <- chat{m, ids}
			return nil
		}))
	bs := dial(t, bob, bobPW, nil)

	// Alice's second client writes to Bob: her first client gets a sent carbon.
	msg := stanza.Message{To: bob, Type: stanza.ChatMessage, ID: "orig-1"}
	if err := b.Send(ctx(t), msg.Wrap(xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData("hi bob")), xml.StartElement{Name: xml.Name{Local: "body"}}),
		sid.OriginID{ID: "orig-1"}.TokenReader(),
	))); err != nil {
		t.Fatal(err)
	}
	c := wait(t, copies, "sent carbon")
	if !c.Sent || !c.Message.From.Equal(b.LocalAddr()) || !c.Message.To.Equal(bob) {
		t.Fatalf("wrong sent carbon: %+v", c)
	}
	ids, err := sid.Extract(c.Inner())
	if err != nil || ids.OriginID != "orig-1" {
		t.Errorf("origin-id lost in carbon: %+v %v", ids, err)
	}

	// Bob writes to Alice's second client: her first client gets a received
	// carbon, the second the message with a stanza-id by alice's account.
	if err := bs.Send(ctx(t), stanza.Message{To: b.LocalAddr(), Type: stanza.ChatMessage}.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData("hi alice")), xml.StartElement{Name: xml.Name{Local: "body"}}),
	)); err != nil {
		t.Fatal(err)
	}
	c = wait(t, copies, "received carbon")
	if c.Sent || !c.Message.From.Bare().Equal(bob) {
		t.Fatalf("wrong received carbon: %+v", c)
	}
	got := wait(t, direct, "message to second client")
	id, ok := got.ids.StanzaIDBy(alice)
	if !ok || id == "" {
		t.Errorf("no stanza-id by %s in %+v", alice, got.ids)
	}
	if _, ok := got.ids.StanzaIDBy(bob); ok {
		t.Error("stanza-id trusted for the sender")
	}
	inner, err := sid.Extract(c.Inner())
	if err != nil {
		t.Fatal(err)
	}
	if cid, ok := inner.StanzaIDBy(alice); ok && cid != id {
		t.Errorf("carbon and message have different stanza-ids: %s, %s", cid, id)
	}

	// A forged carbon from Bob is dropped, not handled.
	if err := bs.Send(ctx(t), raw(t, `<message xmlns="jabber:client" type="chat" to="`+a.LocalAddr().String()+`">`+
		`<received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">`+
		`<message xmlns="jabber:client" type="chat" from="mallory@localhost/x" to="`+alice.String()+`"><body>forged</body></message>`+
		`</forwarded></received></message>`)); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, dropped, "forged carbon to be dropped"); !errors.Is(err, ourcarbons.ErrForged) {
		t.Errorf("forged carbon dropped for the wrong reason: %v", err)
	}
	select {
	case c := <-copies:
		t.Errorf("forged carbon handled: %+v", c)
	default:
	}
}
