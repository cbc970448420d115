package xmppclient

import (
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
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

// ParseSignals reads st's chat state and markers.
func ParseSignals(st *stanzabuf.Stanza) Signals {
	var s Signals
	if st == nil {
		return s
	}
	s.ChatState, _ = chatstates.Parse(st.Reader())
	if m, err := markers.Parse(st.Reader()); err == nil {
		s.Markable, s.Markers = m.Markable, m.Markers
	}
	return s
}

// GroupChatState is our chat state to room (XEP-0085 §5.5): composing or
// paused, never stored.
func GroupChatState(room jid.JID, typing bool) xml.TokenReader {
	state := chatstates.Paused
	if typing {
		state = chatstates.Composing
	}
	return chatstates.Message(stanza.Message{To: room.Bare(), ID: stanzaID(), Type: stanza.GroupChatMessage}, state)
}

// GroupDisplayed is our displayed marker in room of the message with the
// room's stanzaID (XEP-0333 names groupchat messages by it).
func GroupDisplayed(room jid.JID, roomStanzaID string) xml.TokenReader {
	return markers.Message(stanza.Message{To: room.Bare(), ID: stanzaID(), Type: stanza.GroupChatMessage},
		markers.Marker{Kind: markers.Displayed, ID: roomStanzaID})
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
