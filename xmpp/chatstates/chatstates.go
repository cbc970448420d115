package chatstates

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/hints"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of XEP-0085.
const NS = "http://jabber.org/protocol/chatstates"

// Errors returned for malformed chat states.
var (
	ErrUnknownState = errors.New("chatstates: unknown chat state")
	ErrTwoStates    = errors.New("chatstates: message with more than one chat state")
)

// State is a chat state; its value is the element's local name.
type State string

// The chat states of XEP-0085 §2.
const (
	Active    State = "active"
	Composing State = "composing"
	Paused    State = "paused"
	Inactive  State = "inactive"
	Gone      State = "gone"
)

func (s State) valid() bool {
	switch s {
	case Active, Composing, Paused, Inactive, Gone:
		return true
	}
	return false
}

// TokenReader implements xmlstream.Marshaler.
func (s State) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NS, Local: string(s)}})
}

// WriteXML implements xmlstream.WriterTo.
func (s State) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, s.TokenReader())
}

// MarshalXML implements xml.Marshaler. It refuses unknown states.
func (s State) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if !s.valid() {
		return fmt.Errorf("%w: %q", ErrUnknownState, string(s))
	}
	_, err := s.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (s *State) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v := State(start.Name.Local)
	if start.Name.Space != NS || !v.valid() {
		return fmt.Errorf("%w: <%s xmlns=%q/>", ErrUnknownState, start.Name.Local, start.Name.Space)
	}
	*s = v
	return d.Skip()
}

// Parse reads a message stanza from r and returns its chat state, or "" if
// it has none. Two different states, or an unknown element in NS, are
// errors (XEP-0085 §5.1 allows exactly one).
func Parse(r xml.TokenReader) (State, error) {
	var found State
	_, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS {
			return false, nil
		}
		var s State
		if err := d.DecodeElement(&s, &start); err != nil {
			return true, err
		}
		if found != "" && found != s {
			return true, fmt.Errorf("%w: %s and %s", ErrTwoStates, found, s)
		}
		found = s
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("failed to read chat state: %w", err)
	}
	return found, nil
}

// Message returns a standalone notification of state s in msg (whose type
// should be chat or groupchat), marked <no-store/> so servers do not
// archive it.
func Message(msg stanza.Message, s State) xml.TokenReader {
	return msg.Wrap(xmlstream.MultiReader(s.TokenReader(), hints.NoStore.TokenReader()))
}
