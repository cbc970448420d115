package vcardphoto

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqresp"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqwait"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Namespaces of XEP-0054 and XEP-0153.
const (
	NS       = "vcard-temp"
	NSUpdate = "vcard-temp:x:update"
)

// ErrMalformed is returned for vCards and updates that cannot be read.
var ErrMalformed = errors.New("vcardphoto: malformed vCard")

// Photo is a vCard's PHOTO. A zero Photo means the vCard has none.
type Photo struct {
	// Type is the MIME type the vCard names ("" if it names none).
	Type string
	// Data is the image.
	Data []byte
}

// ID is the XEP-0153 hash of the photo: the SHA-1 of the image, as for
// XEP-0084 ids.
func (p Photo) ID() string {
	return avatar.ID(p.Data)
}

// GetIQ returns the IQ get for the vCard of to (a bare JID).
func GetIQ(to jid.JID) xml.TokenReader {
	return stanza.IQ{Type: stanza.GetIQ, To: to}.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NS, Local: "vCard"}}))
}

// SetIQ returns the IQ set that replaces the account's own vCard with one
// holding only p (for tests and demos: it drops every other field).
func SetIQ(p Photo) xml.TokenReader {
	var inner xml.TokenReader
	if len(p.Data) > 0 {
		inner = xmlstream.Wrap(xmlstream.MultiReader(
			xmlstream.Wrap(xmlstream.Token(xml.CharData(p.Type)), xml.StartElement{Name: xml.Name{Local: "TYPE"}}),
			xmlstream.Wrap(xmlstream.Token(xml.CharData(base64.StdEncoding.EncodeToString(p.Data))), xml.StartElement{Name: xml.Name{Local: "BINVAL"}}),
		), xml.StartElement{Name: xml.Name{Local: "PHOTO"}})
	}
	return stanza.IQ{Type: stanza.SetIQ}.Wrap(
		xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Space: NS, Local: "vCard"}}))
}

type rawVCard struct {
	Photo *struct {
		Type   string `xml:"TYPE"`
		BinVal string `xml:"BINVAL"`
		ExtVal string `xml:"EXTVAL"`
	} `xml:"PHOTO"`
}

// Parse reads the response to GetIQ. A vCard without a photo, an empty
// result and item-not-found (no vCard stored) give a zero Photo; other
// error responses are returned as stanza.Error. An EXTVAL photo (a URL) is
// treated as none: the bridge does not fetch arbitrary URLs.
func Parse(r xml.TokenReader) (Photo, error) {
	kids, err := iqresp.Read(r, nil)
	var se stanza.Error
	if errors.As(err, &se) && se.Condition == stanza.ItemNotFound {
		return Photo{}, nil
	}
	if err != nil {
		return Photo{}, err
	}
	for _, k := range kids {
		s := k[0].(xml.StartElement)
		if s.Name.Space != NS || s.Name.Local != "vCard" {
			continue
		}
		var v rawVCard
		if err := xml.NewTokenDecoder(xmltok.Replay(k)).Decode(&v); err != nil {
			return Photo{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if v.Photo == nil || strings.TrimSpace(v.Photo.BinVal) == "" {
			return Photo{}, nil
		}
		data, err := avatar.DecodeImage(v.Photo.BinVal, "")
		if err != nil {
			return Photo{}, fmt.Errorf("failed to read vCard photo: %w", err)
		}
		return Photo{Type: strings.TrimSpace(v.Photo.Type), Data: data}, nil
	}
	return Photo{}, nil
}

// Fetch sends GetIQ on s and parses the result.
func Fetch(ctx context.Context, s *xmpp.Session, to jid.JID) (Photo, error) {
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	resp, err := s.SendIQ(ctx, GetIQ(to.Bare()))
	if err != nil {
		return Photo{}, fmt.Errorf("failed to fetch vCard of %s: %w", to, err)
	}
	defer resp.Close()
	p, err := Parse(resp)
	if err != nil {
		return Photo{}, fmt.Errorf("failed to fetch vCard of %s: %w", to, err)
	}
	return p, nil
}

// Update is the XEP-0153 element of a presence.
type Update struct {
	// Ready is false for <x/> without <photo/>: the client has not read its
	// own vCard yet and says nothing about the photo.
	Ready bool
	// Hash is the SHA-1 (hex, lower case) of the photo, "" for none.
	Hash string
}

// ParseUpdate reads a presence stanza from r and returns its update
// element; ok is false when there is none.
func ParseUpdate(r xml.TokenReader) (u Update, ok bool, err error) {
	_, err = children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NSUpdate || start.Name.Local != "x" || ok {
			return false, nil
		}
		ok = true
		var raw struct {
			Photo *string `xml:"photo"`
		}
		if err := d.DecodeElement(&raw, &start); err != nil {
			return true, fmt.Errorf("%w: bad update: %w", ErrMalformed, err)
		}
		if raw.Photo != nil {
			u.Ready = true
			u.Hash = strings.ToLower(strings.TrimSpace(*raw.Photo))
		}
		return true, nil
	})
	if err != nil {
		return Update{}, false, err
	}
	return u, ok, nil
}

// UpdateElement returns the <x/> to put in a presence announcing hash
// ("" for no photo).
func UpdateElement(hash string) xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(hash)), xml.StartElement{Name: xml.Name{Local: "photo"}}),
		xml.StartElement{Name: xml.Name{Space: NSUpdate, Local: "x"}},
	)
}
