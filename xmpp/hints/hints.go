package hints

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of XEP-0334.
const NS = "urn:xmpp:hints"

// ErrUnknownHint is returned when unmarshaling an element of NS that is not
// one of the four hints.
var ErrUnknownHint = errors.New("hints: unknown hint")

// Hint is one processing hint; its value is the element's local name.
type Hint string

// The hints of XEP-0334 §4.
const (
	NoPermanentStore Hint = "no-permanent-store"
	NoStore          Hint = "no-store"
	NoCopy           Hint = "no-copy"
	Store            Hint = "store"
)

func (h Hint) valid() bool {
	switch h {
	case NoPermanentStore, NoStore, NoCopy, Store:
		return true
	}
	return false
}

// TokenReader implements xmlstream.Marshaler.
func (h Hint) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NS, Local: string(h)}})
}

// WriteXML implements xmlstream.WriterTo.
func (h Hint) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, h.TokenReader())
}

// MarshalXML implements xml.Marshaler. It refuses unknown hints.
func (h Hint) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if !h.valid() {
		return fmt.Errorf("%w: %q", ErrUnknownHint, string(h))
	}
	_, err := h.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (h *Hint) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v := Hint(start.Name.Local)
	if start.Name.Space != NS || !v.valid() {
		return fmt.Errorf("%w: <%s xmlns=%q/>", ErrUnknownHint, start.Name.Local, start.Name.Space)
	}
	*h = v
	return d.Skip()
}

// Hints is the set of hints of one message.
type Hints []Hint

// Has reports whether h contains hint.
func (h Hints) Has(hint Hint) bool {
	for _, x := range h {
		if x == hint {
			return true
		}
	}
	return false
}

// TokenReader implements xmlstream.Marshaler: the hints one after the other.
func (h Hints) TokenReader() xml.TokenReader {
	rs := make([]xml.TokenReader, 0, len(h))
	for _, x := range h {
		rs = append(rs, x.TokenReader())
	}
	return xmlstream.MultiReader(rs...)
}

// Parse reads a message stanza from r and returns its hints, each once, in
// document order. Elements of NS it does not know are ignored: XEP-0334
// may grow and an unknown hint must not make the message unreadable.
func Parse(r xml.TokenReader) (Hints, error) {
	var out Hints
	_, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		h := Hint(start.Name.Local)
		if start.Name.Space == NS && h.valid() && !out.Has(h) {
			out = append(out, h)
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read hints: %w", err)
	}
	return out, nil
}
