package markers

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/hints"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of XEP-0333.
const NS = "urn:xmpp:chat-markers:0"

// Errors returned for malformed markers.
var (
	ErrUnknownMarker = errors.New("markers: unknown marker")
	ErrMissingID     = errors.New("markers: marker without id")
)

// Kind is the kind of a marker; its value is the element's local name.
type Kind string

// The markers of XEP-0333 §3.
const (
	Received     Kind = "received"
	Displayed    Kind = "displayed"
	Acknowledged Kind = "acknowledged"
)

func (k Kind) valid() bool {
	return k == Received || k == Displayed || k == Acknowledged
}

// Marker says that the message with ID was received, displayed or
// acknowledged. Markers are cumulative: a displayed marker implies all
// earlier messages were displayed too.
type Marker struct {
	Kind Kind
	ID   string
}

// TokenReader implements xmlstream.Marshaler.
func (m Marker) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NS, Local: string(m.Kind)},
		Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: m.ID}},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (m Marker) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, m.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (m Marker) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if !m.Kind.valid() {
		return fmt.Errorf("%w: %q", ErrUnknownMarker, string(m.Kind))
	}
	if m.ID == "" {
		return ErrMissingID
	}
	_, err := m.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (m *Marker) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	k := Kind(start.Name.Local)
	if start.Name.Space != NS || !k.valid() {
		return fmt.Errorf("%w: <%s xmlns=%q/>", ErrUnknownMarker, start.Name.Local, start.Name.Space)
	}
	id, _ := children.Attr(start, "id")
	if id == "" {
		return fmt.Errorf("%w: %s", ErrMissingID, k)
	}
	*m = Marker{Kind: k, ID: id}
	return d.Skip()
}

// Markable is the <markable/> element asking for markers.
type Markable struct{}

// TokenReader implements xmlstream.Marshaler.
func (Markable) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NS, Local: "markable"}})
}

// WriteXML implements xmlstream.WriterTo.
func (m Markable) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, m.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (m Markable) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	_, err := m.WriteXML(e)
	return err
}

// Markers is what Parse found in one message.
type Markers struct {
	// Markable is true if the message asks for markers.
	Markable bool
	// Markers are the markers the message carries (normally zero or one).
	Markers []Marker
}

// Parse reads a message stanza from r and returns its markers.
// Malformed markers make it fail; unknown elements of NS are ignored.
func Parse(r xml.TokenReader) (Markers, error) {
	var out Markers
	_, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS {
			return false, nil
		}
		if start.Name.Local == "markable" {
			out.Markable = true
			return false, nil
		}
		if !Kind(start.Name.Local).valid() {
			return false, nil
		}
		var m Marker
		if err := d.DecodeElement(&m, &start); err != nil {
			return true, err
		}
		out.Markers = append(out.Markers, m)
		return true, nil
	})
	if err != nil {
		return Markers{}, fmt.Errorf("failed to read chat markers: %w", err)
	}
	return out, nil
}

// Message returns msg carrying marker m and a <store/> hint: markers have no
// body, and without the hint servers would not archive them, so other
// clients of the account could not sync read state from MAM.
func Message(msg stanza.Message, m Marker) xml.TokenReader {
	return msg.Wrap(xmlstream.MultiReader(m.TokenReader(), hints.Store.TokenReader()))
}
