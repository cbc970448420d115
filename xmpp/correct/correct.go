package correct

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of XEP-0308.
const NS = "urn:xmpp:message-correct:0"

// Errors returned for malformed corrections.
var (
	ErrMissingID = errors.New("correct: replace without id")
	ErrTwoIDs    = errors.New("correct: message replaces more than one message")
)

// Replace is the <replace id='…'/> element.
type Replace struct {
	ID string
}

// TokenReader implements xmlstream.Marshaler.
func (r Replace) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NS, Local: "replace"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: r.ID}},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (r Replace) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Replace) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if r.ID == "" {
		return ErrMissingID
	}
	_, err := r.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (r *Replace) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	id, _ := children.Attr(start, "id")
	if id == "" {
		return ErrMissingID
	}
	r.ID = id
	return d.Skip()
}

// Parse reads a message stanza from r and returns the id it replaces, or
// ok=false if it is not a correction.
func Parse(r xml.TokenReader) (id string, ok bool, err error) {
	_, err = children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || start.Name.Local != "replace" {
			return false, nil
		}
		var rep Replace
		if err := d.DecodeElement(&rep, &start); err != nil {
			return true, err
		}
		if ok && rep.ID != id {
			return true, ErrTwoIDs
		}
		id, ok = rep.ID, true
		return true, nil
	})
	if err != nil {
		return "", false, fmt.Errorf("failed to read correction: %w", err)
	}
	return id, ok, nil
}

// SameSender reports whether a correction from corrector may replace a
// message from original. In groupchats the occupant JID (room@service/nick)
// must match exactly; in 1:1 chats the bare JID, because the sender may
// have reconnected with another resource since.
func SameSender(original, corrector jid.JID, groupchat bool) bool {
	if groupchat {
		return original.Equal(corrector)
	}
	return original.Bare().Equal(corrector.Bare())
}

// Message returns msg with body as a correction of the message with id.
func Message(msg stanza.Message, id, body string) xml.TokenReader {
	return msg.Wrap(xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}}),
		Replace{ID: id}.TokenReader(),
	))
}
