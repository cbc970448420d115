package pubsub

import (
	"bytes"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Item is one pubsub item as received in a result or a notification.
type Item struct {
	ID string
	// Publisher is the optional publisher attribute (XEP-0060 §7.1.2.2);
	// only the service can vouch for it.
	Publisher string

	payload []xml.Token
}

// HasPayload reports whether the item carried a payload element.
func (i Item) HasPayload() bool {
	return len(i.payload) > 0
}

// Payload returns a new reader over the item's payload element, or nil if
// there is none. It can be called any number of times.
func (i Item) Payload() xml.TokenReader {
	if len(i.payload) == 0 {
		return nil
	}
	return xmltok.Replay(i.payload)
}

// Decode decodes the payload into v.
func (i Item) Decode(v any) error {
	if len(i.payload) == 0 {
		return fmt.Errorf("%w: item %q has no payload", ErrMalformed, i.ID)
	}
	return xml.NewTokenDecoder(xmltok.Replay(i.payload)).Decode(v)
}

// Bytes returns the payload as XML text, for parsers that take bytes (such
// as omemo.ParseBundle). It returns ErrMalformed if there is no payload.
func (i Item) Bytes() ([]byte, error) {
	if len(i.payload) == 0 {
		return nil, fmt.Errorf("%w: item %q has no payload", ErrMalformed, i.ID)
	}
	var b bytes.Buffer
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, xmltok.Replay(i.payload)); err != nil {
		return nil, fmt.Errorf("failed to encode item %q: %w", i.ID, err)
	}
	if err := e.Flush(); err != nil {
		return nil, fmt.Errorf("failed to encode item %q: %w", i.ID, err)
	}
	return b.Bytes(), nil
}

// NewItem returns an item with the given payload tokens (as read by an
// xml.Decoder); it is meant for tests and for replaying stored items.
func NewItem(id string, payload xml.TokenReader) (Item, error) {
	it := Item{ID: id}
	if payload == nil {
		return it, nil
	}
	d := xml.NewTokenDecoder(payload)
	for {
		tok, err := d.Token()
		if err != nil {
			return it, fmt.Errorf("failed to read item payload: %w", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			it.payload, err = xmltok.Capture(d, s)
			return it, err
		}
	}
}

// parseItem reads an <item/> element whose start has been read from d.
// An item holds at most one payload element.
func parseItem(d *xml.Decoder, start xml.StartElement) (Item, error) {
	it := Item{ID: attrValue(start, "id"), Publisher: attrValue(start, "publisher")}
	for {
		tok, err := d.Token()
		if err != nil {
			return it, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return it, nil
		case xml.StartElement:
			if it.payload != nil {
				return it, fmt.Errorf("%w: item %q has more than one payload", ErrMalformed, it.ID)
			}
			if it.payload, err = xmltok.Capture(d, t); err != nil {
				return it, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
	}
}

// parseItems reads the children of an <items/> element (in namespace ns)
// whose start has been read from d: <item/>s and, in notifications,
// <retract/>s. Other children are skipped.
func parseItems(d *xml.Decoder, ns string) (items []Item, retracted []string, err error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return items, retracted, nil
		case xml.StartElement:
			switch {
			case t.Name.Space == ns && t.Name.Local == "item":
				it, err := parseItem(d, t)
				if err != nil {
					return nil, nil, err
				}
				items = append(items, it)
			case t.Name.Space == ns && t.Name.Local == "retract":
				id := attrValue(t, "id")
				if id == "" {
					return nil, nil, fmt.Errorf("%w: retract without id", ErrMalformed)
				}
				retracted = append(retracted, id)
				if err := d.Skip(); err != nil {
					return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
				}
			default:
				if err := d.Skip(); err != nil {
					return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
				}
			}
		}
	}
}

// Marshal encodes v (any value encoding/xml can marshal, such as the omemo
// package's elements) into a payload for PublishIQ and friends. Pass a
// pointer when the type's MarshalXML has a pointer receiver.
func Marshal(v any) (xml.TokenReader, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal payload: %w", err)
	}
	it, err := NewItem("", xml.NewDecoder(bytes.NewReader(b)))
	if err != nil {
		return nil, err
	}
	if !it.HasPayload() {
		return nil, fmt.Errorf("%w: payload marshals to no element", ErrMalformed)
	}
	return it.Payload(), nil
}
