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

// SubscribeIQ returns an IQ set that subscribes subscriber (a bare JID) to
// node at to (XEP-0060 §6.1): the service then sends the node's
// notifications there, also without a presence subscription to its owner.
func SubscribeIQ(to jid.JID, node string, subscriber jid.JID) xml.TokenReader {
	return iq(stanza.SetIQ, to, NS, xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Local: "subscribe"},
		Attr: []xml.Attr{nodeAttr(node), {Name: xml.Name{Local: "jid"}, Value: subscriber.String()}},
	}))
}

// Subscribe sends SubscribeIQ on s and checks the result (a subscription
// the service holds pending approval is accepted as a result too).
func Subscribe(ctx context.Context, s *xmpp.Session, to jid.JID, node string, subscriber jid.JID) error {
	err := roundTrip(ctx, s, SubscribeIQ(to, node, subscriber), ParseResult)
	if err != nil {
		return fmt.Errorf("failed to subscribe to node %s of %s: %w", node, to, err)
	}
	return nil
}
