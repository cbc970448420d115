package sm

import (
	"encoding/xml"
	"fmt"
	"strconv"

	"mellium.im/xmlstream"
)

// NS is the XEP-0198 namespace (version 3).
const NS = "urn:xmpp:sm:3"

// nsStanzas is the namespace of the error condition inside <failed/>.
const nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// Enable asks the server to enable stream management (client to server).
type Enable struct {
	Resume bool
	// Max is the preferred resumption time in seconds; 0 leaves it to the
	// server.
	Max int
}

// Enabled is the server's answer to Enable.
type Enabled struct {
	ID       string
	Resume   bool
	Max      int
	Location string
}

// Resume asks to resume the stream PrevID, having handled H stanzas of it.
type Resume struct {
	PrevID string
	H      uint32
}

// Resumed is the server's answer to a successful Resume: it has handled H
// of our stanzas.
type Resumed struct {
	PrevID string
	H      uint32
}

// Failed is the server's refusal of Enable or Resume. HasH says whether it
// told how many of our stanzas it handled (servers may for a Resume).
type Failed struct {
	H         uint32
	HasH      bool
	Condition string
}

// Req asks the peer for an acknowledgement (<r/>).
type Req struct{}

// Ack acknowledges H handled stanzas (<a h/>).
type Ack struct {
	H uint32
}

func start(local string, attrs ...xml.Attr) xml.StartElement {
	return xml.StartElement{Name: xml.Name{Space: NS, Local: local}, Attr: attrs}
}

func attr(name, value string) xml.Attr {
	return xml.Attr{Name: xml.Name{Local: name}, Value: value}
}

func hAttr(h uint32) xml.Attr { return attr("h", strconv.FormatUint(uint64(h), 10)) }

// TokenReader implements xmlstream.Marshaler.
func (e Enable) TokenReader() xml.TokenReader {
	var attrs []xml.Attr
	if e.Resume {
		attrs = append(attrs, attr("resume", "true"))
	}
	if e.Max > 0 {
		attrs = append(attrs, attr("max", strconv.Itoa(e.Max)))
	}
	return xmlstream.Wrap(nil, start("enable", attrs...))
}

// TokenReader implements xmlstream.Marshaler.
func (r Resume) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, start("resume", attr("previd", r.PrevID), hAttr(r.H)))
}

// TokenReader implements xmlstream.Marshaler.
func (Req) TokenReader() xml.TokenReader { return xmlstream.Wrap(nil, start("r")) }

// TokenReader implements xmlstream.Marshaler.
func (a Ack) TokenReader() xml.TokenReader { return xmlstream.Wrap(nil, start("a", hAttr(a.H))) }

var (
	_ xmlstream.Marshaler = Enable{}
	_ xmlstream.Marshaler = Resume{}
	_ xmlstream.Marshaler = Req{}
	_ xmlstream.Marshaler = Ack{}
)

func attrValue(st xml.StartElement, name string) (string, bool) {
	for _, a := range st.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

func parseH(st xml.StartElement) (uint32, bool, error) {
	v, ok := attrValue(st, "h")
	if !ok {
		return 0, false, nil
	}
	h, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, true, fmt.Errorf("sm: bad h %q on <%s/>: %w", v, st.Name.Local, err)
	}
	return uint32(h), true, nil
}

func isTrue(v string) bool { return v == "true" || v == "1" }

// ParseEnabled reads an <enabled/> start element.
func ParseEnabled(st xml.StartElement) Enabled {
	var e Enabled
	e.ID, _ = attrValue(st, "id")
	r, _ := attrValue(st, "resume")
	e.Resume = isTrue(r)
	if m, ok := attrValue(st, "max"); ok {
		e.Max, _ = strconv.Atoi(m)
	}
	e.Location, _ = attrValue(st, "location")
	return e
}

// ParseAck reads an <a/> start element; h is required.
func ParseAck(st xml.StartElement) (Ack, error) {
	h, ok, err := parseH(st)
	if err != nil {
		return Ack{}, err
	}
	if !ok {
		return Ack{}, fmt.Errorf("sm: <a/> without h")
	}
	return Ack{H: h}, nil
}

// ParseResumed reads a <resumed/> start element; h is required.
func ParseResumed(st xml.StartElement) (Resumed, error) {
	h, ok, err := parseH(st)
	if err != nil {
		return Resumed{}, err
	}
	if !ok {
		return Resumed{}, fmt.Errorf("sm: <resumed/> without h")
	}
	id, _ := attrValue(st, "previd")
	return Resumed{PrevID: id, H: h}, nil
}

// DecodeFailed reads a whole <failed/> element (its start already read)
// from d: the optional h and the error condition.
func DecodeFailed(d xml.TokenReader, st xml.StartElement) (Failed, error) {
	var f Failed
	h, ok, err := parseH(st)
	if err != nil {
		return f, err
	}
	f.H, f.HasH = h, ok
	depth := 1
	for depth > 0 {
		tok, err := d.Token()
		if err != nil {
			return f, fmt.Errorf("sm: failed to read <failed/>: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 1 && t.Name.Space == nsStanzas && f.Condition == "" {
				f.Condition = t.Name.Local
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return f, nil
}
