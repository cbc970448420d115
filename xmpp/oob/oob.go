package oob

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	moob "mellium.im/xmpp/oob"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of the XEP-0066 message element.
const NS = moob.NS

// ErrMissingURL is returned for an <x/> without a URL.
var ErrMissingURL = errors.New("oob: x without url")

// Data is the <x xmlns='jabber:x:oob'/> element.
type Data struct {
	URL  string
	Desc string
}

// TokenReader implements xmlstream.Marshaler with mellium's encoding of the
// same element.
func (d Data) TokenReader() xml.TokenReader {
	return moob.Data{URL: d.URL, Desc: d.Desc}.TokenReader()
}

// WriteXML implements xmlstream.WriterTo.
func (d Data) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, d.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (d Data) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if d.URL == "" {
		return ErrMissingURL
	}
	_, err := d.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (d *Data) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	var v struct {
		URL  string `xml:"url"`
		Desc string `xml:"desc"`
	}
	if err := dec.DecodeElement(&v, &start); err != nil {
		return err
	}
	if v.URL == "" {
		return ErrMissingURL
	}
	d.URL, d.Desc = v.URL, v.Desc
	return nil
}

// Parse reads a message stanza from r and returns its first out of band
// data, or ok=false if it has none.
func Parse(r xml.TokenReader) (d Data, ok bool, err error) {
	_, err = children.Each(r, func(dec *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || start.Name.Local != "x" {
			return false, nil
		}
		var x Data
		if err := dec.DecodeElement(&x, &start); err != nil {
			return true, err
		}
		if !ok {
			d, ok = x, true
		}
		return true, nil
	})
	if err != nil {
		return Data{}, false, fmt.Errorf("failed to read out of band data: %w", err)
	}
	return d, ok, nil
}
