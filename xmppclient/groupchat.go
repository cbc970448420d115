package xmppclient

import (
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// GroupchatKind is what a groupchat message is.
type GroupchatKind int

// Kinds of groupchat messages.
const (
	GroupchatIgnore  GroupchatKind = iota // the room's own notices, chat states, markers
	GroupchatMessage                      // text (or an OMEMO message not read yet) from an occupant
	GroupchatSubject                      // the room's subject changed
)

// Groupchat is a classified type=groupchat message. Who the sender is on
// the other side of the bridge is not decided here: that takes the room's
// occupants and the connector's IDs.
type Groupchat struct {
	Kind GroupchatKind
	Room jid.JID
	Nick string
	// OriginID, XMPPID (the id attribute the sender gave the message) and
	// StanzaID (the room's) are the message's ids.
	OriginID  string
	XMPPID    string
	StanzaID  string
	Body      string
	Subject   string
	Encrypted bool
	Timestamp time.Time
	// Refs are the message's references to an earlier one.
	Refs
	// Raw is the stanza, for payloads read later (OMEMO, a shared file's
	// OOB element).
	Raw *stanzabuf.Stanza
}

// ClassifyGroupchat decides what the groupchat message m from room is.
// encrypted says whether it carries an OMEMO <encrypted/> element; its body
// is then only a fallback and is dropped. It is pure so that the rules can
// be tested without a server.
func ClassifyGroupchat(m mucroom.Message, room jid.JID, encrypted bool, refs Refs) Groupchat {
	g := Groupchat{
		Room: room, Nick: m.Nick(), OriginID: m.OriginID, XMPPID: m.ID, StanzaID: m.StanzaID,
		Body: m.Body, Encrypted: encrypted, Timestamp: m.Delay, Refs: refs,
	}
	switch {
	case m.Subject != nil:
		g.Kind, g.Subject = GroupchatSubject, *m.Subject
		return g
	case g.Nick == "":
		// The room's own messages: status codes and service notices.
		return g
	case m.Body == "" && !encrypted && refs.Reactions == nil && refs.Retract == "":
		// Chat states, markers and the like.
		return g
	}
	g.Kind = GroupchatMessage
	if encrypted {
		g.Body = ""
	}
	return g
}
