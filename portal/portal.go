package portal

import (
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"
)

// Kind is the kind of chat a portal bridges.
type Kind int

// Chat kinds.
const (
	DM Kind = iota + 1
	MUC
	// PM is a private chat with a room occupant (XEP-0045 §7.5), by the
	// occupant's room@service/nick JID.
	PM
)

func (k Kind) String() string {
	switch k {
	case DM:
		return "dm"
	case MUC:
		return "muc"
	case PM:
		return "pm"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

const (
	mucPrefix = "muc:"
	pmPrefix  = "pm:"
)

// ErrBadKey is returned for portal keys that no function here produced.
var ErrBadKey = errors.New("portal: not an XMPP portal key")

// Chat is what a portal key names.
type Chat struct {
	Kind Kind
	// JID is the contact's or room's bare JID, or for PM the occupant's
	// full room@service/nick.
	JID jid.JID
	// Login is the receiver; empty for a MUC portal shared by all logins.
	Login networkid.UserLoginID
}

// DMKey is the key of the 1:1 chat between the login and contact.
func DMKey(contact jid.JID, login networkid.UserLoginID) networkid.PortalKey {
	return networkid.PortalKey{ID: networkid.PortalID(contact.Bare().String()), Receiver: login}
}

// MUCKey is the key of a room. With split set the portal belongs to the
// login; otherwise all logins in the room share one portal.
func MUCKey(room jid.JID, login networkid.UserLoginID, split bool) networkid.PortalKey {
	key := networkid.PortalKey{ID: networkid.PortalID(mucPrefix + room.Bare().String())}
	if split {
		key.Receiver = login
	}
	return key
}

// PMKey is the key of the login's private chat with a room occupant
// (room@service/nick): its own portal, apart from the room's and from a 1:1
// chat with the occupant's account.
func PMKey(occupant jid.JID, login networkid.UserLoginID) networkid.PortalKey {
	return networkid.PortalKey{ID: networkid.PortalID(pmPrefix + occupant.String()), Receiver: login}
}

// Parse reads a portal key back.
func Parse(key networkid.PortalKey) (Chat, error) {
	s := string(key.ID)
	if rest, ok := strings.CutPrefix(s, pmPrefix); ok {
		j, err := jid.Parse(rest)
		if err != nil {
			return Chat{}, fmt.Errorf("%w: %q: %w", ErrBadKey, key.ID, err)
		}
		if j.Localpart() == "" || j.Resourcepart() == "" || j.String() != rest || key.Receiver == "" {
			return Chat{}, fmt.Errorf("%w: %q is not a canonical occupant JID of a login", ErrBadKey, key.ID)
		}
		return Chat{Kind: PM, JID: j, Login: key.Receiver}, nil
	}
	kind := DM
	if rest, ok := strings.CutPrefix(s, mucPrefix); ok {
		s, kind = rest, MUC
	}
	j, err := jid.Parse(s)
	if err != nil {
		return Chat{}, fmt.Errorf("%w: %q: %w", ErrBadKey, key.ID, err)
	}
	if j.Resourcepart() != "" || j.String() != s {
		return Chat{}, fmt.Errorf("%w: %q is not a canonical bare JID", ErrBadKey, key.ID)
	}
	if kind == DM && key.Receiver == "" {
		return Chat{}, fmt.Errorf("%w: 1:1 portal %q without receiver", ErrBadKey, key.ID)
	}
	return Chat{Kind: kind, JID: j, Login: key.Receiver}, nil
}
