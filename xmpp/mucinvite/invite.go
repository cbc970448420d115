package mucinvite

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// Namespaces.
const (
	NSDirect = "jabber:x:conference"
	NSUser   = "http://jabber.org/protocol/muc#user"
)

// Errors of Parse.
var (
	ErrNoInvite  = errors.New("mucinvite: message carries no invitation")
	ErrMalformed = errors.New("mucinvite: malformed invitation")
)

// Kind tells the two invitation kinds (and a decline) apart.
type Kind int

const (
	Direct   Kind = iota + 1 // XEP-0249, from the inviter
	Mediated                 // XEP-0045 §7.8.2, through the room
	Declined                 // XEP-0045 §7.8.2: the invitee declined our invitation
)

func (k Kind) String() string {
	switch k {
	case Direct:
		return "direct"
	case Mediated:
		return "mediated"
	case Declined:
		return "declined"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Invite is an invitation (or decline) read from a message.
type Invite struct {
	Kind Kind
	// Room is the room's bare JID.
	Room jid.JID
	// From is who invited (or declined): the inviter's JID as the room or
	// the inviter's server gives it; for a direct invitation the message's
	// sender.
	From     jid.JID
	Reason   string
	Password string
}

// Parse reads a message stanza from r and returns the invitation it
// carries. A mediated invitation must come from the room itself (its from
// is the room's bare JID); a direct one names the room in its jid attribute.
func Parse(r xml.TokenReader) (Invite, error) {
	var (
		inv   Invite
		found bool
	)
	outer, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Local != "x" || (start.Name.Space != NSDirect && start.Name.Space != NSUser) || found {
			return false, nil
		}
		if start.Name.Space == NSDirect {
			found = true
			inv.Kind = Direct
			room, err := jid.Parse(attr(start, "jid"))
			if err != nil || room.Localpart() == "" {
				return true, fmt.Errorf("%w: direct invitation to %q", ErrMalformed, attr(start, "jid"))
			}
			inv.Room = room.Bare()
			inv.Password = attr(start, "password")
			inv.Reason = attr(start, "reason")
			return true, d.Skip()
		}
		return true, parseUser(d, &inv, &found)
	})
	if err != nil {
		return Invite{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !found {
		return Invite{}, ErrNoInvite
	}
	msg, err := stanza.NewMessage(outer)
	if err != nil {
		return Invite{}, fmt.Errorf("%w: bad message: %w", ErrMalformed, err)
	}
	if msg.Type == stanza.GroupChatMessage || msg.Type == stanza.ErrorMessage {
		return Invite{}, ErrNoInvite
	}
	switch inv.Kind {
	case Direct:
		inv.From = msg.From
	default:
		if msg.From.Localpart() == "" || msg.From.Resourcepart() != "" {
			return Invite{}, fmt.Errorf("%w: mediated invitation not from a room (%s)", ErrMalformed, msg.From)
		}
		inv.Room = msg.From.Bare()
	}
	return inv, nil
}

// parseUser reads the children of a muc#user <x/>: an <invite/> or
// <decline/> and the <password/>. A muc#user payload without either (an
// occupant's private message marker, status codes) is not an invitation.
func parseUser(d *xml.Decoder, inv *Invite, found *bool) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			switch {
			case t.Name.Space == NSUser && (t.Name.Local == "invite" || t.Name.Local == "decline"):
				*found = true
				inv.Kind = Mediated
				if t.Name.Local == "decline" {
					inv.Kind = Declined
				}
				if f := attr(t, "from"); f != "" {
					from, err := jid.Parse(f)
					if err != nil {
						return fmt.Errorf("bad inviter %q: %w", f, err)
					}
					inv.From = from
				}
				if err := readReason(d, inv); err != nil {
					return err
				}
			case t.Name.Space == NSUser && t.Name.Local == "password":
				if err := d.DecodeElement(&inv.Password, &t); err != nil {
					return err
				}
			default:
				if err := d.Skip(); err != nil {
					return err
				}
			}
		}
	}
}

// readReason reads the rest of <invite/> or <decline/>.
func readReason(d *xml.Decoder, inv *Invite) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			if t.Name.Local == "reason" {
				if err := d.DecodeElement(&inv.Reason, &t); err != nil {
					return err
				}
				continue
			}
			if err := d.Skip(); err != nil {
				return err
			}
		}
	}
}

func attr(s xml.StartElement, local string) string {
	for _, a := range s.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// child builds <name to=to><reason>reason</reason></name> in muc#user.
func child(name string, to jid.JID, reason string) xml.TokenReader {
	var inner xml.TokenReader
	if reason != "" {
		inner = xmlstream.Wrap(xmlstream.Token(xml.CharData(reason)), xml.StartElement{Name: xml.Name{Local: "reason"}})
	}
	return xmlstream.Wrap(
		xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Local: name}, Attr: []xml.Attr{{Name: xml.Name{Local: "to"}, Value: to.String()}}}),
		xml.StartElement{Name: xml.Name{Space: NSUser, Local: "x"}},
	)
}

// MediatedInvite is the message that asks room to invite invitee (§7.8.2).
func MediatedInvite(room, invitee jid.JID, id, reason string) xml.TokenReader {
	return stanza.Message{To: room.Bare(), ID: id, Type: stanza.NormalMessage}.Wrap(child("invite", invitee.Bare(), reason))
}

// Decline is the message that declines, through room, the invitation of
// inviter (§7.8.2).
func Decline(room, inviter jid.JID, id, reason string) xml.TokenReader {
	return stanza.Message{To: room.Bare(), ID: id, Type: stanza.NormalMessage}.Wrap(child("decline", inviter, reason))
}
