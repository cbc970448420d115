package mucroom

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Status codes of occupant presences besides mucadmin's (§15.6.2).
const (
	StatusRoomCreated = 201 // we created the room; it is locked until configured
	StatusNickChanged = 303 // unavailable: the occupant is changing nick to Item.Nick
	StatusNickRewrote = 210 // the service changed our nick
	StatusBanned      = 301
	StatusKicked      = 307
	StatusRemoved     = 321 // affiliation change in a members-only room
	StatusShutdown    = 332 // the service is going down
)

// ErrNotPresence is returned by ParsePresence for other stanzas.
var ErrNotPresence = errors.New("mucroom: not a presence")

// Presence is a presence from a room: an occupant's (room@service/nick), our
// own (status 110), or the error that answers a join.
type Presence struct {
	From jid.JID
	ID   string
	Type stanza.PresenceType
	// User is the muc#user payload; HasUser is false without one.
	User    mucadmin.User
	HasUser bool
	// Error is set for type=error.
	Error *stanza.Error
}

// Nick is the occupant's nickname (empty for the room itself).
func (p Presence) Nick() string { return p.From.Resourcepart() }

// Self reports whether the presence is about ourselves.
func (p Presence) Self() bool { return p.User.HasStatus(mucadmin.StatusSelf) }

// Available reports whether the occupant is (still) in the room.
func (p Presence) Available() bool { return p.Type == stanza.AvailablePresence }

// NewNick is the nickname an occupant leaving with status 303 takes.
func (p Presence) NewNick() (string, bool) {
	if p.Type != stanza.UnavailablePresence || !p.User.HasStatus(StatusNickChanged) || p.User.Item.Nick == "" {
		return "", false
	}
	return p.User.Item.Nick, true
}

// ParsePresence reads one presence stanza from r.
func ParsePresence(r xml.TokenReader) (Presence, error) {
	var (
		p       Presence
		userTok []xml.Token
	)
	start, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		switch {
		case start.Name.Space == mucadmin.NSUser && start.Name.Local == "x":
			if userTok != nil {
				return false, fmt.Errorf("%w: more than one muc#user element", mucadmin.ErrMalformed)
			}
			toks, err := xmltok.Capture(d, start)
			userTok = toks
			return true, err
		case start.Name.Local == "error" && p.Error == nil:
			var se stanza.Error
			if err := d.DecodeElement(&se, &start); err != nil {
				return true, fmt.Errorf("failed to read presence error: %w", err)
			}
			p.Error = &se
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return Presence{}, err
	}
	if start.Name.Local != "presence" {
		return Presence{}, fmt.Errorf("%w: <%s>", ErrNotPresence, start.Name.Local)
	}
	p.ID, _ = children.Attr(start, "id")
	typ, _ := children.Attr(start, "type")
	p.Type = stanza.PresenceType(typ)
	if from, ok := children.Attr(start, "from"); ok && from != "" {
		if p.From, err = jid.Parse(from); err != nil {
			return Presence{}, fmt.Errorf("%w: bad from %q: %w", mucadmin.ErrMalformed, from, err)
		}
	}
	if p.Type == stanza.ErrorPresence && p.Error == nil {
		p.Error = &stanza.Error{Condition: stanza.UndefinedCondition}
	}
	if userTok != nil {
		if p.User, p.HasUser, err = mucadmin.ParseUser(wrapIn(userTok, "presence")); err != nil {
			return Presence{}, err
		}
	}
	return p, nil
}
