package xmppclient

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucinvite"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// Group chat invitations, subjects and private messages with occupants:
// the stanzas the connector's room glue sends and reads.

// ParseInvite reads an invitation (or a decline of ours) from a message
// (mucinvite.Parse); mucinvite.ErrNoInvite when it carries none.
func ParseInvite(st *stanzabuf.Stanza) (mucinvite.Invite, error) {
	// Parse decodes the whole stanza; every chat message is asked.
	if !st.HasChild(mucinvite.NSDirect, "x") && !st.HasChild(mucinvite.NSUser, "x") {
		return mucinvite.Invite{}, mucinvite.ErrNoInvite
	}
	return mucinvite.Parse(st.Reader())
}

// SendInvite asks room to invite invitee (XEP-0045 §7.8.2) with our id.
func SendInvite(ctx context.Context, s *xmpp.Session, room, invitee jid.JID, id, reason string) error {
	if err := s.Send(ctx, mucinvite.MediatedInvite(room, invitee, id, reason)); err != nil {
		return fmt.Errorf("failed to send the invitation of %s to %s: %w", invitee, room, err)
	}
	return nil
}

// SendDecline declines, through room, the invitation of inviter.
func SendDecline(ctx context.Context, s *xmpp.Session, room, inviter jid.JID, id, reason string) error {
	if err := s.Send(ctx, mucinvite.Decline(room, inviter, id, reason)); err != nil {
		return fmt.Errorf("failed to decline the invitation to %s: %w", room, err)
	}
	return nil
}

// Refusal is a room's error answer to a message we sent it.
type Refusal struct {
	Room jid.JID
	// Reason is the error condition and, if the room gave one, its text.
	Reason string
}

// ParseRefusal reads an error message whose id starts with idPrefix (a
// message of ours the room answered with an error); ok is false for
// anything else.
func ParseRefusal(st *stanzabuf.Stanza, idPrefix string) (r Refusal, ok bool) {
	start := st.Start()
	if AttrValue(start, "type") != string(stanza.ErrorMessage) || !strings.HasPrefix(AttrValue(start, "id"), idPrefix) {
		return Refusal{}, false
	}
	var msg struct {
		From  string       `xml:"from,attr"`
		Error stanza.Error `xml:"error"`
	}
	if err := xml.NewTokenDecoder(st.Reader()).Decode(&msg); err != nil {
		return Refusal{}, true
	}
	room, err := jid.Parse(msg.From)
	if err != nil {
		return Refusal{}, true
	}
	why := string(msg.Error.Condition)
	for _, t := range msg.Error.Text {
		if t != "" {
			why += ": " + t
			break
		}
	}
	return Refusal{Room: room.Bare(), Reason: why}, true
}

// SetSubject sets room's subject as its owner (XEP-0045 §8.1).
func SetSubject(ctx context.Context, s *xmpp.Session, room jid.JID, subject string) error {
	el := xmlstream.Wrap(xmlstream.Token(xml.CharData(subject)), xml.StartElement{Name: xml.Name{Local: "subject"}})
	if err := s.Send(ctx, stanza.Message{To: room.Bare(), Type: stanza.GroupChatMessage}.Wrap(el)); err != nil {
		return fmt.Errorf("failed to set the subject of %s: %w", room, err)
	}
	return nil
}

// PrivateOccupant reports whether a 1:1 message (from, or to when sent by
// our account from another client) is a private message with a room
// occupant (XEP-0045 §7.5), and returns the occupant: the peer is a full
// JID of a room in rooms, or the message carries the empty muc#user marker.
func PrivateOccupant(st *stanzabuf.Stanza, fromMe bool, rooms *Rooms) (jid.JID, bool) {
	if st == nil {
		return jid.JID{}, false
	}
	attr := "from"
	if fromMe {
		attr = "to"
	}
	occ, err := jid.Parse(AttrValue(st.Start(), attr))
	if err != nil || occ.Localpart() == "" || occ.Resourcepart() == "" {
		return jid.JID{}, false
	}
	if rooms != nil && rooms.Known(occ.Bare()) {
		return occ, true
	}
	if !st.HasChild(mucadmin.NSUser, "x") {
		return occ, false
	}
	_, marked, err := mucadmin.ParseUser(st.Reader())
	return occ, err == nil && marked
}
