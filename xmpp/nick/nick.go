package nick

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

const (
	// NS is the XEP-0172 namespace, also the PEP node name.
	NS = "http://jabber.org/protocol/nick"
	// NSVCard is the vcard-temp namespace.
	NSVCard = "vcard-temp"
	// MaxLen caps a name taken from the network (in runes); longer ones are cut.
	MaxLen = 100
)

// Clean trims a name and drops control characters; "" when nothing is left.
func Clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > MaxLen {
		s = strings.TrimSpace(string(r[:MaxLen]))
	}
	return s
}

type nickElem struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/nick nick"`
	Text    string   `xml:",chardata"`
}

// FromStanza returns the XEP-0172 nick carried by a message or presence (its direct child), or "".
func FromStanza(r xml.TokenReader) string {
	d := xml.NewTokenDecoder(r)
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Space == NS && t.Name.Local == "nick" {
				var n nickElem
				if err := d.DecodeElement(&n, &t); err != nil {
					return ""
				}
				return Clean(n.Text)
			}
			if depth >= 2 {
				if err := d.Skip(); err != nil {
					return ""
				}
				depth--
			}
		case xml.EndElement:
			depth--
			if depth == 0 {
				return ""
			}
		}
	}
}

// FromItems returns the nick of the newest item of a PEP nick node, or "".
func FromItems(items []pubsub.Item) string {
	for i := len(items) - 1; i >= 0; i-- {
		var n nickElem
		if items[i].HasPayload() && items[i].Decode(&n) == nil {
			if s := Clean(n.Text); s != "" {
				return s
			}
		}
	}
	return ""
}

type vcardNames struct {
	XMLName  xml.Name `xml:"vcard-temp vCard"`
	Nickname string   `xml:"NICKNAME"`
	FN       string   `xml:"FN"`
}

// ParseVCard reads the name a vcard-temp result gives (NICKNAME, else FN); "" for none.
func ParseVCard(r xml.TokenReader) (string, error) {
	d := xml.NewTokenDecoder(r)
	for {
		tok, err := d.Token()
		if err != nil {
			return "", nil
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case start.Name.Local == "error":
			return "", nil
		case start.Name.Space == NSVCard && start.Name.Local == "vCard":
			var v vcardNames
			if err := d.DecodeElement(&v, &start); err != nil {
				return "", fmt.Errorf("nick: malformed vCard: %w", err)
			}
			if n := Clean(v.Nickname); n != "" {
				return n, nil
			}
			return Clean(v.FN), nil
		}
	}
}

// Lookup asks for the contact's XEP-0172 PEP nick, then its vCard; "" when it publishes
// neither. Errors are returned only when both lookups failed.
func Lookup(ctx context.Context, s *xmpp.Session, contact jid.JID) (string, error) {
	items, pepErr := pubsub.Items(ctx, s, contact.Bare(), NS, 1)
	if n := FromItems(items); pepErr == nil && n != "" {
		return n, nil
	}
	iq := stanza.IQ{Type: stanza.GetIQ, To: contact.Bare()}.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSVCard, Local: "vCard"}}))
	resp, err := s.SendIQ(ctx, iq)
	if err != nil {
		if pepErr != nil {
			return "", fmt.Errorf("failed to look up the name of %s: %w", contact, errors.Join(pepErr, err))
		}
		return "", nil
	}
	defer resp.Close()
	return ParseVCard(resp)
}
