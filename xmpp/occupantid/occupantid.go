package occupantid

import (
	"encoding/xml"
	"errors"
	"fmt"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of the element and the room's disco feature.
const NS = "urn:xmpp:occupant-id:0"

// ErrMissingID is returned for an element without id.
var ErrMissingID = errors.New("occupantid: occupant-id without id")

// ErrTwoIDs is returned for a stanza with two different occupant ids.
var ErrTwoIDs = errors.New("occupantid: stanza has more than one occupant-id")

// Parse returns the occupant id of a message or presence read from r (the
// stanza, starting with its start element); ok is false without one.
func Parse(r xml.TokenReader) (id string, ok bool, err error) {
	_, err = children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || start.Name.Local != "occupant-id" {
			return false, nil
		}
		if err := d.Skip(); err != nil {
			return true, err
		}
		return true, add(start, &id, &ok)
	})
	if err != nil {
		return "", false, fmt.Errorf("failed to read occupant-id: %w", err)
	}
	return id, ok, nil
}

// FromElements is Parse for the stanza's <occupant-id/> children, given
// as their start elements (the element is empty: its id is all it says).
func FromElements(starts []xml.StartElement) (id string, ok bool, err error) {
	for _, start := range starts {
		if start.Name.Space != NS || start.Name.Local != "occupant-id" {
			continue
		}
		if err := add(start, &id, &ok); err != nil {
			return "", false, fmt.Errorf("failed to read occupant-id: %w", err)
		}
	}
	return id, ok, nil
}

// add takes the id of one <occupant-id/> into id.
func add(start xml.StartElement, id *string, ok *bool) error {
	v, _ := children.Attr(start, "id")
	if v == "" {
		return ErrMissingID
	}
	if *ok && v != *id {
		return ErrTwoIDs
	}
	*id, *ok = v, true
	return nil
}
