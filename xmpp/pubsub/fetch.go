package pubsub

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// ItemsIQ returns an IQ get that retrieves items of node at to (the zero
// JID: the account's own PEP service). With ids only those items are asked
// for; otherwise all items, or the newest maxItems if maxItems > 0.
func ItemsIQ(to jid.JID, node string, maxItems int, ids ...string) xml.TokenReader {
	attrs := []xml.Attr{nodeAttr(node)}
	if maxItems > 0 && len(ids) == 0 {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "max_items"}, Value: strconv.Itoa(maxItems)})
	}
	var items []xml.TokenReader
	for _, id := range ids {
		items = append(items, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Local: "item"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: id}},
		}))
	}
	return iq(stanza.GetIQ, to, NS, xmlstream.Wrap(
		xmlstream.MultiReader(items...),
		xml.StartElement{Name: xml.Name{Local: "items"}, Attr: attrs},
	))
}

// ParseItems reads the response to ItemsIQ.
// An error response is an *Error (item-not-found for a missing node is
// errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound})).
func ParseItems(r xml.TokenReader) ([]Item, error) {
	toks, err := readResult(r, NS)
	if err != nil {
		return nil, err
	}
	if toks == nil {
		return nil, fmt.Errorf("%w: empty items result", ErrMalformed)
	}
	var (
		items    []Item
		sawItems bool
	)
	_, err = children.Each(xmltok.Replay(toks), func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || start.Name.Local != "items" {
			return false, nil
		}
		if sawItems {
			return true, fmt.Errorf("%w: more than one items element", ErrMalformed)
		}
		sawItems = true
		var err error
		items, _, err = parseItems(d, NS)
		return true, err
	})
	if err != nil {
		return nil, err
	}
	if !sawItems {
		return nil, fmt.Errorf("%w: no items element in result", ErrMalformed)
	}
	return items, nil
}

// Items sends ItemsIQ on s and parses the result.
func Items(ctx context.Context, s *xmpp.Session, to jid.JID, node string, maxItems int, ids ...string) ([]Item, error) {
	var items []Item
	err := roundTrip(ctx, s, ItemsIQ(to, node, maxItems, ids...), func(r xml.TokenReader) error {
		var err error
		items, err = ParseItems(r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to fetch items of node %s from %s: %w", node, to, err)
	}
	return items, nil
}
