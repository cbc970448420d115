package pubsub

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// PublishIQ returns an IQ set that publishes payload (one element; nil for
// an item without payload) as item id (empty: the service picks one) on
// node of to (the zero JID: the account's own PEP service).
// If options are given they are sent as XEP-0223 publish-options; the
// service then refuses with ErrPreconditionNotMet if the node exists with a
// different configuration.
func PublishIQ(to jid.JID, node, id string, payload xml.TokenReader, options ...Field) xml.TokenReader {
	var itemAttrs []xml.Attr
	if id != "" {
		itemAttrs = []xml.Attr{{Name: xml.Name{Local: "id"}, Value: id}}
	}
	inner := []xml.TokenReader{xmlstream.Wrap(
		xmlstream.Wrap(payload, xml.StartElement{Name: xml.Name{Local: "item"}, Attr: itemAttrs}),
		xml.StartElement{Name: xml.Name{Local: "publish"}, Attr: []xml.Attr{nodeAttr(node)}},
	)}
	if len(options) > 0 {
		inner = append(inner, xmlstream.Wrap(
			Form{Type: "submit", FormType: NSPublishOptions, Fields: options}.TokenReader(),
			xml.StartElement{Name: xml.Name{Local: "publish-options"}},
		))
	}
	return iq(stanza.SetIQ, to, NS, xmlstream.MultiReader(inner...))
}

// ParsePublishResult reads the response to PublishIQ and returns the id of
// the published item if the service reported one ("" for an empty result).
func ParsePublishResult(r xml.TokenReader) (string, error) {
	toks, err := readResult(r, NS)
	if err != nil || toks == nil {
		return "", err
	}
	var resp struct {
		Publish struct {
			Node string `xml:"node,attr"`
			Item struct {
				ID string `xml:"id,attr"`
			} `xml:"item"`
		} `xml:"publish"`
	}
	if err := xml.NewTokenDecoder(xmltok.Replay(toks)).Decode(&resp); err != nil {
		return "", fmt.Errorf("%w: bad publish result: %w", ErrMalformed, err)
	}
	return resp.Publish.Item.ID, nil
}

// Publish sends PublishIQ on s and returns the item id: the service's if
// it reported one, otherwise id.
func Publish(ctx context.Context, s *xmpp.Session, to jid.JID, node, id string, payload xml.TokenReader, options ...Field) (string, error) {
	var got string
	err := roundTrip(ctx, s, PublishIQ(to, node, id, payload, options...), func(r xml.TokenReader) error {
		var err error
		got, err = ParsePublishResult(r)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("failed to publish to node %s: %w", node, err)
	}
	if got == "" {
		got = id
	}
	return got, nil
}

// PublishReconfigure is Publish with options to the account's own PEP
// service that, when the node exists with another configuration
// (ErrPreconditionNotMet), reconfigures the node with the options and
// publishes once more. This is how OMEMO device lists and bundles are kept
// world-readable.
func PublishReconfigure(ctx context.Context, s *xmpp.Session, node, id string, payload xml.TokenReader, options ...Field) (string, error) {
	var toks []xml.Token
	if payload != nil {
		it, err := NewItem(id, payload)
		if err != nil {
			return "", err
		}
		toks = it.payload
	}
	replay := func() xml.TokenReader {
		if toks == nil {
			return nil
		}
		return xmltok.Replay(toks)
	}
	got, err := Publish(ctx, s, jid.JID{}, node, id, replay(), options...)
	if !errors.Is(err, ErrPreconditionNotMet) {
		return got, err
	}
	if err := Configure(ctx, s, jid.JID{}, node, options...); err != nil {
		return "", err
	}
	return Publish(ctx, s, jid.JID{}, node, id, replay(), options...)
}
