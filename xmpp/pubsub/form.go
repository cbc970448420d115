package pubsub

import (
	"encoding/xml"
	"fmt"
	"strconv"

	"mellium.im/xmlstream"
)

const nsData = "jabber:x:data"

// Access models for AccessModel.
const (
	AccessOpen       = "open"
	AccessPresence   = "presence"
	AccessRoster     = "roster"
	AccessAuthorize  = "authorize"
	AccessWhitelist  = "whitelist"
	fieldAccessModel = "pubsub#access_model"
	fieldMaxItems    = "pubsub#max_items"
	fieldPersist     = "pubsub#persist_items"
)

// Field is one field of a data form (XEP-0004): a var and its values.
// Labels, types and options are not kept; the bridge only submits and reads
// values.
type Field struct {
	Var    string
	Values []string
}

// AccessModel is the pubsub#access_model field (e.g. AccessOpen).
func AccessModel(model string) Field {
	return Field{Var: fieldAccessModel, Values: []string{model}}
}

// MaxItems is the pubsub#max_items field with a number.
func MaxItems(n int) Field {
	return Field{Var: fieldMaxItems, Values: []string{strconv.Itoa(n)}}
}

// MaxItemsMax is the pubsub#max_items field with the keyword "max": as many
// items as the service allows (XEP-0060 feature config-node-max; Prosody
// since 0.12). OMEMO 2 clients publish their bundles with it, and publish-
// options must match the node's configuration exactly.
func MaxItemsMax() Field {
	return Field{Var: fieldMaxItems, Values: []string{"max"}}
}

// PersistItems is the pubsub#persist_items field.
func PersistItems(persist bool) Field {
	return Field{Var: fieldPersist, Values: []string{strconv.FormatBool(persist)}}
}

// Form is a data form reduced to its FORM_TYPE and field values.
type Form struct {
	// Type is the form type: "form", "submit", "result" or "cancel".
	Type string
	// FormType is the value of the hidden FORM_TYPE field.
	FormType string
	Fields   []Field
}

// Get returns the first value of the field var, if present.
func (f Form) Get(v string) (string, bool) {
	for _, field := range f.Fields {
		if field.Var == v {
			if len(field.Values) == 0 {
				return "", true
			}
			return field.Values[0], true
		}
	}
	return "", false
}

// TokenReader implements xmlstream.Marshaler.
func (f Form) TokenReader() xml.TokenReader {
	typ := f.Type
	if typ == "" {
		typ = "submit"
	}
	var fields []xml.TokenReader
	if f.FormType != "" {
		fields = append(fields, field("FORM_TYPE", "hidden", []string{f.FormType}))
	}
	for _, fl := range f.Fields {
		fields = append(fields, field(fl.Var, "", fl.Values))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(fields...), xml.StartElement{
		Name: xml.Name{Space: nsData, Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: typ}},
	})
}

func field(v, typ string, values []string) xml.TokenReader {
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

// WriteXML implements xmlstream.WriterTo.
func (f Form) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, f.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (f Form) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	_, err := f.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (f *Form) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if start.Name.Space != nsData || start.Name.Local != "x" {
		return fmt.Errorf("%w: expected a jabber:x:data form, got <%s xmlns=%q/>", ErrMalformed, start.Name.Local, start.Name.Space)
	}
	var raw struct {
		Type   string `xml:"type,attr"`
		Fields []struct {
			Var    string   `xml:"var,attr"`
			Values []string `xml:"jabber:x:data value"`
		} `xml:"jabber:x:data field"`
	}
	if err := d.DecodeElement(&raw, &start); err != nil {
		return fmt.Errorf("%w: bad data form: %w", ErrMalformed, err)
	}
	*f = Form{Type: raw.Type}
	for _, fl := range raw.Fields {
		if fl.Var == "FORM_TYPE" {
			if len(fl.Values) > 0 {
				f.FormType = fl.Values[0]
			}
			continue
		}
		f.Fields = append(f.Fields, Field{Var: fl.Var, Values: fl.Values})
	}
	return nil
}
