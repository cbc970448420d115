package xmppclient

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// Signals are the chat state (XEP-0085) and chat markers (XEP-0333) of a
// message stanza; malformed ones are left out.
type Signals struct {
	ChatState chatstates.State
	Markable  bool
	Markers   []markers.Marker
}

// ParseSignals reads st's chat state and markers. Each parser decodes the
// whole stanza, so it runs only when st has a child in its namespace (most
// messages have none of one or the other).
func ParseSignals(st *stanzabuf.Stanza) Signals {
	var s Signals
	if st == nil {
		return s
	}
	if st.HasChildIn(chatstates.NS) {
		s.ChatState, _ = chatstates.Parse(st.Reader())
	}
	if !st.HasChildIn(markers.NS) {
		return s
	}
	if m, err := markers.Parse(st.Reader()); err == nil {
		s.Markable, s.Markers = m.Markable, m.Markers
	}
	return s
}

// PresenceStanza is the account's broadcast presence: show (nothing for
// available) and status, with the caps element every presence of ours
// carries.
func PresenceStanza(show Show, status string) xml.TokenReader {
	var inner []xml.TokenReader
	if show != ShowAvailable && show != ShowOffline {
		inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(show)), xml.StartElement{Name: xml.Name{Local: "show"}}))
	}
	if status != "" {
		inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(status)), xml.StartElement{Name: xml.Name{Local: "status"}}))
	}
	if caps := CapsElement(); caps != nil {
		inner = append(inner, caps)
	}
	return stanza.Presence{}.Wrap(xmlstream.MultiReader(inner...))
}

// SendPresence broadcasts the account's presence (PresenceStanza).
func SendPresence(ctx context.Context, s *xmpp.Session, show Show, status string) error {
	if err := s.Send(ctx, PresenceStanza(show, status)); err != nil {
		return fmt.Errorf("failed to send presence: %w", err)
	}
	return nil
}
