package httpupload

import (
	"encoding/xml"
	"errors"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/upload"
)

// NS is the namespace of XEP-0363 (also the disco#info feature and the
// FORM_TYPE of the service's limits).
const NS = "urn:xmpp:http:upload:0"

// Errors of slot requests and responses.
var (
	ErrBadRequest = errors.New("httpupload: request needs a filename and a positive size")
	ErrBadSlot    = errors.New("httpupload: slot without https put and get URLs")
	ErrNoService  = errors.New("httpupload: the server offers no HTTP File Upload service")
	ErrTooLarge   = errors.New("httpupload: file is larger than the upload service accepts")
)

// Request is the <request/> for a slot.
type Request struct {
	Filename    string
	Size        int64
	ContentType string
}

// TokenReader implements xmlstream.Marshaler with mellium's encoding of the
// same element (sizes beyond int are not a concern on 64-bit platforms).
func (r Request) TokenReader() xml.TokenReader {
	return upload.File{Name: r.Filename, Size: int(r.Size), Type: r.ContentType}.TokenReader()
}

// WriteXML implements xmlstream.WriterTo.
func (r Request) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Request) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if r.Filename == "" || r.Size <= 0 {
		return ErrBadRequest
	}
	_, err := r.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (r *Request) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var v struct {
		Filename    string `xml:"filename,attr"`
		Size        int64  `xml:"size,attr"`
		ContentType string `xml:"content-type,attr"`
	}
	if err := d.DecodeElement(&v, &start); err != nil {
		return err
	}
	if v.Filename == "" || v.Size <= 0 {
		return ErrBadRequest
	}
	*r = Request{Filename: v.Filename, Size: v.Size, ContentType: v.ContentType}
	return nil
}

// Header is one header the service wants on the PUT.
type Header struct {
	Name  string
	Value string
}

// Slot is the service's <slot/>: where to PUT the file and where it can be
// fetched from afterwards.
type Slot struct {
	PutURL  string
	Headers []Header
	GetURL  string
}

// allowedHeader reports whether a slot header may be sent (§5: anything
// else must be stripped).
func allowedHeader(name string) bool {
	switch name {
	case "Authorization", "Cookie", "Expires":
		return true
	}
	return false
}

// TokenReader implements xmlstream.Marshaler.
func (s Slot) TokenReader() xml.TokenReader {
	var headers []xml.TokenReader
	for _, h := range s.Headers {
		headers = append(headers, xmlstream.Wrap(xmlstream.Token(xml.CharData(h.Value)), xml.StartElement{
			Name: xml.Name{Local: "header"}, Attr: []xml.Attr{{Name: xml.Name{Local: "name"}, Value: h.Name}},
		}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.MultiReader(headers...), xml.StartElement{
			Name: xml.Name{Local: "put"}, Attr: []xml.Attr{{Name: xml.Name{Local: "url"}, Value: s.PutURL}},
		}),
		xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Local: "get"}, Attr: []xml.Attr{{Name: xml.Name{Local: "url"}, Value: s.GetURL}},
		}),
	), xml.StartElement{Name: xml.Name{Space: NS, Local: "slot"}})
}

// WriteXML implements xmlstream.WriterTo.
func (s Slot) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, s.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (s Slot) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if err := s.validate(); err != nil {
		return err
	}
	_, err := s.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler. Headers other than
// Authorization, Cookie and Expires, and line breaks in header values, are
// dropped as §5 requires.
func (s *Slot) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var v struct {
		Put struct {
			URL     string `xml:"url,attr"`
			Headers []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:",chardata"`
			} `xml:"header"`
		} `xml:"put"`
		Get struct {
			URL string `xml:"url,attr"`
		} `xml:"get"`
	}
	if err := d.DecodeElement(&v, &start); err != nil {
		return err
	}
	out := Slot{PutURL: v.Put.URL, GetURL: v.Get.URL}
	for _, h := range v.Put.Headers {
		if !allowedHeader(h.Name) || containsNewline(h.Value) {
			continue
		}
		out.Headers = append(out.Headers, Header{Name: h.Name, Value: h.Value})
	}
	if err := out.validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

func containsNewline(s string) bool {
	for _, r := range s {
		if r == '\n' || r == '\r' {
			return true
		}
	}
	return false
}

func (s Slot) validate() error {
	if !isHTTPS(s.PutURL) || !isHTTPS(s.GetURL) {
		return ErrBadSlot
	}
	return nil
}
