package bookmarks

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqresp"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqwait"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Fetch returns the account's XEP-0402 bookmarks. A node that does not
// exist yet is no bookmarks, not an error.
func Fetch(ctx context.Context, s *xmpp.Session) ([]Conference, error) {
	items, err := pubsub.Items(ctx, s, jid.JID{}, NS, 0)
	if errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to fetch bookmarks: %w", err)
	}
	return ParseItems(items)
}

// Publish stores c as a XEP-0402 bookmark (item id c.JID), with the node
// configuration the XEP asks for. Servers that refuse a field in
// publish-options (ejabberd 23.01 refuses pubsub#max_items, "Unknown
// field") get the publish again with fewer options: the item matters more
// than the node's item limit.
func Publish(ctx context.Context, s *xmpp.Session, c Conference) error {
	opts := PublishOptions()
	publish := func(opts []pubsub.Field) error {
		_, err := pubsub.PublishReconfigure(ctx, s, NS, c.JID.Bare().String(), c.TokenReader(), opts...)
		return err
	}
	err := publish(opts)
	var refused *pubsub.Error
	if err != nil && errors.As(err, &refused) && !errors.Is(err, pubsub.ErrPreconditionNotMet) {
		withoutMax := slices.DeleteFunc(slices.Clone(opts), func(f pubsub.Field) bool { return f.Var == "pubsub#max_items" })
		if err = publish(withoutMax); err != nil && errors.As(err, &refused) && !errors.Is(err, pubsub.ErrPreconditionNotMet) {
			err = publish([]pubsub.Field{pubsub.AccessModel(pubsub.AccessWhitelist)})
		}
	}
	if err != nil {
		return fmt.Errorf("failed to publish bookmark of %s: %w", c.JID, err)
	}
	return nil
}

// Retract removes the XEP-0402 bookmark of room.
func Retract(ctx context.Context, s *xmpp.Session, room jid.JID) error {
	if err := pubsub.Retract(ctx, s, jid.JID{}, NS, room.Bare().String(), true); err != nil {
		return fmt.Errorf("failed to retract bookmark of %s: %w", room, err)
	}
	return nil
}

// Storage is the XEP-0048 <storage/> element: conferences, and the rest
// (<url/> bookmarks, unknown elements) kept as read.
type Storage struct {
	Conferences []Conference
	other       [][]xml.Token
}

// Get returns the bookmark of room.
func (st *Storage) Get(room jid.JID) (Conference, bool) {
	i := slices.IndexFunc(st.Conferences, func(c Conference) bool { return c.JID.Equal(room.Bare()) })
	if i < 0 {
		return Conference{}, false
	}
	return st.Conferences[i], true
}

// Set adds or replaces the bookmark of c.JID.
func (st *Storage) Set(c Conference) {
	i := slices.IndexFunc(st.Conferences, func(o Conference) bool { return o.JID.Equal(c.JID) })
	if i < 0 {
		st.Conferences = append(st.Conferences, c)
		return
	}
	st.Conferences[i] = c
}

// TokenReader returns the <storage xmlns='storage:bookmarks'/> element.
func (st *Storage) TokenReader() xml.TokenReader {
	var inner []xml.TokenReader
	for _, c := range st.Conferences {
		inner = append(inner, c.legacy())
	}
	for _, o := range st.other {
		inner = append(inner, xmltok.Replay(o))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{Name: xml.Name{Space: NSLegacy, Local: "storage"}})
}

// ParseStorage reads a <storage xmlns='storage:bookmarks'/> element from r.
// Conferences without a usable room JID are kept as unknown elements.
func ParseStorage(r xml.TokenReader) (Storage, error) {
	var st Storage
	d := xml.NewTokenDecoder(r)
	var root *xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			return Storage{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root == nil {
				if t.Name.Space != NSLegacy || t.Name.Local != "storage" {
					return Storage{}, fmt.Errorf("%w: <%s xmlns=%q/> is not XEP-0048 storage", ErrMalformed, t.Name.Local, t.Name.Space)
				}
				root = &t
				continue
			}
			room, err := jid.Parse(attr(t, "jid"))
			if t.Name.Space == NSLegacy && t.Name.Local == "conference" && err == nil && room.Localpart() != "" {
				c, err := parseConference(d, t, room.Bare())
				if err != nil {
					return Storage{}, err
				}
				st.Conferences = append(st.Conferences, c)
				continue
			}
			toks, err := xmltok.Capture(d, t)
			if err != nil {
				return Storage{}, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			st.other = append(st.other, toks)
		case xml.EndElement:
			return st, nil
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

func privateIQ(typ stanza.IQType, payload xml.TokenReader) xml.TokenReader {
	return stanza.IQ{Type: typ}.Wrap(xmlstream.Wrap(payload, xml.StartElement{Name: xml.Name{Space: NSPrivate, Local: "query"}}))
}

// FetchLegacyIQ asks private XML storage for the XEP-0048 bookmarks.
func FetchLegacyIQ() xml.TokenReader {
	return privateIQ(stanza.GetIQ, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSLegacy, Local: "storage"}}))
}

// ParseLegacyResult reads the answer to FetchLegacyIQ.
func ParseLegacyResult(r xml.TokenReader) (Storage, error) {
	kids, err := iqresp.Read(r, nil)
	if err != nil {
		return Storage{}, err
	}
	for _, k := range kids {
		s, _ := k[0].(xml.StartElement)
		if s.Name.Space != NSPrivate || s.Name.Local != "query" {
			continue
		}
		// The query's children: the storage element, if any.
		d := xml.NewTokenDecoder(xmltok.Replay(k))
		if _, err := d.Token(); err != nil {
			return Storage{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		for {
			tok, err := d.Token()
			if err != nil {
				return Storage{}, nil
			}
			if st, ok := tok.(xml.StartElement); ok {
				toks, err := xmltok.Capture(d, st)
				if err != nil {
					return Storage{}, fmt.Errorf("%w: %w", ErrMalformed, err)
				}
				return ParseStorage(xmltok.Replay(toks))
			}
		}
	}
	return Storage{}, nil
}

// FetchLegacy returns the account's XEP-0048 bookmarks from private XML
// storage (empty storage when there are none).
func FetchLegacy(ctx context.Context, s *xmpp.Session) (Storage, error) {
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	resp, err := s.SendIQ(ctx, FetchLegacyIQ())
	if err != nil {
		return Storage{}, fmt.Errorf("failed to fetch XEP-0048 bookmarks: %w", err)
	}
	defer resp.Close()
	st, err := ParseLegacyResult(resp)
	if err != nil {
		return Storage{}, fmt.Errorf("failed to fetch XEP-0048 bookmarks: %w", err)
	}
	return st, nil
}

// StoreLegacyIQ replaces the XEP-0048 bookmarks with st.
func StoreLegacyIQ(st *Storage) xml.TokenReader {
	return privateIQ(stanza.SetIQ, st.TokenReader())
}

// StoreLegacy replaces the account's XEP-0048 bookmarks with st. Callers
// read, change and store, so that other clients' bookmarks stay.
func StoreLegacy(ctx context.Context, s *xmpp.Session, st *Storage) error {
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	resp, err := s.SendIQ(ctx, StoreLegacyIQ(st))
	if err != nil {
		return fmt.Errorf("failed to store XEP-0048 bookmarks: %w", err)
	}
	defer resp.Close()
	if _, err := iqresp.Read(resp, nil); err != nil {
		return fmt.Errorf("failed to store XEP-0048 bookmarks: %w", err)
	}
	return nil
}
