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
		v, _ := children.Attr(start, "id")
		if err := d.Skip(); err != nil {
			return true, err
		}
		if v == "" {
			return true, ErrMissingID
		}
		if ok && v != id {
			return true, ErrTwoIDs
		}
		id, ok = v, true
		return true, nil
	})
	if err != nil {
		return "", false, fmt.Errorf("failed to read occupant-id: %w", err)
	}
	return id, ok, nil
}
