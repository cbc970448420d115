package eme_test

import (
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/eme"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

var (
	_ xml.Marshaler       = eme.Encryption{}
	_ xml.Unmarshaler     = (*eme.Encryption)(nil)
	_ xmlstream.Marshaler = eme.Encryption{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		{Value: &eme.Encryption{Namespace: eme.OMEMO2}, XML: `<encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:omemo:2"></encryption>`},
		{Value: &eme.Encryption{Namespace: "urn:example:crypto", Name: "Example"}, XML: `<encryption xmlns="urn:xmpp:eme:0" namespace="urn:example:crypto" name="Example"></encryption>`},
		{Value: &eme.Encryption{}, XML: `<encryption xmlns="urn:xmpp:eme:0" name="x"/>`, Err: eme.ErrMissingNamespace},
	})
	if _, err := xml.Marshal(eme.Encryption{}); !errors.Is(err, eme.ErrMissingNamespace) {
		t.Errorf("encryption without namespace marshaled: %v", err)
	}
}

func TestParse(t *testing.T) {
	in := `<message xmlns="jabber:client"><body>This message is encrypted with OTR</body>` +
		`<encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:otr:0"/></message>`
	e, ok, err := eme.Parse(xmltest.Reader(in))
	if err != nil || !ok || e.Namespace != eme.OTR || e.DisplayName() != "OTR" {
		t.Errorf("wrong encryption %+v %t %v", e, ok, err)
	}
	if _, ok, err := eme.Parse(xmltest.Reader(`<message xmlns="jabber:client"><body>x</body></message>`)); ok || err != nil {
		t.Errorf("plain message: ok=%t err=%v", ok, err)
	}
	if _, _, err := eme.Parse(xmltest.Reader(`<message xmlns="jabber:client"><encryption xmlns="urn:xmpp:eme:0"/></message>`)); !errors.Is(err, eme.ErrMissingNamespace) {
		t.Errorf("want ErrMissingNamespace, got %v", err)
	}
	for _, tc := range []struct {
		e    eme.Encryption
		want string
	}{
		{eme.Encryption{Namespace: eme.OMEMO}, "OMEMO"},
		{eme.Encryption{Namespace: "urn:x", Name: "X"}, "X"},
		{eme.Encryption{Namespace: "urn:x"}, "urn:x"},
		{eme.Encryption{Namespace: eme.OMEMO2, Name: "spoofed"}, "OMEMO 2"},
	} {
		if got := tc.e.DisplayName(); got != tc.want {
			t.Errorf("DisplayName(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
}
