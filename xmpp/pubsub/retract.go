package pubsub

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// RetractIQ returns an IQ set that deletes item id from node at to (the
// zero JID: the account's own PEP service). With notify the service tells
// subscribers about the retraction.
func RetractIQ(to jid.JID, node, id string, notify bool) xml.TokenReader {
	attrs := []xml.Attr{nodeAttr(node)}
	if notify {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "notify"}, Value: "true"})
	}
	return iq(stanza.SetIQ, to, NS, xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Local: "item"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: id}},
		}),
		xml.StartElement{Name: xml.Name{Local: "retract"}, Attr: attrs},
	))
}

// Retract sends RetractIQ on s and checks the result.
func Retract(ctx context.Context, s *xmpp.Session, to jid.JID, node, id string, notify bool) error {
	err := roundTrip(ctx, s, RetractIQ(to, node, id, notify), ParseResult)
	if err != nil {
		return fmt.Errorf("failed to retract item %s from node %s: %w", id, node, err)
	}
	return nil
}
