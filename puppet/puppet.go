package puppet

import (
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"
)

// ErrNotBareJID is returned for IDs that are not a bare JID.
var ErrNotBareJID = errors.New("puppet: not a bare JID")

// UserID is the ghost ID of the contact j: its bare JID in canonical form,
// so that every spelling of the same address maps to one ghost.
func UserID(j jid.JID) networkid.UserID {
	return networkid.UserID(j.Bare().String())
}

// LoginID is the login ID of the account j (its bare JID).
func LoginID(j jid.JID) networkid.UserLoginID {
	return networkid.UserLoginID(j.Bare().String())
}

// ParseUserID returns the JID of a ghost ID. It accepts only canonical bare
// JIDs, so an ID that did not come from UserID is rejected.
func ParseUserID(id networkid.UserID) (jid.JID, error) {
	return parseBare(string(id))
}

// ParseLoginID returns the account JID of a login ID.
func ParseLoginID(id networkid.UserLoginID) (jid.JID, error) {
	return parseBare(string(id))
}

func parseBare(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %q: %w", ErrNotBareJID, s, err)
	}
	if j.Resourcepart() != "" || j.String() != s {
		return jid.JID{}, fmt.Errorf("%w: %q", ErrNotBareJID, s)
	}
	return j, nil
}

// occupantPrefix marks the ghost IDs of room occupants. ':' cannot occur
// in a localpart and the rest contains '/', so no bare JID starts with it.
const occupantPrefix = "muc:"

// ErrNotOccupant is returned for IDs that are not an occupant's ghost ID.
var ErrNotOccupant = errors.New("puppet: not a room occupant ID")

// OccupantUserID is the ghost ID of the occupant room@service/nick of a
// room that hides real JIDs: "muc:" plus the occupant JID. It stays the same
// while the nick does, and ParseOccupantID gives the occupant JID back.
// Occupants whose real JID the room shows get UserID of that JID instead,
// the same ghost as in 1:1 chats.
func OccupantUserID(occupant jid.JID) networkid.UserID {
	return networkid.UserID(occupantPrefix + occupant.String())
}

// OccupantGhost is who occupant nick of room is on the Matrix side: the
// shared ghost of its real JID when the room shows it (realJID set), else a
// ghost of the occupant JID (OccupantUserID). Ourselves (ourNick, or our
// account from another client) is fromMe, with the account's ID.
func OccupantGhost(room jid.JID, ourNick, nick string, realJID, account jid.JID) (id networkid.UserID, fromMe bool) {
	if nick == ourNick {
		return UserID(account), true
	}
	if !realJID.Equal(jid.JID{}) {
		if realJID.Bare().Equal(account.Bare()) {
			return UserID(account), true
		}
		return UserID(realJID), false
	}
	occ, err := room.WithResource(nick)
	if err != nil {
		// Nicks come from parsed JIDs, so this cannot happen.
		return "", false
	}
	return OccupantUserID(occ), false
}

// ParseOccupantID returns the occupant JID (room@service/nick) of an ID
// made by OccupantUserID.
func ParseOccupantID(id networkid.UserID) (jid.JID, error) {
	rest, ok := strings.CutPrefix(string(id), occupantPrefix)
	if !ok {
		return jid.JID{}, fmt.Errorf("%w: %q", ErrNotOccupant, id)
	}
	j, err := jid.Parse(rest)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %q: %w", ErrNotOccupant, id, err)
	}
	if j.Localpart() == "" || j.Resourcepart() == "" || j.String() != rest {
		return jid.JID{}, fmt.Errorf("%w: %q", ErrNotOccupant, id)
	}
	return j, nil
}

// ValidUserID reports whether id could have come from UserID or
// OccupantUserID.
func ValidUserID(id networkid.UserID) bool {
	if _, err := ParseUserID(id); err == nil {
		return true
	}
	_, err := ParseOccupantID(id)
	return err == nil
}

// Name is the display name of a contact: the roster name when the user set
// one, else the JID's localpart, else (for server or component JIDs) the
// domain.
func Name(rosterName string, j jid.JID) string {
	if n := strings.TrimSpace(rosterName); n != "" {
		return n
	}
	if l := j.Localpart(); l != "" {
		return l
	}
	return j.Domainpart()
}
