package retract

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/fallback"
	"github.com/mxomemo/xmpp-bridge/xmpp/hints"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// Namespaces of XEP-0424 version 1 and of the legacy version 0 form.
const (
	NS       = "urn:xmpp:message-retract:1"
	NSv0     = "urn:xmpp:message-retract:0"
	NSFasten = "urn:xmpp:fasten:0"
)

// FallbackBody is the body sent to clients that do not understand
// retractions.
const FallbackBody = "This person attempted to retract a previous message, but it's unsupported by your client."

// Errors for malformed retractions.
var (
	ErrMissingID = errors.New("retract: retraction without id")
	ErrTwoIDs    = errors.New("retract: message retracts more than one message")
)

// Retract is the <retract id='…'/> element of version 1.
type Retract struct {
	ID string
}

// TokenReader implements xmlstream.Marshaler.
func (r Retract) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NS, Local: "retract"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: r.ID}},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (r Retract) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Retract) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if r.ID == "" {
		return ErrMissingID
	}
	_, err := r.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (r *Retract) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	id, _ := children.Attr(start, "id")
	if id == "" {
		return ErrMissingID
	}
	r.ID = id
	return d.Skip()
}

// Parse reads a message stanza from r and returns the id of the message it
// retracts, or ok=false if it is not a retraction.
func Parse(r xml.TokenReader) (id string, ok bool, err error) {
	set := func(v string) error {
		if ok && v != id {
			return ErrTwoIDs
		}
		id, ok = v, true
		return nil
	}
	_, err = children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		switch {
		case start.Name.Space == NS && start.Name.Local == "retract":
			var rt Retract
			if err := d.DecodeElement(&rt, &start); err != nil {
				return true, err
			}
			return true, set(rt.ID)
		case start.Name.Space == NSFasten && start.Name.Local == "apply-to":
			v0, err := parseApplyTo(d, start)
			if err != nil || v0 == "" {
				return true, err
			}
			return true, set(v0)
		}
		return false, nil
	})
	if err != nil {
		return "", false, fmt.Errorf("failed to read retraction: %w", err)
	}
	return id, ok, nil
}

// parseApplyTo reads a version 0 <apply-to id='…'> and returns its id if it
// holds a <retract xmlns='urn:xmpp:message-retract:0'/>, "" otherwise
// (fastening is used for other things too).
func parseApplyTo(d *xml.Decoder, start xml.StartElement) (string, error) {
	id, _ := children.Attr(start, "id")
	isRetract := false
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if !isRetract {
				return "", nil
			}
			if id == "" {
				return "", ErrMissingID
			}
			return id, nil
		case xml.StartElement:
			if t.Name.Space == NSv0 && t.Name.Local == "retract" {
				isRetract = true
			}
			if err := d.Skip(); err != nil {
				return "", err
			}
		}
	}
}

// Message returns msg as a version 1 retraction of the message with id,
// with the fallback body and a <store/> hint.
func Message(msg stanza.Message, id string) xml.TokenReader {
	return msg.Wrap(xmlstream.MultiReader(
		Retract{ID: id}.TokenReader(),
		fallback.Fallback{For: NS}.TokenReader(),
		xmlstream.Wrap(xmlstream.Token(xml.CharData(FallbackBody)), xml.StartElement{Name: xml.Name{Local: "body"}}),
		hints.Store.TokenReader(),
	))
}
