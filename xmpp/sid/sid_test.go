package sid_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
)

var (
	_ xml.Marshaler       = sid.OriginID{}
	_ xml.Unmarshaler     = (*sid.OriginID)(nil)
	_ xmlstream.Marshaler = sid.OriginID{}
	_ xmlstream.WriterTo  = sid.OriginID{}
	_ xml.Marshaler       = sid.StanzaID{}
	_ xml.Unmarshaler     = (*sid.StanzaID)(nil)
	_ xmlstream.Marshaler = sid.StanzaID{}
	_ xmlstream.WriterTo  = sid.StanzaID{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		0: {
			Value: &sid.OriginID{ID: "de305d54"},
			XML:   `<origin-id xmlns="urn:xmpp:sid:0" id="de305d54"></origin-id>`,
		},
		1: {
			Value: &sid.StanzaID{ID: "5f3dbc5e", By: jid.MustParse("room@muc.example.com")},
			XML:   `<stanza-id xmlns="urn:xmpp:sid:0" id="5f3dbc5e" by="room@muc.example.com"></stanza-id>`,
		},
		2: {
			Value: &sid.OriginID{},
			XML:   `<origin-id xmlns="urn:xmpp:sid:0"/>`,
			Err:   sid.ErrMissingID,
		},
		3: {
			Value: &sid.StanzaID{},
			XML:   `<stanza-id xmlns="urn:xmpp:sid:0" by="juliet@example.com"/>`,
			Err:   sid.ErrMissingID,
		},
		4: {
			Value: &sid.StanzaID{},
			XML:   `<stanza-id xmlns="urn:xmpp:sid:0" id="x"/>`,
			Err:   sid.ErrMissingBy,
		},
		5: {
			Value: &sid.StanzaID{},
			XML:   `<stanza-id xmlns="urn:xmpp:sid:0" id="x" by="@@bad"/>`,
			Err:   xmltest.ErrAny,
		},
		6: {
			Value: &sid.OriginID{},
			XML:   `<origin-id xmlns="urn:xmpp:sid:0" id="` + strings.Repeat("a", 257) + `"/>`,
			Err:   sid.ErrIDTooLong,
		},
		7: {
			// Unrelated children are ignored.
			Value:     &sid.OriginID{ID: "x"},
			XML:       `<origin-id xmlns="urn:xmpp:sid:0" id="x"><junk/></origin-id>`,
			NoMarshal: true,
		},
	})
}

const me = "juliet@capulet.example"

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		name     string
		xml      string
		origin   string
		by       string
		stanzaID string
		ok       bool
		err      error
	}{{
		name: "trusted",
		xml: `<message xmlns="jabber:client" from="romeo@montague.example/a" to="juliet@capulet.example/b">` +
			`<body>hi</body><origin-id xmlns="urn:xmpp:sid:0" id="o1"/>` +
			`<stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="juliet@capulet.example"/></message>`,
		origin: "o1", by: me, stanzaID: "s1", ok: true,
	}, {
		name: "forged by sender only",
		xml: `<message xmlns="jabber:client"><stanza-id xmlns="urn:xmpp:sid:0" id="evil" by="romeo@montague.example"/>` +
			`</message>`,
		by: me,
	}, {
		name: "forged and real",
		xml: `<message xmlns="jabber:client"><stanza-id xmlns="urn:xmpp:sid:0" id="evil" by="romeo@montague.example"/>` +
			`<stanza-id xmlns="urn:xmpp:sid:0" id="real" by="juliet@capulet.example"/></message>`,
		by: me, stanzaID: "real", ok: true,
	}, {
		name: "full JID does not match bare",
		xml:  `<message xmlns="jabber:client"><stanza-id xmlns="urn:xmpp:sid:0" id="s" by="juliet@capulet.example/res"/></message>`,
		by:   me,
	}, {
		name: "two different ids by the same entity are not trusted",
		xml: `<message xmlns="jabber:client"><stanza-id xmlns="urn:xmpp:sid:0" id="a" by="juliet@capulet.example"/>` +
			`<stanza-id xmlns="urn:xmpp:sid:0" id="b" by="juliet@capulet.example"/></message>`,
		by: me,
	}, {
		name: "muc",
		xml: `<message xmlns="jabber:client" type="groupchat"><stanza-id xmlns="urn:xmpp:sid:0" id="m1" by="room@muc.example"/>` +
			`</message>`,
		by: "room@muc.example", stanzaID: "m1", ok: true,
	}, {
		name: "nested ids belong to the forwarded message",
		xml: `<message xmlns="jabber:client"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
			`<message xmlns="jabber:client"><origin-id xmlns="urn:xmpp:sid:0" id="inner"/></message></forwarded></received></message>`,
		by: me,
	}, {
		name: "malformed",
		xml:  `<message xmlns="jabber:client"><stanza-id xmlns="urn:xmpp:sid:0" by="juliet@capulet.example"/></message>`,
		err:  sid.ErrMissingID,
	}, {
		name: "conflicting origin ids",
		xml: `<message xmlns="jabber:client"><origin-id xmlns="urn:xmpp:sid:0" id="a"/>` +
			`<origin-id xmlns="urn:xmpp:sid:0" id="b"/></message>`,
		err: xmltest.ErrAny,
	}, {
		name: "wrong namespace ignored",
		xml:  `<message xmlns="jabber:client"><origin-id xmlns="urn:xmpp:sid:1" id="a"/></message>`,
		by:   me,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := sid.Extract(xmltest.Reader(tc.xml))
			if tc.err != nil {
				if err == nil || (tc.err != xmltest.ErrAny && !errors.Is(err, tc.err)) {
					t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if ids.OriginID != tc.origin {
				t.Errorf("wrong origin-id: want=%q, got=%q", tc.origin, ids.OriginID)
			}
			id, ok := ids.StanzaIDBy(jid.MustParse(tc.by))
			if id != tc.stanzaID || ok != tc.ok {
				t.Errorf("wrong stanza-id: want=(%q, %t), got=(%q, %t)", tc.stanzaID, tc.ok, id, ok)
			}
		})
	}
}
