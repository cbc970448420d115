package xmppclient

import (
	"encoding/xml"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmpp/retract"
)

// Signal is a bodyless message to a contact or a room: a reaction set, a
// retraction, a displayed marker, a chat state, or an OMEMO key transport
// (heartbeat, session reset). None carries content, so none goes through
// Outgoing and its encryption. Exactly one of its payload fields is set.
type Signal struct {
	To jid.JID
	// Room sends it to the room (type groupchat, to its bare JID).
	Room bool
	ID   string

	Reactions *reactions.Reactions
	// Retract is the id of our message to retract (XEP-0424).
	Retract string
	// Displayed is the id of the message read (XEP-0333).
	Displayed string
	// ChatState is a XEP-0085 state.
	ChatState chatstates.State
	// KeyTransport is an OMEMO element set without payload.
	KeyTransport *omemoxmpp.Outgoing
}

func (s Signal) header() stanza.Message {
	if s.Room {
		return stanza.Message{To: s.To.Bare(), ID: s.ID, Type: stanza.GroupChatMessage}
	}
	return stanza.Message{To: s.To, ID: s.ID, Type: stanza.ChatMessage}
}

// Stanza is the signal's message.
func (s Signal) Stanza() (xml.TokenReader, error) {
	m := s.header()
	switch {
	case s.Reactions != nil:
		return reactions.Message(m, *s.Reactions), nil
	case s.Retract != "":
		return retract.Message(m, s.Retract), nil
	case s.Displayed != "":
		return markers.Message(m, markers.Marker{Kind: markers.Displayed, ID: s.Displayed}), nil
	case s.KeyTransport != nil:
		m.To = s.To.Bare()
		return omemoxmpp.BuildMessage(m, s.KeyTransport)
	default:
		return chatstates.Message(m, s.ChatState), nil
	}
}
