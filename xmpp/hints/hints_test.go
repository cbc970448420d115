package hints_test

import (
	"encoding/xml"
	"reflect"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/hints"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

var (
	_ xml.Marshaler       = hints.Store
	_ xml.Unmarshaler     = (*hints.Hint)(nil)
	_ xmlstream.Marshaler = hints.Store
	_ xmlstream.Marshaler = hints.Hints{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		{Value: ptr(hints.Store), XML: `<store xmlns="urn:xmpp:hints"></store>`},
		{Value: ptr(hints.NoStore), XML: `<no-store xmlns="urn:xmpp:hints"></no-store>`},
		{Value: ptr(hints.NoCopy), XML: `<no-copy xmlns="urn:xmpp:hints"></no-copy>`},
		{Value: ptr(hints.NoPermanentStore), XML: `<no-permanent-store xmlns="urn:xmpp:hints"></no-permanent-store>`},
		{Value: ptr(hints.Hint("")), XML: `<keep xmlns="urn:xmpp:hints"/>`, Err: hints.ErrUnknownHint},
		{Value: ptr(hints.Hint("")), XML: `<store xmlns="urn:xmpp:hints:1"/>`, Err: hints.ErrUnknownHint},
	})
	if _, err := xml.Marshal(hints.Hint("keep")); err == nil {
		t.Error("unknown hint marshaled")
	}
}

func ptr(h hints.Hint) *hints.Hint { return &h }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want hints.Hints
	}{
		{`<message xmlns="jabber:client"><body>x</body><no-copy xmlns="urn:xmpp:hints"/><no-store xmlns="urn:xmpp:hints"/></message>`, hints.Hints{hints.NoCopy, hints.NoStore}},
		{`<message xmlns="jabber:client"><store xmlns="urn:xmpp:hints"/><store xmlns="urn:xmpp:hints"/><future xmlns="urn:xmpp:hints"/></message>`, hints.Hints{hints.Store}},
		{`<message xmlns="jabber:client"><x><store xmlns="urn:xmpp:hints"/></x></message>`, nil},
		{`<message xmlns="jabber:client"><store/></message>`, nil},
	} {
		got, err := hints.Parse(xmltest.Reader(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: want=%v, got=%v", tc.in, tc.want, got)
		}
	}
	if !(hints.Hints{hints.Store}).Has(hints.Store) || (hints.Hints{hints.Store}).Has(hints.NoStore) {
		t.Error("Has is wrong")
	}
	out, err := xmltest.Encode(hints.Hints{hints.NoStore, hints.NoCopy}.TokenReader())
	if err != nil || out != `<no-store xmlns="urn:xmpp:hints"></no-store><no-copy xmlns="urn:xmpp:hints"></no-copy>` {
		t.Errorf("wrong list encoding %s: %v", out, err)
	}
}
