package avatar

import (
	"crypto/sha1" // #nosec G505 -- XEP-0084 names images by their SHA-1.
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// Namespaces (and PEP node names) of XEP-0084.
const (
	NSData     = "urn:xmpp:avatar:data"
	NSMetadata = "urn:xmpp:avatar:metadata"
)

// MaxSize is the largest image the bridge accepts (decoded bytes).
const MaxSize = 1 << 20

// Errors returned by the parsers; compare with errors.Is.
var (
	ErrMalformed    = errors.New("avatar: malformed avatar element")
	ErrTooLarge     = errors.New("avatar: image larger than 1 MiB")
	ErrHashMismatch = errors.New("avatar: image does not match its SHA-1 id")
)

// ID is the XEP-0084 id of data: its SHA-1 in lower-case hex.
func ID(data []byte) string {
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}

// Info describes one published version of the avatar.
type Info struct {
	// ID is the SHA-1 (hex) of the image, also the data item's id.
	ID string
	// Type is the MIME type (image/png is the one every client must offer).
	Type string
	// Bytes is the advertised size of the image.
	Bytes int
	// Width and Height are in pixels, 0 when not given.
	Width, Height int
	// URL is set for images hosted outside the data node; the bridge does
	// not fetch those.
	URL string
}

// Metadata is the payload of a metadata item. No Infos means the contact
// disabled their avatar.
type Metadata struct {
	Infos []Info
}

// InData returns the first info whose image is in the data node (no URL),
// which is the one to fetch.
func (m Metadata) InData() (Info, bool) {
	for _, i := range m.Infos {
		if i.URL == "" {
			return i, true
		}
	}
	return Info{}, false
}

// TokenReader implements xmlstream.Marshaler.
func (m Metadata) TokenReader() xml.TokenReader {
	var infos []xml.TokenReader
	for _, i := range m.Infos {
		attrs := []xml.Attr{
			{Name: xml.Name{Local: "id"}, Value: i.ID},
			{Name: xml.Name{Local: "type"}, Value: i.Type},
			{Name: xml.Name{Local: "bytes"}, Value: strconv.Itoa(i.Bytes)},
		}
		if i.Width > 0 {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "width"}, Value: strconv.Itoa(i.Width)})
		}
		if i.Height > 0 {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "height"}, Value: strconv.Itoa(i.Height)})
		}
		if i.URL != "" {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "url"}, Value: i.URL})
		}
		infos = append(infos, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "info"}, Attr: attrs}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(infos...), xml.StartElement{Name: xml.Name{Space: NSMetadata, Local: "metadata"}})
}

// MarshalXML implements xml.Marshaler.
func (m Metadata) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	_, err := xmlstream.Copy(e, m.TokenReader())
	return err
}

type rawInfo struct {
	ID     string `xml:"id,attr"`
	Type   string `xml:"type,attr"`
	Bytes  string `xml:"bytes,attr"`
	Width  string `xml:"width,attr"`
	Height string `xml:"height,attr"`
	URL    string `xml:"url,attr"`
}

// UnmarshalXML implements xml.Unmarshaler. Unknown children (such as
// <pointer/>) are ignored.
func (m *Metadata) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if start.Name.Space != NSMetadata || start.Name.Local != "metadata" {
		return fmt.Errorf("%w: <%s xmlns=%q/> is not metadata", ErrMalformed, start.Name.Local, start.Name.Space)
	}
	var raw struct {
		Infos []rawInfo `xml:"info"`
	}
	if err := d.DecodeElement(&raw, &start); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	out := Metadata{}
	for _, r := range raw.Infos {
		i := Info{ID: strings.ToLower(r.ID), Type: r.Type, URL: r.URL}
		if !isSHA1(i.ID) {
			return fmt.Errorf("%w: info id %q is not a SHA-1", ErrMalformed, r.ID)
		}
		var err error
		if i.Bytes, err = strconv.Atoi(r.Bytes); err != nil || i.Bytes < 0 {
			return fmt.Errorf("%w: info bytes %q", ErrMalformed, r.Bytes)
		}
		// Dimensions are advisory; a broken one is dropped, not fatal.
		i.Width, _ = strconv.Atoi(r.Width)
		i.Height, _ = strconv.Atoi(r.Height)
		out.Infos = append(out.Infos, i)
	}
	*m = out
	return nil
}

func isSHA1(s string) bool {
	if len(s) != 2*sha1.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// ParseMetadata reads a metadata item.
func ParseMetadata(item pubsub.Item) (Metadata, error) {
	var m Metadata
	if !item.HasPayload() {
		return m, fmt.Errorf("%w: metadata item %q has no payload", ErrMalformed, item.ID)
	}
	if err := item.Decode(&m); err != nil {
		return Metadata{}, err
	}
	return m, nil
}

// Data returns the payload of a data item holding image.
func Data(image []byte) xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Token(xml.CharData(base64.StdEncoding.EncodeToString(image))),
		xml.StartElement{Name: xml.Name{Space: NSData, Local: "data"}},
	)
}

// ParseData reads a data item and returns the image if it is id (the SHA-1
// from the metadata) and at most MaxSize bytes.
func ParseData(item pubsub.Item, id string) ([]byte, error) {
	var raw struct {
		XMLName xml.Name `xml:"urn:xmpp:avatar:data data"`
		Text    string   `xml:",chardata"`
	}
	if !item.HasPayload() {
		return nil, fmt.Errorf("%w: data item %q has no payload", ErrMalformed, item.ID)
	}
	if err := item.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return DecodeImage(raw.Text, id)
}

// DecodeImage decodes base64 text (whitespace allowed, as XEP-0153 vCards
// wrap lines) of an image whose SHA-1 must be id ("" skips the check), and
// refuses images over MaxSize. The vCard photo package shares it.
func DecodeImage(text, id string) ([]byte, error) {
	text = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, text)
	if base64.StdEncoding.DecodedLen(len(text)) > MaxSize+2 {
		return nil, fmt.Errorf("%w (%d bytes of base64)", ErrTooLarge, len(text))
	}
	data, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64: %w", ErrMalformed, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(data))
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty image", ErrMalformed)
	}
	if id != "" && !strings.EqualFold(ID(data), id) {
		return nil, fmt.Errorf("%w: got %s, want %s", ErrHashMismatch, ID(data), id)
	}
	return data, nil
}
