package xmppclient

import (
	"encoding/xml"
	"slices"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmpp/occupantid"
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
	// OccupantID is the room's XEP-0421 id of the sender (RoomOccupantID).
	OccupantID string
	// Signals are the stanza's chat state and markers (ParseSignals).
	Signals Signals
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

// RoomMessage is a groupchat message as the room sent it (Raw) with its
// parse, live or unwrapped from the room's archive.
type RoomMessage struct {
	Raw     *stanzabuf.Stanza
	Message mucroom.Message
}

// ReadGroupchat reads rm from room r: whether it carries OMEMO, its
// references (the reply fallback taken off the body) and the occupant id
// the room stamped on it, then what it is (ClassifyGroupchat).
func ReadGroupchat(rm RoomMessage, r Room) Groupchat {
	m, st := rm.Message, rm.Raw
	// Only whether there is an <encrypted/> child matters here; the
	// element is parsed once, when the message is decrypted (OMEMO).
	encrypted := hasEncrypted(st)
	refs := ParseRefs(st)
	if refs.ReplyTo != nil {
		m.Body = StripReplyFallback(st, m.Body)
	}
	g := ClassifyGroupchat(m, r.JID, encrypted, refs)
	g.Raw = st
	g.OccupantID = RoomOccupantID(r, st)
	g.Signals = ParseSignals(st)
	return g
}

// RoomOccupantID is the XEP-0421 occupant id the room stamped on st; ""
// when the room does not announce the feature (then the element could come
// from the sender and means nothing) or the stanza has none.
func RoomOccupantID(r Room, st *stanzabuf.Stanza) string {
	if !slices.Contains(r.Features.Features, occupantid.NS) {
		return ""
	}
	// The element's attributes, from the buffered tokens: decoding the
	// stanza would go through its <encrypted/> key for every device.
	id, ok, err := occupantid.FromElements(st.Children(occupantid.NS, "occupant-id"))
	if err != nil || !ok {
		return ""
	}
	return id
}

// OMEMO is the message's <encrypted/> element(s) (omemoxmpp.FindEncrypted:
// ErrNotEncrypted for a plaintext message).
func (g *Groupchat) OMEMO() (*omemoxmpp.Received, error) {
	return findEncrypted(g.Raw)
}

// SharedFile is the file the message shares with body (its plaintext), nil
// for text (see SharedFile).
func (g *Groupchat) SharedFile(body string) *File {
	return SharedFile(body, g.Raw)
}

// OMEMO is the message's <encrypted/> element(s) (omemoxmpp.FindEncrypted:
// ErrNotEncrypted for a plaintext message).
func (m *Message) OMEMO() (*omemoxmpp.Received, error) {
	return findEncrypted(m.Raw)
}

// SharedFile is the file the message shares with body (its plaintext), nil
// for text (see SharedFile).
func (m *Message) SharedFile(body string) *File {
	return SharedFile(body, m.Raw)
}

func findEncrypted(raw *stanzabuf.Stanza) (*omemoxmpp.Received, error) {
	// FindEncrypted copies and decodes the stanza; most messages have no
	// <encrypted/> child, and the stanza was read as a message already.
	if !hasEncrypted(raw) {
		return nil, omemoxmpp.ErrNotEncrypted
	}
	// The OMEMO elements alone: the rest of the stanza is not read.
	return omemoxmpp.FindEncrypted(raw.ReaderOnly(omemoElements...))
}

// omemoElements are the <encrypted/> elements of both OMEMO versions.
var omemoElements = []xml.Name{{Space: omemo.NamespaceV2, Local: "encrypted"}, {Space: omemo.NamespaceV03, Local: "encrypted"}}

// hasEncrypted reports whether raw has an <encrypted/> child of either
// OMEMO version (well-formed or not: FindEncrypted tells).
func hasEncrypted(raw *stanzabuf.Stanza) bool {
	return raw != nil && slices.ContainsFunc(omemoElements, func(n xml.Name) bool { return raw.HasChild(n.Space, n.Local) })
}
