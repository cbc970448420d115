package sid

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
)

// NS is the namespace of origin-id and stanza-id.
const NS = "urn:xmpp:sid:0"

// Errors returned when unmarshaling malformed IDs.
var (
	ErrMissingID = errors.New("sid: missing or empty id attribute")
	ErrMissingBy = errors.New("sid: stanza-id without by attribute")
)

// maxIDLen bounds ids we accept; XEP-0359 does not set one, but a bridge
// stores them in indexed columns and a hostile peer should not be able to
// make those arbitrarily large.
const maxIDLen = 256

// ErrIDTooLong is returned for ids longer than 256 bytes.
var ErrIDTooLong = errors.New("sid: id longer than 256 bytes")

// OriginID is the <origin-id/> a sending client puts in its own message.
type OriginID struct {
	ID string
}

// TokenReader implements xmlstream.Marshaler.
func (o OriginID) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NS, Local: "origin-id"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: o.ID}},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (o OriginID) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, o.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (o OriginID) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	_, err := o.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
// It rejects an element without a usable id.
func (o *OriginID) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	id, err := checkID(start)
	if err != nil {
		return fmt.Errorf("invalid origin-id: %w", err)
	}
	o.ID = id
	return d.Skip()
}

// StanzaID is the <stanza-id/> an archiving entity adds to a message.
type StanzaID struct {
	ID string
	By jid.JID
}

// TokenReader implements xmlstream.Marshaler.
func (s StanzaID) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NS, Local: "stanza-id"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "id"}, Value: s.ID},
			{Name: xml.Name{Local: "by"}, Value: s.By.String()},
		},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (s StanzaID) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, s.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (s StanzaID) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	_, err := s.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
// It rejects an element without a usable id or without a valid by JID.
func (s *StanzaID) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	id, err := checkID(start)
	if err != nil {
		return fmt.Errorf("invalid stanza-id: %w", err)
	}
	by := attr(start, "by")
	if by == "" {
		return fmt.Errorf("invalid stanza-id %q: %w", id, ErrMissingBy)
	}
	j, err := jid.Parse(by)
	if err != nil {
		return fmt.Errorf("invalid stanza-id %q: bad by %q: %w", id, by, err)
	}
	s.ID, s.By = id, j
	return d.Skip()
}

func checkID(start xml.StartElement) (string, error) {
	id := attr(start, "id")
	switch {
	case id == "":
		return "", ErrMissingID
	case len(id) > maxIDLen:
		return "", ErrIDTooLong
	}
	return id, nil
}

func attr(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
