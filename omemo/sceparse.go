package omemo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// nsXML is the namespace the xml: prefix is bound to.
const nsXML = "http://www.w3.org/XML/1998/namespace"

// ParseEnvelope parses an SCE envelope and checks that its <from/> names the
// same bare JID as sender (the stanza's sender); pass "" to skip the check.
//
// The envelope is read namespace-aware, as XEP-0420 and XML namespaces
// define it, not as the bytes happen to look: any prefixes
// (`<ns0:envelope xmlns:ns0='urn:xmpp:sce:1'>`, what Python's ElementTree
// writes), default namespaces, whitespace between the elements and affix
// elements we do not know (from other specifications, or future SCE
// affixes) are all accepted. Envelope.Content is the children of <content/>
// re-serialised self-contained: every top-level child declares its
// namespace, so the fragment means the same once cut out of the envelope
// (cutting out the raw inner XML loses the declarations in scope, which
// turned prefixed bodies into nothing).
//
// Content, from and to must appear at most once: two <from/> could make a
// reader and a checker disagree about the sender.
func ParseEnvelope(data []byte, sender string) (*Envelope, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	root, err := firstStart(d)
	if err != nil {
		return nil, err
	}
	if root.Name.Space != NamespaceSCE || root.Name.Local != "envelope" {
		return nil, fmt.Errorf("%w: root is {%s}%s, not {%s}envelope", ErrEnvelope, root.Name.Space, root.Name.Local, NamespaceSCE)
	}
	var (
		e                   Envelope
		seenContent, seenTo bool
		seenFrom, seenRPad  bool
	)
loop:
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			break loop
		case xml.StartElement:
			if t.Name.Space != NamespaceSCE {
				// An affix of another specification: not ours to read.
				if err := d.Skip(); err != nil {
					return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
				}
				continue
			}
			switch t.Name.Local {
			case "content":
				if seenContent {
					return nil, fmt.Errorf("%w: two <content/>", ErrEnvelope)
				}
				seenContent = true
				if e.Content, err = canonicalChildren(d); err != nil {
					return nil, err
				}
				continue // canonicalChildren consumed the end tag
			case "from", "to":
				seen := &seenFrom
				dst := &e.From
				if t.Name.Local == "to" {
					seen, dst = &seenTo, &e.To
				}
				if *seen {
					return nil, fmt.Errorf("%w: two <%s/>", ErrEnvelope, t.Name.Local)
				}
				*seen = true
				*dst = strings.TrimSpace(plainAttr(t, "jid"))
			case "rpad":
				if !seenRPad {
					var s string
					if err := d.DecodeElement(&s, &t); err != nil {
						return nil, fmt.Errorf("%w: rpad: %v", ErrEnvelope, err)
					}
					e.RPad, seenRPad = s, true
					continue
				}
			case "time":
				// An optional affix: a stamp we cannot read is dropped,
				// never a reason to lose the message.
				if ts, err := time.Parse(time.RFC3339, strings.TrimSpace(plainAttr(t, "stamp"))); err == nil {
					e.Time = ts
				}
			}
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
			}
		}
	}
	// Only whitespace, comments and processing instructions may follow.
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: after envelope: %v", ErrEnvelope, err)
		}
		if !ignorable(tok) {
			return nil, fmt.Errorf("%w: data after the envelope", ErrEnvelope)
		}
	}
	if !seenContent {
		return nil, fmt.Errorf("%w: no content", ErrEnvelope)
	}
	if e.From == "" {
		return nil, fmt.Errorf("%w: no from", ErrEnvelope)
	}
	if sender != "" && !strings.EqualFold(bareJID(sender), bareJID(e.From)) {
		return nil, fmt.Errorf("%w: from %q does not match sender %q", ErrEnvelope, e.From, sender)
	}
	return &e, nil
}

// firstStart returns the root element, skipping a prolog.
func firstStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("%w: %v", ErrEnvelope, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		default:
			if !ignorable(tok) {
				return xml.StartElement{}, fmt.Errorf("%w: text before the envelope", ErrEnvelope)
			}
		}
	}
}

// ignorable reports whether tok may stand outside the root element.
func ignorable(tok xml.Token) bool {
	switch t := tok.(type) {
	case xml.CharData:
		return len(bytes.TrimSpace(t)) == 0
	case xml.Comment, xml.ProcInst, xml.Directive:
		return true
	}
	return false
}

// plainAttr returns the value of the attribute local without namespace.
func plainAttr(s xml.StartElement, local string) string {
	for _, a := range s.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// canonicalChildren writes the children of the element whose start tag d
// just returned, up to and including its end tag, as a self-contained
// fragment: namespaces are written as default-namespace declarations where
// they change (every top-level child declares its own, xmlns=” for no
// namespace), namespaced attributes get a prefix declared on their element,
// comments and processing instructions are dropped. Writing the result of
// a parse again gives the same bytes.
func canonicalChildren(d *xml.Decoder) ([]byte, error) {
	var (
		buf     bytes.Buffer
		stack   []string // namespace of each open element
		pending bool     // a start tag waits for '>' or '/>'
	)
	const unset = "\x00" // no namespace in scope: the first child declares its own
	closeStart := func() {
		if pending {
			buf.WriteByte('>')
			pending = false
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: content: %v", ErrEnvelope, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			closeStart()
			parent := unset
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			buf.WriteByte('<')
			buf.WriteString(t.Name.Local)
			if t.Name.Space != parent {
				buf.WriteString(" xmlns='")
				escapeAttr(&buf, t.Name.Space)
				buf.WriteByte('\'')
			}
			n := 0
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns"):
					continue // declarations are rewritten
				case a.Name.Space == "":
					buf.WriteByte(' ')
				case a.Name.Space == nsXML || a.Name.Space == "xml":
					buf.WriteString(" xml:")
				default:
					fmt.Fprintf(&buf, " xmlns:a%d='", n)
					escapeAttr(&buf, a.Name.Space)
					fmt.Fprintf(&buf, "' a%d:", n)
					n++
				}
				buf.WriteString(a.Name.Local)
				buf.WriteString("='")
				escapeAttr(&buf, a.Value)
				buf.WriteByte('\'')
			}
			stack = append(stack, t.Name.Space)
			pending = true
		case xml.EndElement:
			if len(stack) == 0 {
				return buf.Bytes(), nil // </content>
			}
			stack = stack[:len(stack)-1]
			if pending {
				buf.WriteString("/>")
				pending = false
			} else {
				buf.WriteString("</")
				buf.WriteString(t.Name.Local)
				buf.WriteByte('>')
			}
		case xml.CharData:
			if len(t) == 0 {
				continue
			}
			closeStart()
			escapeText(&buf, t)
		}
	}
}

func escapeText(buf *bytes.Buffer, s []byte) {
	for _, r := range string(s) {
		switch r {
		case '&':
			buf.WriteString("&amp;")
		case '<':
			buf.WriteString("&lt;")
		case '>':
			buf.WriteString("&gt;")
		case '\r':
			buf.WriteString("&#xD;")
		default:
			buf.WriteRune(r)
		}
	}
}

func escapeAttr(buf *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '&':
			buf.WriteString("&amp;")
		case '<':
			buf.WriteString("&lt;")
		case '\'':
			buf.WriteString("&apos;")
		case '"':
			buf.WriteString("&quot;")
		case '\t':
			buf.WriteString("&#x9;")
		case '\n':
			buf.WriteString("&#xA;")
		case '\r':
			buf.WriteString("&#xD;")
		default:
			buf.WriteRune(r)
		}
	}
}
