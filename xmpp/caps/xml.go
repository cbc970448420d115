package caps

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
)

// ErrMalformed is returned for malformed <c/> or disco#info elements.
var ErrMalformed = errors.New("caps: malformed element")

// Caps is the <c xmlns='http://jabber.org/protocol/caps'/> element of a
// presence.
type Caps struct {
	Hash string // "sha-1"
	Node string // the software's URI, e.g. "https://github.com/mxomemo/xmpp-bridge"
	Ver  string
}

// Caps returns the <c/> element advertising i under node.
func (i Info) Caps(node string) (Caps, error) {
	ver, err := i.Ver()
	if err != nil {
		return Caps{}, err
	}
	return Caps{Hash: "sha-1", Node: node, Ver: ver}, nil
}

// TokenReader implements xmlstream.Marshaler.
func (c Caps) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NS, Local: "c"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "hash"}, Value: c.Hash},
			{Name: xml.Name{Local: "node"}, Value: c.Node},
			{Name: xml.Name{Local: "ver"}, Value: c.Ver},
		},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (c Caps) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, c.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (c Caps) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	_, err := c.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler. hash, node and ver are required
// (XEP-0115 §4). The legacy format without hash is rejected: its ver is not
// a hash and cannot be verified.
func (c *Caps) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var v Caps
	for _, a := range start.Attr {
		switch a.Name {
		case xml.Name{Local: "hash"}:
			v.Hash = a.Value
		case xml.Name{Local: "node"}:
			v.Node = a.Value
		case xml.Name{Local: "ver"}:
			v.Ver = a.Value
		}
	}
	if v.Hash == "" || v.Node == "" || v.Ver == "" {
		return fmt.Errorf("%w: <c/> needs hash, node and ver", ErrMalformed)
	}
	*c = v
	return d.Skip()
}

// query returns the disco#info <query/> for i, with node if not empty.
func (i Info) query(node string) xml.TokenReader {
	var kids []xml.TokenReader
	for _, id := range i.Identities {
		attrs := []xml.Attr{
			{Name: xml.Name{Local: "category"}, Value: id.Category},
			{Name: xml.Name{Local: "type"}, Value: id.Type},
		}
		if id.Name != "" {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "name"}, Value: id.Name})
		}
		if id.Lang != "" {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Space: "http://www.w3.org/XML/1998/namespace", Local: "lang"}, Value: id.Lang})
		}
		kids = append(kids, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "identity"}, Attr: attrs}))
	}
	for _, f := range i.Features {
		kids = append(kids, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Local: "feature"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "var"}, Value: f}},
		}))
	}
	for _, form := range i.Forms {
		kids = append(kids, form.tokenReader())
	}
	start := xml.StartElement{Name: xml.Name{Space: NSInfo, Local: "query"}}
	if node != "" {
		start.Attr = []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}
	}
	return xmlstream.Wrap(xmlstream.MultiReader(kids...), start)
}

// TokenReader implements xmlstream.Marshaler: a disco#info <query/>
// without node.
func (i Info) TokenReader() xml.TokenReader {
	return i.query("")
}

func (f Form) tokenReader() xml.TokenReader {
	field := func(v, typ string, values []string) xml.TokenReader {
		start := xml.StartElement{Name: xml.Name{Local: "field"}, Attr: []xml.Attr{{Name: xml.Name{Local: "var"}, Value: v}}}
		if typ != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: typ})
		}
		var vals []xml.TokenReader
		for _, val := range values {
			vals = append(vals, xmlstream.Wrap(xmlstream.Token(xml.CharData(val)), xml.StartElement{Name: xml.Name{Local: "value"}}))
		}
		return xmlstream.Wrap(xmlstream.MultiReader(vals...), start)
	}
	fields := []xml.TokenReader{field("FORM_TYPE", "hidden", []string{f.FormType})}
	for _, fl := range f.Fields {
		fields = append(fields, field(fl.Var, "", fl.Values))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(fields...), xml.StartElement{
		Name: xml.Name{Space: nsData, Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "result"}},
	})
}

// MarshalXML implements xml.Marshaler.
func (i Info) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	_, err := xmlstream.Copy(e, i.TokenReader())
	return err
}

// UnmarshalXML implements xml.Unmarshaler for a disco#info <query/>.
// Forms without a hidden FORM_TYPE are ignored, as XEP-0115 §5.4 says.
func (i *Info) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if start.Name.Space != NSInfo || start.Name.Local != "query" {
		return fmt.Errorf("%w: expected disco#info query, got <%s xmlns=%q/>", ErrMalformed, start.Name.Local, start.Name.Space)
	}
	var raw struct {
		Identities []struct {
			Category string `xml:"category,attr"`
			Type     string `xml:"type,attr"`
			Name     string `xml:"name,attr"`
			Lang     string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
		} `xml:"http://jabber.org/protocol/disco#info identity"`
		Features []struct {
			Var string `xml:"var,attr"`
		} `xml:"http://jabber.org/protocol/disco#info feature"`
		Forms []struct {
			Fields []struct {
				Var    string   `xml:"var,attr"`
				Type   string   `xml:"type,attr"`
				Values []string `xml:"jabber:x:data value"`
			} `xml:"jabber:x:data field"`
		} `xml:"jabber:x:data x"`
	}
	if err := d.DecodeElement(&raw, &start); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var v Info
	for _, id := range raw.Identities {
		if id.Category == "" || id.Type == "" {
			return fmt.Errorf("%w: identity without category or type", ErrMalformed)
		}
		v.Identities = append(v.Identities, Identity{Category: id.Category, Type: id.Type, Lang: id.Lang, Name: id.Name})
	}
	for _, f := range raw.Features {
		if f.Var == "" {
			return fmt.Errorf("%w: feature without var", ErrMalformed)
		}
		v.Features = append(v.Features, f.Var)
	}
	for _, rf := range raw.Forms {
		var (
			form   Form
			typeOK bool
		)
		for _, f := range rf.Fields {
			if f.Var == "FORM_TYPE" {
				if len(f.Values) > 1 {
					return fmt.Errorf("%w: FORM_TYPE with several values", ErrMalformed)
				}
				if f.Type == "hidden" && len(f.Values) == 1 {
					form.FormType, typeOK = f.Values[0], true
				}
				continue
			}
			form.Fields = append(form.Fields, Field{Var: f.Var, Values: f.Values})
		}
		if typeOK {
			v.Forms = append(v.Forms, form)
		}
	}
	*i = v
	return nil
}
