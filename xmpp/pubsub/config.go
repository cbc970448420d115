package pubsub

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqresp"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

func configure(node string, payload xml.TokenReader) xml.TokenReader {
	return xmlstream.Wrap(payload, xml.StartElement{
		Name: xml.Name{Local: "configure"},
		Attr: []xml.Attr{nodeAttr(node)},
	})
}

// ConfigureIQ returns an owner IQ set that changes the given fields of
// node's configuration at to (the zero JID: the account's own PEP service).
// Fields not listed keep their values.
func ConfigureIQ(to jid.JID, node string, fields ...Field) xml.TokenReader {
	return iq(stanza.SetIQ, to, NSOwner, configure(node,
		Form{Type: "submit", FormType: NSNodeConfig, Fields: fields}.TokenReader()))
}

// Configure sends ConfigureIQ on s and checks the result.
func Configure(ctx context.Context, s *xmpp.Session, to jid.JID, node string, fields ...Field) error {
	err := roundTrip(ctx, s, ConfigureIQ(to, node, fields...), ParseResult)
	if err != nil {
		return fmt.Errorf("failed to configure node %s: %w", node, err)
	}
	return nil
}

// ConfigIQ returns an owner IQ get for node's configuration form.
func ConfigIQ(to jid.JID, node string) xml.TokenReader {
	return iq(stanza.GetIQ, to, NSOwner, configure(node, nil))
}

// ParseConfig reads the response to ConfigIQ.
func ParseConfig(r xml.TokenReader) (Form, error) {
	toks, err := readResult(r, NSOwner)
	if err != nil {
		return Form{}, err
	}
	if toks == nil {
		return Form{}, fmt.Errorf("%w: empty configuration result", ErrMalformed)
	}
	var (
		form  Form
		found bool
	)
	_, err = children.Each(xmltok.Replay(toks), func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NSOwner || start.Name.Local != "configure" {
			return false, nil
		}
		_, err := children.Each(xmlstream.MultiReader(xmlstream.Token(start), d), func(d *xml.Decoder, start xml.StartElement) (bool, error) {
			if start.Name.Space != nsData || start.Name.Local != "x" || found {
				return false, nil
			}
			found = true
			return true, d.DecodeElement(&form, &start)
		})
		return true, err
	})
	if err != nil {
		return Form{}, err
	}
	if !found {
		return Form{}, fmt.Errorf("%w: no configuration form in result", ErrMalformed)
	}
	return form, nil
}

// Config sends ConfigIQ on s and parses the result.
func Config(ctx context.Context, s *xmpp.Session, to jid.JID, node string) (Form, error) {
	var form Form
	err := roundTrip(ctx, s, ConfigIQ(to, node), func(r xml.TokenReader) error {
		var err error
		form, err = ParseConfig(r)
		return err
	})
	if err != nil {
		return Form{}, fmt.Errorf("failed to get configuration of node %s: %w", node, err)
	}
	return form, nil
}

// ParseResult reads a response whose payload does not matter and returns
// the error if it is an error response.
func ParseResult(r xml.TokenReader) error {
	_, err := iqresp.Read(r, parseError)
	return err
}
