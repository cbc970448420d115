package xmppclient

import (
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// Kind is what a stanza read from the stream is, decided once (Classify)
// before it is queued.
type Kind uint8

const (
	// KindChat is any other message: a 1:1 chat message, a carbon, a
	// chat state, a marker, an error (read further by ParseMessage).
	KindChat Kind = iota + 1
	// KindGroupchat is a message of type groupchat (ClassifyGroupchat).
	KindGroupchat
	// KindArchived is an archive result (XEP-0313), unwrapped in Archived.
	KindArchived
	// KindPubSub is a pubsub notification (PEP: avatars, OMEMO device
	// lists), parsed in Event.
	KindPubSub
	// KindRoomPresence is a presence of one of the login's rooms (the only
	// presences queued; the others are read in the Serve loop).
	KindRoomPresence
)

// Inbound is one stanza read from the stream with what Classify found in
// it, so that nothing after it parses the stanza for its kind again.
type Inbound struct {
	Kind   Kind
	Stanza *stanzabuf.Stanza
	// From is the stanza's from attribute as sent ("" when the server
	// left it out: our own bare JID).
	From string
	// Archived is the unwrapped result of a KindArchived stanza.
	Archived Archived
	// Event is the notification of a KindPubSub stanza.
	Event pubsub.Event
	// Room is the parsed message of a KindGroupchat stanza.
	Room RoomMessage
	// Presence is the occupant presence of a KindRoomPresence stanza.
	Presence mucroom.Presence
	// Err is set when the archive result, notification or presence is
	// malformed;
	// the stanza is then dropped with it.
	Err error
}

// Classify reads what st is: one pass over its top-level children, then
// the one parse its kind needs (an archive result unwrapped, a pubsub
// notification read).
func Classify(st *stanzabuf.Stanza) Inbound {
	start := st.Start()
	in := Inbound{Stanza: st, From: AttrValue(start, "from")}
	if start.Name.Local == "presence" {
		in.Kind = KindRoomPresence
		in.Presence, in.Err = mucroom.ParsePresence(st.Reader())
		return in
	}
	event, result := topLevel(st)
	switch {
	case event:
		in.Kind = KindPubSub
		in.Event, in.Err = pubsub.ParseEvent(st.Reader())
	case AttrValue(start, "type") == string(stanza.GroupChatMessage):
		in.Kind = KindGroupchat
		in.Room.Raw = st
		// ParseMessage reads none of an OMEMO element (a key for every
		// member's device); it is read once, when decrypted.
		in.Room.Message, in.Err = mucroom.ParseMessage(st.ReaderWithout(omemoElements...))
	case result:
		in.Kind = KindArchived
		in.Archived, in.Err = UnwrapArchived(st)
	default:
		in.Kind = KindChat
	}
	return in
}

// topLevel reports whether st has a pubsub <event/> or an archive
// <result/> among its children.
func topLevel(st *stanzabuf.Stanza) (event, result bool) {
	// HasChild reads the buffered tokens; a Reader would copy every one.
	return st.HasChild(pubsub.NSEvent, "event"), st.HasChild(nsMAM, "result")
}
