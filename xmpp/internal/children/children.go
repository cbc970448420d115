// Package children walks the direct children of a stanza so that the stanza
// packages can pick out their own elements without decoding the whole
// stanza into one struct.
package children

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// ErrNotElement is returned when the reader does not start with an element.
var ErrNotElement = errors.New("children: input does not start with an element")

// Func is called for one direct child. If it returns consumed=true it must
// have read the whole child (for example with d.DecodeElement(v, &start));
// otherwise it must not have read from d and Each skips the child.
type Func func(d *xml.Decoder, start xml.StartElement) (consumed bool, err error)

// Each calls f for every direct child element of the first element read from
// r (normally a stanza) and returns that element's start.
// Character data, comments and processing instructions around it are ignored.
func Each(r xml.TokenReader, f Func) (xml.StartElement, error) {
	d := xml.NewTokenDecoder(xmltok.CloseOpen(r))
	var outer xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return outer, ErrNotElement
			}
			return outer, fmt.Errorf("failed to read stanza start: %w", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			outer = s.Copy()
			break
		}
		if _, ok := tok.(xml.EndElement); ok {
			return outer, ErrNotElement
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return outer, fmt.Errorf("failed to read stanza child: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return outer, nil
		case xml.StartElement:
			t = t.Copy()
			consumed, err := f(d, t)
			if err != nil {
				return outer, err
			}
			if !consumed {
				if err := d.Skip(); err != nil {
					return outer, fmt.Errorf("failed to skip %s: %w", t.Name.Local, err)
				}
			}
		}
	}
}
