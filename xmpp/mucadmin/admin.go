package mucadmin

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqresp"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqwait"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Namespaces of XEP-0045 used here.
const (
	NSAdmin = "http://jabber.org/protocol/muc#admin"
	NSUser  = "http://jabber.org/protocol/muc#user"
	NSOwner = "http://jabber.org/protocol/muc#owner"
)

// ErrMalformed is returned for responses that do not follow XEP-0045.
var ErrMalformed = errors.New("mucadmin: malformed element")

// Affiliation is a long-lived room affiliation.
type Affiliation string

// The affiliations of XEP-0045 §5.2.
const (
	Owner   Affiliation = "owner"
	Admin   Affiliation = "admin"
	Member  Affiliation = "member"
	Outcast Affiliation = "outcast"
	None    Affiliation = "none"
)

func (a Affiliation) rank() int {
	switch a {
	case Owner:
		return 4
	case Admin:
		return 3
	case Member:
		return 2
	case None:
		return 1
	}
	return 0
}

// Item is one <item/> of an affiliation list or of an occupant's presence.
type Item struct {
	// JID is the real (bare or full) JID; zero if the room hides it.
	JID         jid.JID
	Nick        string
	Affiliation Affiliation
	Role        string
}

func parseItem(start xml.StartElement) (Item, error) {
	var it Item
	if v, ok := children.Attr(start, "jid"); ok && v != "" {
		j, err := jid.Parse(v)
		if err != nil {
			return Item{}, fmt.Errorf("%w: bad item jid %q: %w", ErrMalformed, v, err)
		}
		it.JID = j
	}
	it.Nick, _ = children.Attr(start, "nick")
	a, _ := children.Attr(start, "affiliation")
	it.Affiliation = Affiliation(a)
	it.Role, _ = children.Attr(start, "role")
	return it, nil
}

// AffiliationsIQ returns the admin query for the list of JIDs with
// affiliation aff in room (§9.5 members, §10.5 owners, §10.8 admins).
// Servers only answer members' lists to those allowed to see them.
func AffiliationsIQ(room jid.JID, aff Affiliation) xml.TokenReader {
	return stanza.IQ{Type: stanza.GetIQ, To: room.Bare()}.Wrap(xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Local: "item"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "affiliation"}, Value: string(aff)}},
		}),
		xml.StartElement{Name: xml.Name{Space: NSAdmin, Local: "query"}},
	))
}

// ParseAffiliations reads the response to AffiliationsIQ. Items without a
// JID are skipped: an affiliation list is keyed by JID. An error response is
// a stanza.Error (forbidden when we may not see the list).
func ParseAffiliations(r xml.TokenReader) ([]Item, error) {
	kids, err := iqresp.Read(r, nil)
	if err != nil {
		return nil, err
	}
	var (
		items []Item
		found bool
	)
	for _, k := range kids {
		s := k[0].(xml.StartElement)
		if s.Name.Space != NSAdmin || s.Name.Local != "query" {
			continue
		}
		found = true
		_, err := children.Each(xmltok.Replay(k), func(d *xml.Decoder, start xml.StartElement) (bool, error) {
			if start.Name.Space != NSAdmin || start.Name.Local != "item" {
				return false, nil
			}
			it, err := parseItem(start)
			if err != nil {
				return false, err
			}
			if !it.JID.Equal(jid.JID{}) {
				items = append(items, it)
			}
			return false, nil
		})
		if err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: no admin query in result", ErrMalformed)
	}
	return items, nil
}

// Affiliations sends AffiliationsIQ on s and parses the result.
func Affiliations(ctx context.Context, s *xmpp.Session, room jid.JID, aff Affiliation) ([]Item, error) {
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	resp, err := s.SendIQ(ctx, AffiliationsIQ(room, aff))
	if err != nil {
		return nil, fmt.Errorf("failed to query %s list of %s: %w", aff, room, err)
	}
	defer resp.Close()
	items, err := ParseAffiliations(resp)
	if err != nil {
		return nil, fmt.Errorf("failed to query %s list of %s: %w", aff, room, err)
	}
	return items, nil
}

// Members returns the bare JIDs of all owners, admins and members of room,
// each once with its highest affiliation. This is the recipient list for
// OMEMO in a members-only non-anonymous room.
func Members(ctx context.Context, s *xmpp.Session, room jid.JID) ([]Item, error) {
	var lists [][]Item
	for _, aff := range []Affiliation{Owner, Admin, Member} {
		items, err := Affiliations(ctx, s, room, aff)
		if err != nil {
			return nil, err
		}
		lists = append(lists, items)
	}
	return Merge(lists...), nil
}

// Merge merges affiliation lists by bare JID, keeping the highest
// affiliation, in order of first appearance.
func Merge(lists ...[]Item) []Item {
	var out []Item
	index := make(map[string]int)
	for _, l := range lists {
		for _, it := range l {
			it.JID = it.JID.Bare()
			key := it.JID.String()
			if i, ok := index[key]; ok {
				if it.Affiliation.rank() > out[i].Affiliation.rank() {
					out[i].Affiliation = it.Affiliation
				}
				continue
			}
			index[key] = len(out)
			out = append(out, it)
		}
	}
	return out
}
