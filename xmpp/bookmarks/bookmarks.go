package bookmarks

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Namespaces and features.
const (
	// NS is the XEP-0402 PEP node and payload namespace.
	NS = "urn:xmpp:bookmarks:1"
	// NSCompat is the account feature of servers that keep XEP-0048
	// private storage and XEP-0402 in sync.
	NSCompat = NS + "#compat"
	// NSLegacy is the XEP-0048 storage namespace.
	NSLegacy = "storage:bookmarks"
	// NSPrivate is XEP-0049 private XML storage.
	NSPrivate = "jabber:iq:private"
)

// ErrMalformed is returned for bookmarks that cannot be read.
var ErrMalformed = errors.New("bookmarks: malformed bookmark")

// Conference is a bookmarked room.
type Conference struct {
	// JID is the room's bare JID (the item id in XEP-0402).
	JID      jid.JID
	Name     string
	Autojoin bool
	Nick     string
	Password string

	// extra are elements kept as they were read: <extensions/> (XEP-0402)
	// or unknown children (XEP-0048).
	extra [][]xml.Token
}

// parseBool reads an xs:boolean attribute.
func parseBool(s string) bool {
	s = strings.TrimSpace(s)
	return s == "true" || s == "1"
}

// parseConference reads the rest of <conference/> begun by start from d.
func parseConference(d *xml.Decoder, start xml.StartElement, room jid.JID) (Conference, error) {
	c := Conference{JID: room}
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "name":
			c.Name = a.Value
		case "autojoin":
			c.Autojoin = parseBool(a.Value)
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return Conference{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return c, nil
		case xml.StartElement:
			switch {
			case t.Name.Space == start.Name.Space && t.Name.Local == "nick":
				if err := d.DecodeElement(&c.Nick, &t); err != nil {
					return Conference{}, fmt.Errorf("%w: nick: %w", ErrMalformed, err)
				}
			case t.Name.Space == start.Name.Space && t.Name.Local == "password":
				if err := d.DecodeElement(&c.Password, &t); err != nil {
					return Conference{}, fmt.Errorf("%w: password: %w", ErrMalformed, err)
				}
			default:
				toks, err := xmltok.Capture(d, t)
				if err != nil {
					return Conference{}, fmt.Errorf("%w: %w", ErrMalformed, err)
				}
				c.extra = append(c.extra, toks)
			}
		}
	}
}

// elements returns the children of a <conference/> in namespace ns.
func (c Conference) elements(ns string) xml.TokenReader {
	var inner []xml.TokenReader
	if c.Nick != "" {
		inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(c.Nick)), xml.StartElement{Name: xml.Name{Space: ns, Local: "nick"}}))
	}
	if c.Password != "" {
		inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(c.Password)), xml.StartElement{Name: xml.Name{Space: ns, Local: "password"}}))
	}
	for _, e := range c.extra {
		inner = append(inner, xmltok.Replay(e))
	}
	return xmlstream.MultiReader(inner...)
}

func (c Conference) attrs() []xml.Attr {
	var attrs []xml.Attr
	if c.Name != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "name"}, Value: c.Name})
	}
	if c.Autojoin {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "autojoin"}, Value: "true"})
	}
	return attrs
}

// TokenReader returns the XEP-0402 payload: <conference
// xmlns='urn:xmpp:bookmarks:1'/>, to be published as item c.JID.
func (c Conference) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(c.elements(NS), xml.StartElement{Name: xml.Name{Space: NS, Local: "conference"}, Attr: c.attrs()})
}

// legacy returns the XEP-0048 <conference jid=…/> inside <storage/>.
func (c Conference) legacy() xml.TokenReader {
	attrs := append([]xml.Attr{{Name: xml.Name{Local: "jid"}, Value: c.JID.String()}}, c.attrs()...)
	return xmlstream.Wrap(c.elements(NSLegacy), xml.StartElement{Name: xml.Name{Space: NSLegacy, Local: "conference"}, Attr: attrs})
}

// ParseItem reads a XEP-0402 item: its id is the room's JID, its payload a
// <conference/>.
func ParseItem(item pubsub.Item) (Conference, error) {
	room, err := jid.Parse(item.ID)
	if err != nil || room.Localpart() == "" || room.Resourcepart() != "" {
		return Conference{}, fmt.Errorf("%w: item id %q is not a room JID", ErrMalformed, item.ID)
	}
	p := item.Payload()
	if p == nil {
		return Conference{}, fmt.Errorf("%w: item %q has no payload", ErrMalformed, item.ID)
	}
	d := xml.NewTokenDecoder(p)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return Conference{}, fmt.Errorf("%w: item %q holds no conference", ErrMalformed, item.ID)
		}
		if err != nil {
			return Conference{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			if s.Name.Space != NS || s.Name.Local != "conference" {
				return Conference{}, fmt.Errorf("%w: item %q holds <%s xmlns=%q/>", ErrMalformed, item.ID, s.Name.Local, s.Name.Space)
			}
			return parseConference(d, s, room)
		}
	}
}

// ParseItems reads the items of a fetch or notification; unreadable items
// are skipped and counted in the error returned next to the rest.
func ParseItems(items []pubsub.Item) ([]Conference, error) {
	var (
		out  []Conference
		errs []error
	)
	for _, it := range items {
		c, err := ParseItem(it)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// PublishOptions are the XEP-0402 node's required configuration: kept,
// private (whitelist: the owner only) and many items.
func PublishOptions() []pubsub.Field {
	return []pubsub.Field{
		pubsub.PersistItems(true),
		pubsub.MaxItemsMax(),
		{Var: "pubsub#send_last_published_item", Values: []string{"never"}},
		pubsub.AccessModel(pubsub.AccessWhitelist),
	}
}
