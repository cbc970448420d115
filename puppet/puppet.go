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

// ValidUserID reports whether id could have come from UserID.
func ValidUserID(id networkid.UserID) bool {
	_, err := ParseUserID(id)
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
