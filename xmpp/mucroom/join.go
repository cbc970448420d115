package mucroom

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqwait"
)

// Join is the presence that enters a room (§7.2.1).
type Join struct {
	// Occupant is room@service/nick.
	Occupant jid.JID
	ID       string
	// MaxStanzas limits the discussion history the room sends after the
	// join (§7.2.15); a negative value leaves it to the room.
	MaxStanzas int
	// Since, when set with MaxStanzas > 0 or negative, limits the history
	// to messages the room received since then.
	Since    time.Time
	Password string
}

// TokenReader implements xmlstream.Marshaler.
func (j Join) TokenReader() xml.TokenReader {
	var inner []xml.TokenReader
	var history []xml.Attr
	if j.MaxStanzas >= 0 {
		history = append(history, xml.Attr{Name: xml.Name{Local: "maxstanzas"}, Value: strconv.Itoa(j.MaxStanzas)})
	}
	if !j.Since.IsZero() && j.MaxStanzas != 0 {
		history = append(history, xml.Attr{Name: xml.Name{Local: "since"}, Value: j.Since.UTC().Format(time.RFC3339)})
	}
	if len(history) > 0 {
		inner = append(inner, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "history"}, Attr: history}))
	}
	if j.Password != "" {
		inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(j.Password)), xml.StartElement{Name: xml.Name{Local: "password"}}))
	}
	x := xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{Name: xml.Name{Space: muc.NS, Local: "x"}})
	return stanza.Presence{To: j.Occupant, ID: j.ID}.Wrap(x)
}

// Leave is the presence that exits a room (§7.14).
func Leave(occupant jid.JID, id, status string) xml.TokenReader {
	var inner xml.TokenReader
	if status != "" {
		inner = xmlstream.Wrap(xmlstream.Token(xml.CharData(status)), xml.StartElement{Name: xml.Name{Local: "status"}})
	}
	return stanza.Presence{To: occupant, ID: id, Type: stanza.UnavailablePresence}.Wrap(inner)
}

// Errors a join can end in (§7.2.6–§7.2.11, §10.1.3). JoinError wraps the
// room's stanza error in one of them.
var (
	ErrNickConflict   = errors.New("mucroom: the nickname is in use")
	ErrNotFound       = errors.New("mucroom: the room does not exist")
	ErrMembersOnly    = errors.New("mucroom: the room is members-only")
	ErrBanned         = errors.New("mucroom: banned from the room")
	ErrPassword       = errors.New("mucroom: the room needs a password")
	ErrFull           = errors.New("mucroom: the room is full")
	ErrNoRoomCreation = errors.New("mucroom: the service does not let us create rooms")
	ErrNickRejected   = errors.New("mucroom: the room does not accept the nickname")
	ErrJoinFailed     = errors.New("mucroom: the room refused the join")
)

// JoinError maps the error presence that answers a join to one of the
// errors above.
func JoinError(e stanza.Error) error {
	var kind error
	switch e.Condition {
	case stanza.Conflict:
		kind = ErrNickConflict
	case stanza.ItemNotFound, stanza.RemoteServerNotFound, stanza.Gone:
		kind = ErrNotFound
	case stanza.RegistrationRequired:
		kind = ErrMembersOnly
	case stanza.Forbidden:
		kind = ErrBanned
	case stanza.NotAuthorized:
		kind = ErrPassword
	case stanza.ServiceUnavailable:
		kind = ErrFull
	case stanza.NotAllowed:
		kind = ErrNoRoomCreation
	case stanza.JIDMalformed, stanza.NotAcceptable, stanza.PolicyViolation:
		kind = ErrNickRejected
	default:
		kind = ErrJoinFailed
	}
	return fmt.Errorf("%w: %w", kind, e)
}

// MakeInstant accepts the default configuration of a room we just created
// (status 201), which unlocks it for others (§10.1.2).
func MakeInstant(ctx context.Context, s *xmpp.Session, room jid.JID) error {
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	if err := muc.SetConfig(ctx, room.Bare(), form.New(), s); err != nil {
		return fmt.Errorf("failed to configure %s as an instant room: %w", room.Bare(), err)
	}
	return nil
}
