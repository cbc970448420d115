package fallback

import (
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of XEP-0428.
const NS = "urn:xmpp:fallback:0"

// Errors for malformed fallbacks.
var (
	ErrMissingFor = errors.New("fallback: fallback without for attribute")
	ErrBadRange   = errors.New("fallback: bad range")
)

// Range is a range of code points of the body, End exclusive.
type Range struct {
	Start, End int
}

// Fallback is one <fallback/> element.
type Fallback struct {
	// For is the namespace of the extension the fallback text stands in for.
	For string
	// Body are ranges of the body that are fallback text. If Body and
	// Subject are both empty the whole body is fallback.
	Body []Range
	// Subject are ranges of the subject that are fallback text.
	Subject []Range
}

// Whole reports whether the whole body is fallback text.
func (f Fallback) Whole() bool {
	return len(f.Body) == 0 && len(f.Subject) == 0
}

// TokenReader implements xmlstream.Marshaler.
func (f Fallback) TokenReader() xml.TokenReader {
	var kids []xml.TokenReader
	add := func(local string, rs []Range) {
		for _, r := range rs {
			kids = append(kids, xmlstream.Wrap(nil, xml.StartElement{
				Name: xml.Name{Local: local},
				Attr: []xml.Attr{
					{Name: xml.Name{Local: "start"}, Value: strconv.Itoa(r.Start)},
					{Name: xml.Name{Local: "end"}, Value: strconv.Itoa(r.End)},
				},
			}))
		}
	}
	add("body", f.Body)
	add("subject", f.Subject)
	return xmlstream.Wrap(xmlstream.MultiReader(kids...), xml.StartElement{
		Name: xml.Name{Space: NS, Local: "fallback"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "for"}, Value: f.For}},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (f Fallback) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, f.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (f Fallback) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if f.For == "" {
		return ErrMissingFor
	}
	_, err := f.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler. A <body/> or <subject/> child
// without start and end covers the whole text; with only one of them, or
// with a non-numeric or negative value, it is an error.
func (f *Fallback) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v := Fallback{}
	v.For, _ = children.Attr(start, "for")
	if v.For == "" {
		return ErrMissingFor
	}
	whole := false
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("failed to read fallback: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if whole {
				// A range-less <body/> means the same as no children.
				v.Body, v.Subject = nil, nil
			}
			*f = v
			return nil
		case xml.StartElement:
			if t.Name.Space != NS || (t.Name.Local != "body" && t.Name.Local != "subject") {
				if err := d.Skip(); err != nil {
					return err
				}
				continue
			}
			r, all, err := parseRange(t)
			if err != nil {
				return err
			}
			switch {
			case all && t.Name.Local == "body":
				whole = true
			case all:
				// A whole subject is not something the bridge shows; ignore.
			case t.Name.Local == "body":
				v.Body = append(v.Body, r)
			default:
				v.Subject = append(v.Subject, r)
			}
			if err := d.Skip(); err != nil {
				return err
			}
		}
	}
}

func parseRange(start xml.StartElement) (Range, bool, error) {
	s, okS := children.Attr(start, "start")
	e, okE := children.Attr(start, "end")
	if !okS && !okE {
		return Range{}, true, nil
	}
	if !okS || !okE {
		return Range{}, false, fmt.Errorf("%w: %s needs both start and end", ErrBadRange, start.Name.Local)
	}
	a, err1 := strconv.Atoi(s)
	b, err2 := strconv.Atoi(e)
	if err1 != nil || err2 != nil || a < 0 || b < a {
		return Range{}, false, fmt.Errorf("%w: start=%q end=%q", ErrBadRange, s, e)
	}
	return Range{Start: a, End: b}, false, nil
}

// Parse reads a message stanza from r and returns its fallbacks.
func Parse(r xml.TokenReader) ([]Fallback, error) {
	var out []Fallback
	_, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || start.Name.Local != "fallback" {
			return false, nil
		}
		var f Fallback
		if err := d.DecodeElement(&f, &start); err != nil {
			return true, err
		}
		out = append(out, f)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read fallbacks: %w", err)
	}
	return out, nil
}

// Strip removes from body the fallback text of the fallbacks whose For is
// one of namespaces (the extensions the caller understands). It returns
// ErrBadRange if a range lies outside body or ranges overlap.
func Strip(body string, fallbacks []Fallback, namespaces ...string) (string, error) {
	var ranges []Range
	for _, f := range fallbacks {
		if !contains(namespaces, f.For) {
			continue
		}
		if f.Whole() {
			return "", nil
		}
		ranges = append(ranges, f.Body...)
	}
	if len(ranges) == 0 {
		return body, nil
	}
	runes := []rune(body)
	sort.Slice(ranges, func(a, b int) bool { return ranges[a].Start < ranges[b].Start })
	out := make([]rune, 0, len(runes))
	pos := 0
	for _, r := range ranges {
		if r.Start < pos || r.End > len(runes) || r.End < r.Start {
			return "", fmt.Errorf("%w: [%d,%d) in a body of %d characters", ErrBadRange, r.Start, r.End, len(runes))
		}
		out = append(out, runes[pos:r.Start]...)
		pos = r.End
	}
	out = append(out, runes[pos:]...)
	return string(out), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
