package eme

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of XEP-0380.
const NS = "urn:xmpp:eme:0"

// Encryption namespaces listed in XEP-0380 §4.
const (
	OTR           = "urn:xmpp:otr:0"
	LegacyOpenPGP = "jabber:x:encrypted"
	OpenPGP       = "urn:xmpp:openpgp:0"
	OMEMO         = "eu.siacs.conversations.axolotl"
	OMEMO1        = "urn:xmpp:omemo:1"
	OMEMO2        = "urn:xmpp:omemo:2"
)

var names = map[string]string{
	OTR:           "OTR",
	LegacyOpenPGP: "Legacy OpenPGP",
	OpenPGP:       "OpenPGP for XMPP",
	OMEMO:         "OMEMO",
	OMEMO1:        "OMEMO 1",
	OMEMO2:        "OMEMO 2",
}

// ErrMissingNamespace is returned for an <encryption/> without namespace.
var ErrMissingNamespace = errors.New("eme: encryption without namespace")

// Encryption is the <encryption/> element.
type Encryption struct {
	Namespace string
	// Name is optional; XEP-0380 says to send it only for namespaces not
	// in its list.
	Name string
}

// DisplayName returns a human-readable name for the encryption: the one
// XEP-0380 lists for known namespaces, else Name, else the namespace.
func (e Encryption) DisplayName() string {
	if n, ok := names[e.Namespace]; ok {
		return n
	}
	if e.Name != "" {
		return e.Name
	}
	return e.Namespace
}

// TokenReader implements xmlstream.Marshaler.
func (e Encryption) TokenReader() xml.TokenReader {
	attrs := []xml.Attr{{Name: xml.Name{Local: "namespace"}, Value: e.Namespace}}
	if e.Name != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "name"}, Value: e.Name})
	}
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NS, Local: "encryption"}, Attr: attrs})
}

// WriteXML implements xmlstream.WriterTo.
func (e Encryption) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, e.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (e Encryption) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	if e.Namespace == "" {
		return ErrMissingNamespace
	}
	_, err := e.WriteXML(enc)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (e *Encryption) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	ns, _ := children.Attr(start, "namespace")
	if ns == "" {
		return ErrMissingNamespace
	}
	name, _ := children.Attr(start, "name")
	*e = Encryption{Namespace: ns, Name: name}
	return d.Skip()
}

// Parse reads a message stanza from r and returns its <encryption/>, or
// ok=false if it has none.
func Parse(r xml.TokenReader) (e Encryption, ok bool, err error) {
	_, err = children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || start.Name.Local != "encryption" || ok {
			return false, nil
		}
		ok = true
		return true, d.DecodeElement(&e, &start)
	})
	if err != nil {
		return Encryption{}, false, fmt.Errorf("failed to read encryption: %w", err)
	}
	return e, ok, nil
}
