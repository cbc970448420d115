package sm

import (
	"bytes"
	"encoding/xml"
)

// element is a top-level element of a stream (a child of <stream:stream>)
// as the splitter saw it.
type element struct {
	// Start is the element's start tag as read without namespace
	// processing: Name.Space is its prefix, an xmlns attribute is kept.
	Start xml.StartElement
	// Raw is the whole element's bytes, when the splitter captures them.
	Raw []byte
}

// ns is the element's own default namespace declaration ("" when it
// inherits the stream's).
func (e element) ns() string {
	v, _ := attrValue(e.Start, "xmlns")
	return v
}

// isSM reports whether the element is a stream management element.
func (e element) isSM() bool { return e.Start.Name.Space == "" && e.ns() == NS }

// isStanza reports whether the element is a stanza of a client stream
// (message, presence or iq in jabber:client, declared or inherited).
func (e element) isStanza() bool {
	switch e.Start.Name.Local {
	case "message", "presence", "iq":
	default:
		return false
	}
	if e.Start.Name.Space != "" {
		return false
	}
	ns := e.ns()
	return ns == "" || ns == "jabber:client"
}

type splitState uint8

const (
	stText     splitState = iota
	stLt                  // after '<'
	stStartTag            // inside a start (or empty-element) tag
	stEndTag              // inside an end tag
	stPI                  // <? … ?>
	stBang                // after "<!"
	stComment             // <!-- … -->
	stCDATA               // <![CDATA[ … ]]>
	stDecl                // other <! … >
)

// splitter follows an XML stream a byte at a time and reports each
// top-level element when its last byte has gone by. It knows only as much
// XML as a stream has: tags with quoted attributes, text, CDATA, comments
// and processing instructions (the latter two are refused by XMPP, skipped
// here). It does not check well-formedness; mellium's decoder does.
type splitter struct {
	// capture keeps the bytes of every top-level element (outbound);
	// otherwise only its start tag is kept (inbound).
	capture bool
	emit    func(element)

	st    splitState
	depth int  // 0 outside the stream, 1 inside <stream:stream>, 2+ inside a top-level element
	quote byte // the open attribute quote inside a tag, or 0
	prev  byte // the previous byte inside a tag (for "/>")
	tail  [2]byte
	bang  []byte
	tag   []byte // the current tag's bytes while it is read
	start xml.StartElement
	raw   []byte
	inTop bool // inside a top-level element (from its '<')
}

func (sp *splitter) writeBytes(p []byte) {
	for _, b := range p {
		sp.byte(b)
	}
}

func (sp *splitter) byte(b byte) {
	if sp.inTop && sp.capture {
		sp.raw = append(sp.raw, b)
	}
	switch sp.st {
	case stText:
		if b == '<' {
			sp.st = stLt
			sp.tag = append(sp.tag[:0], b)
			if sp.depth == 1 {
				sp.inTop = true
				if sp.capture {
					sp.raw = append(sp.raw[:0], b)
				}
			}
		}
	case stLt:
		sp.tag = append(sp.tag, b)
		switch b {
		case '/':
			sp.st = stEndTag
		case '?':
			sp.st = stPI
			sp.tail = [2]byte{}
			sp.notTop()
		case '!':
			sp.st = stBang
			sp.bang = sp.bang[:0]
			sp.notTop()
		default:
			sp.st = stStartTag
			sp.quote, sp.prev = 0, b
		}
	case stStartTag:
		sp.tag = append(sp.tag, b)
		switch {
		case sp.quote != 0:
			if b == sp.quote {
				sp.quote = 0
			}
		case b == '"' || b == '\'':
			sp.quote = b
		case b == '>':
			sp.st = stText
			sp.startTag(sp.prev == '/')
			return
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			sp.prev = b
		}
	case stEndTag:
		if b == '>' {
			sp.st = stText
			sp.endTag()
		}
	case stPI:
		if sp.tail[1] == '?' && b == '>' {
			sp.st = stText
		}
		sp.tail = [2]byte{sp.tail[1], b}
	case stBang:
		sp.bang = append(sp.bang, b)
		switch {
		case bytes.Equal(sp.bang, []byte("--")):
			sp.st, sp.tail = stComment, [2]byte{}
		case bytes.Equal(sp.bang, []byte("[CDATA[")):
			sp.st, sp.tail = stCDATA, [2]byte{}
		case !bytes.HasPrefix([]byte("--"), sp.bang) && !bytes.HasPrefix([]byte("[CDATA["), sp.bang):
			sp.st = stDecl
			if b == '>' {
				sp.st = stText
			}
		}
	case stComment:
		if sp.tail == [2]byte{'-', '-'} && b == '>' {
			sp.st = stText
		}
		sp.tail = [2]byte{sp.tail[1], b}
	case stCDATA:
		if sp.tail == [2]byte{']', ']'} && b == '>' {
			sp.st = stText
		}
		sp.tail = [2]byte{sp.tail[1], b}
	case stDecl:
		if b == '>' {
			sp.st = stText
		}
	}
}

// notTop undoes inTop for a '<' at depth 1 that turned out not to start an
// element (a comment or processing instruction between stanzas).
func (sp *splitter) notTop() {
	if sp.depth == 1 {
		sp.inTop = false
	}
}

func (sp *splitter) startTag(empty bool) {
	switch {
	case sp.depth == 0:
		// The stream header (<stream:stream …>), or a whole element
		// outside any stream, which XMPP does not have.
		if !empty {
			sp.depth = 1
		}
	case sp.depth == 1:
		sp.start = parseTag(sp.tag, empty)
		if empty {
			sp.finish()
			return
		}
		sp.depth = 2
	default:
		if !empty {
			sp.depth++
		}
	}
}

func (sp *splitter) endTag() {
	switch sp.depth {
	case 0:
	case 1:
		// </stream:stream>
		sp.depth = 0
		sp.inTop = false
	case 2:
		sp.depth = 1
		sp.finish()
	default:
		sp.depth--
	}
}

// splitKeep is the largest capture buffer kept between elements: an idle
// session otherwise held the size of the largest it ever sent (≈ 16 kB per
// login, issue 13).
const splitKeep = 2048

func (sp *splitter) finish() {
	e := element{Start: sp.start}
	if sp.capture {
		e.Raw = append([]byte(nil), sp.raw...)
		if cap(sp.raw) > splitKeep {
			sp.raw = nil // a large element (a bundle) is not kept for the session's life
		} else {
			sp.raw = sp.raw[:0]
		}
	}
	sp.inTop = false
	sp.start = xml.StartElement{}
	if sp.emit != nil {
		sp.emit(e)
	}
}

// parseTag reads a start tag's name and attributes without namespace
// processing (prefixes are not declared inside a lone tag).
func parseTag(tag []byte, empty bool) xml.StartElement {
	if st, ok := parseTagPlain(tag, empty); ok {
		return st
	}
	return parseTagDecoder(tag, empty)
}

// parseTagDecoder is parseTag with encoding/xml's decoder.
func parseTagDecoder(tag []byte, empty bool) xml.StartElement {
	b := tag
	if !empty {
		b = append(append(make([]byte, 0, len(tag)+1), tag[:len(tag)-1]...), '/', '>')
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	tok, err := d.RawToken()
	if err != nil {
		return xml.StartElement{}
	}
	st, _ := tok.(xml.StartElement)
	return st.Copy()
}

// parseTagPlain is parseTag for the tags a stream has almost only: no
// entity, no whitespace but spaces inside attribute values, one colon at
// most in a name. A decoder per top-level element, both ways, was a tenth
// of the bridge's CPU in a Matrix → XMPP burst; anything else (ok false)
// goes to the decoder.
func parseTagPlain(tag []byte, empty bool) (xml.StartElement, bool) {
	if len(tag) < 3 || tag[0] != '<' || tag[len(tag)-1] != '>' || bytes.IndexByte(tag, '&') >= 0 {
		return xml.StartElement{}, false
	}
	b := tag[1 : len(tag)-1]
	if empty {
		if b[len(b)-1] != '/' {
			return xml.StartElement{}, false
		}
		b = b[:len(b)-1]
	}
	i := 0
	for i < len(b) && !isXMLSpace(b[i]) {
		i++
	}
	name, ok := plainName(b[:i])
	if !ok {
		return xml.StartElement{}, false
	}
	st := xml.StartElement{Name: name}
	for {
		for i < len(b) && isXMLSpace(b[i]) {
			i++
		}
		if i == len(b) {
			return st, true
		}
		j := i
		for j < len(b) && b[j] != '=' && !isXMLSpace(b[j]) {
			j++
		}
		an, ok := plainName(b[i:j])
		if !ok || j == len(b) || b[j] != '=' || j+1 == len(b) {
			return xml.StartElement{}, false
		}
		q := b[j+1]
		if q != '"' && q != '\'' {
			return xml.StartElement{}, false
		}
		k := bytes.IndexByte(b[j+2:], q)
		if k < 0 {
			return xml.StartElement{}, false
		}
		v := b[j+2 : j+2+k]
		if bytes.ContainsAny(v, "<\t\r\n") {
			return xml.StartElement{}, false
		}
		st.Attr = append(st.Attr, xml.Attr{Name: an, Value: string(v)})
		i = j + 2 + k + 1
		if i < len(b) && !isXMLSpace(b[i]) {
			return xml.StartElement{}, false
		}
	}
}

// plainName is a name as the decoder reads it without namespace
// processing: "prefix:local" split at its one colon.
func plainName(b []byte) (xml.Name, bool) {
	if len(b) == 0 || bytes.ContainsAny(b, "<>/\"'=") {
		return xml.Name{}, false
	}
	switch c := bytes.IndexByte(b, ':'); {
	case c < 0:
		return xml.Name{Local: string(b)}, true
	case c == 0 || c == len(b)-1 || bytes.IndexByte(b[c+1:], ':') >= 0:
		return xml.Name{}, false
	default:
		return xml.Name{Space: string(b[:c]), Local: string(b[c+1:])}, true
	}
}

func isXMLSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }
