package reactions

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/hints"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of XEP-0444.
const NS = "urn:xmpp:reactions:0"

// Limits on what is accepted from peers. The longest emoji ZWJ sequences are
// around 35 bytes of UTF-8.
const (
	MaxReactions   = 64
	MaxReactionLen = 64
)

// Errors for malformed reactions.
var (
	ErrMissingID    = errors.New("reactions: reactions without id")
	ErrTooMany      = errors.New("reactions: too many reactions")
	ErrTooLong      = errors.New("reactions: reaction too long")
	ErrTwoReactions = errors.New("reactions: message with more than one reactions element")
)

// Reactions is the set of reactions of one sender to the message ID.
type Reactions struct {
	ID     string
	Emojis []string
}

// TokenReader implements xmlstream.Marshaler.
func (r Reactions) TokenReader() xml.TokenReader {
	var kids []xml.TokenReader
	for _, e := range r.Emojis {
		kids = append(kids, xmlstream.Wrap(xmlstream.Token(xml.CharData(e)), xml.StartElement{Name: xml.Name{Local: "reaction"}}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(kids...), xml.StartElement{
		Name: xml.Name{Space: NS, Local: "reactions"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: r.ID}},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (r Reactions) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Reactions) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if r.ID == "" {
		return ErrMissingID
	}
	_, err := r.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler. Whitespace around a reaction is
// trimmed; empty and repeated reactions are dropped; more than
// MaxReactions reactions or one longer than MaxReactionLen bytes is an
// error.
func (r *Reactions) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	id, _ := children.Attr(start, "id")
	if id == "" {
		return ErrMissingID
	}
	var raw struct {
		Reactions []string `xml:"urn:xmpp:reactions:0 reaction"`
	}
	if err := d.DecodeElement(&raw, &start); err != nil {
		return fmt.Errorf("failed to read reactions: %w", err)
	}
	if len(raw.Reactions) > MaxReactions {
		return fmt.Errorf("%w: %d", ErrTooMany, len(raw.Reactions))
	}
	v := Reactions{ID: id, Emojis: []string{}}
	seen := make(map[string]bool)
	for _, e := range raw.Reactions {
		e = strings.TrimSpace(e)
		if len(e) > MaxReactionLen {
			return fmt.Errorf("%w: %d bytes", ErrTooLong, len(e))
		}
		if e == "" || seen[e] {
			continue
		}
		seen[e] = true
		v.Emojis = append(v.Emojis, e)
	}
	*r = v
	return nil
}

// Parse reads a message stanza from r and returns its reactions, or
// ok=false if it has none.
func Parse(r xml.TokenReader) (re Reactions, ok bool, err error) {
	_, err = children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || start.Name.Local != "reactions" {
			return false, nil
		}
		if ok {
			return true, ErrTwoReactions
		}
		ok = true
		return true, d.DecodeElement(&re, &start)
	})
	if err != nil {
		return Reactions{}, false, fmt.Errorf("failed to read reactions: %w", err)
	}
	return re, ok, nil
}

// Message returns msg carrying r and a <store/> hint (reactions have no
// body and would otherwise not be archived).
func Message(msg stanza.Message, r Reactions) xml.TokenReader {
	return msg.Wrap(xmlstream.MultiReader(r.TokenReader(), hints.Store.TokenReader()))
}
