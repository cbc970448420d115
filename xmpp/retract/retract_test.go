package retract_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/fallback"
	"github.com/mxomemo/xmpp-bridge/xmpp/hints"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/retract"
)

var (
	_ xml.Marshaler       = retract.Retract{}
	_ xml.Unmarshaler     = (*retract.Retract)(nil)
	_ xmlstream.Marshaler = retract.Retract{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		{Value: &retract.Retract{ID: "origin-id-1"}, XML: `<retract xmlns="urn:xmpp:message-retract:1" id="origin-id-1"></retract>`},
		{Value: &retract.Retract{}, XML: `<retract xmlns="urn:xmpp:message-retract:1"/>`, Err: retract.ErrMissingID},
	})
	if _, err := xml.Marshal(retract.Retract{}); !errors.Is(err, retract.ErrMissingID) {
		t.Errorf("retract without id marshaled: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		id   string
		ok   bool
		err  error
	}{
		{name: "v1", in: `<message xmlns="jabber:client" type="chat"><retract id="origin-id-1" xmlns="urn:xmpp:message-retract:1"/>` +
			`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/><body>retracted</body><store xmlns="urn:xmpp:hints"/></message>`,
			id: "origin-id-1", ok: true},
		{name: "v0", in: `<message xmlns="jabber:client" type="chat"><apply-to id="origin-id-1" xmlns="urn:xmpp:fasten:0">` +
			`<retract xmlns="urn:xmpp:message-retract:0"/></apply-to><body>retracted</body></message>`,
			id: "origin-id-1", ok: true},
		{name: "other fastening", in: `<message xmlns="jabber:client"><apply-to id="x" xmlns="urn:xmpp:fasten:0"><external name="body"/></apply-to></message>`},
		{name: "plain", in: `<message xmlns="jabber:client"><body>hi</body></message>`},
		{name: "no id", in: `<message xmlns="jabber:client"><retract xmlns="urn:xmpp:message-retract:1"/></message>`, err: retract.ErrMissingID},
		{name: "v0 no id", in: `<message xmlns="jabber:client"><apply-to xmlns="urn:xmpp:fasten:0"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to></message>`, err: retract.ErrMissingID},
		{name: "two ids", in: `<message xmlns="jabber:client"><retract id="a" xmlns="urn:xmpp:message-retract:1"/>` +
			`<apply-to id="b" xmlns="urn:xmpp:fasten:0"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to></message>`, err: retract.ErrTwoIDs},
		{name: "same id both versions", in: `<message xmlns="jabber:client"><retract id="a" xmlns="urn:xmpp:message-retract:1"/>` +
			`<apply-to id="a" xmlns="urn:xmpp:fasten:0"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to></message>`, id: "a", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok, err := retract.Parse(xmltest.Reader(tc.in))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
			}
			if id != tc.id || ok != tc.ok {
				t.Errorf("want=(%q,%t), got=(%q,%t)", tc.id, tc.ok, id, ok)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	out, err := xmltest.Encode(retract.Message(stanza.Message{To: jid.MustParse("lord@capulet.example"), Type: stanza.ChatMessage}, "origin-id-1"))
	if err != nil {
		t.Fatal(err)
	}
	want := `<message type="chat" to="lord@capulet.example"><retract xmlns="urn:xmpp:message-retract:1" id="origin-id-1"></retract>` +
		`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"></fallback><body>` + retract.FallbackBody + `</body>` +
		`<store xmlns="urn:xmpp:hints"></store></message>`
	// encoding/xml escapes the apostrophe.
	want = strings.ReplaceAll(want, "'", "&#39;")
	if out != want {
		t.Errorf("wrong message:\nwant=%s\n got=%s", want, out)
	}
	// What we send parses back: retraction, whole-body fallback, store hint.
	id, ok, err := retract.Parse(xmltest.Reader(out))
	if err != nil || !ok || id != "origin-id-1" {
		t.Errorf("round trip: %q %t %v", id, ok, err)
	}
	fbs, _ := fallback.Parse(xmltest.Reader(out))
	if body, err := fallback.Strip(retract.FallbackBody, fbs, retract.NS); err != nil || body != "" {
		t.Errorf("fallback body not stripped: %q %v", body, err)
	}
	if h, _ := hints.Parse(xmltest.Reader(out)); !h.Has(hints.Store) {
		t.Error("store hint missing")
	}
}
