package children_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

func TestEach(t *testing.T) {
	const in = `<message xmlns="jabber:client" id="1"><a><deep/></a><b x="1"/>text<c/></message><after/>`
	var seen []string
	start, err := children.Each(xml.NewDecoder(strings.NewReader(in)), func(d *xml.Decoder, s xml.StartElement) (bool, error) {
		seen = append(seen, s.Name.Local)
		if s.Name.Local == "b" {
			var v struct {
				X string `xml:"x,attr"`
			}
			return true, d.DecodeElement(&v, &s)
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if start.Name.Local != "message" {
		t.Errorf("wrong outer element %v", start.Name)
	}
	if got := strings.Join(seen, ","); got != "a,b,c" {
		t.Errorf("wrong children: %s", got)
	}

	// Readers from mellium's muxer may stop before the end element.
	r := xmlstream.MultiReader(xmlstream.Token(xml.StartElement{Name: xml.Name{Local: "message"}}),
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "x"}}))
	seen = nil
	if _, err := children.Each(r, func(_ *xml.Decoder, s xml.StartElement) (bool, error) {
		seen = append(seen, s.Name.Local)
		return false, nil
	}); err != nil || len(seen) != 1 {
		t.Errorf("unterminated stanza: err=%v seen=%v", err, seen)
	}

	if _, err := children.Each(xml.NewDecoder(strings.NewReader("   ")), nil); !errors.Is(err, children.ErrNotElement) {
		t.Errorf("wrong error for empty input: %v", err)
	}
	if _, err := children.Each(xml.NewDecoder(strings.NewReader("<a><b></a>")), func(*xml.Decoder, xml.StartElement) (bool, error) {
		return false, nil
	}); err == nil {
		t.Error("malformed XML accepted")
	}
}
