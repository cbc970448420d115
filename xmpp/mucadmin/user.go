package mucadmin

import (
	"encoding/xml"
	"fmt"
	"strconv"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// Status codes of <x xmlns='http://jabber.org/protocol/muc#user'/> that
// matter for real-JID visibility (XEP-0045 §15.6.2).
const (
	StatusNonAnonymous      = 100 // entering: the room shows real JIDs to everyone
	StatusSelf              = 110 // this presence is about ourselves
	StatusConfigChanged     = 104 // a configuration change that does not touch privacy
	StatusNowNonAnonymous   = 172 // configuration changed: now non-anonymous
	StatusNowSemiAnonymous  = 173 // configuration changed: now semi-anonymous
	StatusNowFullyAnonymous = 174 // configuration changed: now fully anonymous
)

// User is the muc#user payload of an occupant's presence (or of a room
// message carrying status codes).
type User struct {
	Item   Item
	Status []int
}

// HasStatus reports whether u carries status code.
func (u User) HasStatus(code int) bool {
	for _, c := range u.Status {
		if c == code {
			return true
		}
	}
	return false
}

// ParseUser reads a presence or message stanza from r and returns its
// muc#user payload, or ok=false if it has none. Item.JID is the occupant's
// real JID when the room shows it to us.
func ParseUser(r xml.TokenReader) (u User, ok bool, err error) {
	_, err = children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NSUser || start.Name.Local != "x" {
			return false, nil
		}
		if ok {
			return false, fmt.Errorf("%w: more than one muc#user element", ErrMalformed)
		}
		ok = true
		return true, parseUser(d, &u)
	})
	if err != nil {
		return User{}, false, fmt.Errorf("failed to read muc#user: %w", err)
	}
	return u, ok, nil
}

func parseUser(d *xml.Decoder, u *User) error {
	sawItem := false
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
			case t.Name.Space == NSUser && t.Name.Local == "item":
				it, err := parseItem(t)
				if err != nil {
					return err
				}
				if !sawItem {
					sawItem, u.Item = true, it
					break
				}
				// Prosody gives an occupant joined from several sessions
				// under one nick (a restarted client whose old session
				// still hibernates under XEP-0198) one item per session:
				// the same occupant, told apart by the full JID only.
				if it.JID.Bare().String() != u.Item.JID.Bare().String() || it.Affiliation != u.Item.Affiliation || it.Role != u.Item.Role {
					return fmt.Errorf("%w: items for different occupants", ErrMalformed)
				}
			case t.Name.Space == NSUser && t.Name.Local == "status":
				v, _ := children.Attr(t, "code")
				code, err := strconv.Atoi(v)
				if err != nil || code < 100 || code > 999 {
					return fmt.Errorf("%w: bad status code %q", ErrMalformed, v)
				}
				u.Status = append(u.Status, code)
			}
			if err := d.Skip(); err != nil {
				return err
			}
		}
	}
}
