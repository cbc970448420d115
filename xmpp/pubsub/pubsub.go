package pubsub

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqresp"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqwait"
)

// Namespaces used by this package.
const (
	NS               = "http://jabber.org/protocol/pubsub"
	NSEvent          = "http://jabber.org/protocol/pubsub#event"
	NSOwner          = "http://jabber.org/protocol/pubsub#owner"
	NSErrors         = "http://jabber.org/protocol/pubsub#errors"
	NSPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	NSNodeConfig     = "http://jabber.org/protocol/pubsub#node_config"
)

// iq wraps payload in <iq type=typ to=to> inside a <pubsub xmlns=ns/>.
func iq(typ stanza.IQType, to jid.JID, ns string, payload xml.TokenReader) xml.TokenReader {
	return stanza.IQ{Type: typ, To: to}.Wrap(
		xmlstream.Wrap(payload, xml.StartElement{Name: xml.Name{Space: ns, Local: "pubsub"}}),
	)
}

func nodeAttr(node string) xml.Attr {
	return xml.Attr{Name: xml.Name{Local: "node"}, Value: node}
}

// roundTrip sends req and hands the response to parse.
func roundTrip(ctx context.Context, s *xmpp.Session, req xml.TokenReader, parse func(xml.TokenReader) error) error {
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	resp, err := s.SendIQ(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Close()
	return parse(resp)
}

// readResult reads an IQ result and returns the children of its <pubsub/>
// element in namespace ns (nil for an empty result).
func readResult(r xml.TokenReader, ns string) ([]xml.Token, error) {
	kids, err := iqresp.Read(r, parseError)
	if err != nil {
		return nil, err
	}
	for _, k := range kids {
		s := k[0].(xml.StartElement)
		if s.Name.Space == ns && s.Name.Local == "pubsub" {
			return k, nil
		}
	}
	if len(kids) > 0 {
		s := kids[0][0].(xml.StartElement)
		return nil, fmt.Errorf("%w: unexpected <%s xmlns=%q/> in result", ErrMalformed, s.Name.Local, s.Name.Space)
	}
	return nil, nil
}

func attrValue(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
