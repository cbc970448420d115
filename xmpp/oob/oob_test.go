package oob_test

import (
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/oob"
)

var (
	_ xml.Marshaler       = oob.Data{}
	_ xml.Unmarshaler     = (*oob.Data)(nil)
	_ xmlstream.Marshaler = oob.Data{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		{Value: &oob.Data{URL: "https://h/a.png"}, XML: `<x xmlns="jabber:x:oob"><url>https://h/a.png</url></x>`},
		{Value: &oob.Data{URL: "https://h/a&b", Desc: "a file"}, XML: `<x xmlns="jabber:x:oob"><url>https://h/a&amp;b</url><desc>a file</desc></x>`},
		{Value: &oob.Data{}, XML: `<x xmlns="jabber:x:oob"><desc>d</desc></x>`, Err: oob.ErrMissingURL},
	})
	if _, err := xml.Marshal(oob.Data{}); !errors.Is(err, oob.ErrMissingURL) {
		t.Errorf("x without url marshaled: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in  string
		url string
		ok  bool
		err error
	}{
		{in: `<message xmlns="jabber:client"><body>https://h/a</body><x xmlns="jabber:x:oob"><url>https://h/a</url></x></message>`, url: "https://h/a", ok: true},
		{in: `<message xmlns="jabber:client"><body>x</body></message>`},
		{in: `<message xmlns="jabber:client"><x xmlns="jabber:x:data"><url>https://h/a</url></x></message>`},
		{in: `<message xmlns="jabber:client"><x xmlns="jabber:x:oob"/></message>`, err: oob.ErrMissingURL},
		{in: `<message xmlns="jabber:client"><x xmlns="jabber:x:oob"><url>https://h/1</url></x><x xmlns="jabber:x:oob"><url>https://h/2</url></x></message>`, url: "https://h/1", ok: true},
	} {
		d, ok, err := oob.Parse(xmltest.Reader(tc.in))
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Fatalf("%s: wrong error: want=%v, got=%v", tc.in, tc.err, err)
		}
		if d.URL != tc.url || ok != tc.ok {
			t.Errorf("%s: want=(%q,%t), got=(%q,%t)", tc.in, tc.url, tc.ok, d.URL, ok)
		}
	}
}
