package stanzabuf

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// ErrNoStanza is returned when the reader holds no element.
var ErrNoStanza = errors.New("stanzabuf: no element to read")

// MaxTokens bounds the size of a buffered stanza; servers limit stanza
// size too, this only keeps a broken reader from growing memory forever.
const MaxTokens = 1 << 20

// Stanza is one buffered element.
type Stanza struct {
	tokens []xml.Token
}

// Read reads the first element from r (skipping leading character data)
// and buffers it.
func Read(r xml.TokenReader) (*Stanza, error) {
	d := xml.NewTokenDecoder(r)
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, ErrNoStanza
			}
			return nil, fmt.Errorf("failed to read stanza: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			toks, err := xmltok.Capture(d, t)
			if err != nil {
				return nil, err
			}
			if len(toks) > MaxTokens {
				return nil, fmt.Errorf("stanzabuf: stanza of %d tokens is too large", len(toks))
			}
			return &Stanza{tokens: toks}, nil
		case xml.EndElement:
			return nil, ErrNoStanza
		}
	}
}

// Start returns the stanza's start element.
func (s *Stanza) Start() xml.StartElement {
	return s.tokens[0].(xml.StartElement).Copy()
}

// Reader returns a new reader over the whole stanza.
func (s *Stanza) Reader() xml.TokenReader {
	return xmltok.Replay(s.tokens)
}

// ReaderWithout returns a reader over the stanza without its children (not
// deeper descendants) named in skip, for a parser that reads none of them
// and would otherwise decode its way through them (an OMEMO element holds a
// key for every device it was encrypted for).
func (s *Stanza) ReaderWithout(skip ...xml.Name) xml.TokenReader {
	return &without{toks: s.tokens, skip: skip}
}

// ReaderOnly returns a reader over the stanza's start and end and, between
// them, only its children named in keep, for a parser that reads nothing
// else (the OMEMO elements) and would otherwise decode its way through the
// rest of the stanza to skip it.
func (s *Stanza) ReaderOnly(keep ...xml.Name) xml.TokenReader {
	return &without{toks: s.tokens, skip: keep, only: true}
}

// without reads the stanza without its children named in skip, or (only)
// with none but them.
type without struct {
	toks  []xml.Token
	skip  []xml.Name
	only  bool
	i     int
	depth int
}

func (r *without) Token() (xml.Token, error) {
	for r.i < len(r.toks) {
		t := r.toks[r.i]
		r.i++
		switch t := t.(type) {
		case xml.StartElement:
			r.depth++
			if r.depth == 2 && slices.Contains(r.skip, t.Name) != r.only {
				r.skipElement()
				continue
			}
		case xml.EndElement:
			r.depth--
		default:
			if r.only && r.depth == 1 {
				// Text between the children is not one of them.
				continue
			}
		}
		// Copies, as Reader hands out: consumers may keep or modify them.
		return xml.CopyToken(t), nil
	}
	return nil, io.EOF
}

// skipElement moves past the end of the element whose start was just read.
func (r *without) skipElement() {
	for depth := 1; depth > 0 && r.i < len(r.toks); r.i++ {
		switch r.toks[r.i].(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	r.depth--
}

// Decode decodes the stanza into v.
func (s *Stanza) Decode(v any) error {
	return xml.NewTokenDecoder(s.Reader()).Decode(v)
}

// HasChild reports whether the stanza has a child element (not a deeper
// descendant) named local in namespace space. It reads the buffered
// tokens without a decoder, so that a parser whose element is absent from
// most stanzas can be skipped for nothing.
func (s *Stanza) HasChild(space, local string) bool {
	found := false
	s.eachChild(func(t xml.StartElement) bool {
		found = t.Name.Space == space && t.Name.Local == local
		return !found
	})
	return found
}

// HasChildIn reports whether the stanza has a child element of any name
// in namespace space (chat states and markers are elements of several
// names), as HasChild does.
func (s *Stanza) HasChildIn(space string) bool {
	found := false
	s.eachChild(func(t xml.StartElement) bool {
		found = t.Name.Space == space
		return !found
	})
	return found
}

// Children returns copies of the start elements of the stanza's children
// (not deeper descendants) named local in namespace space, read from the
// buffered tokens as HasChild does: for elements whose attributes are all
// that is read (an occupant id), without decoding the whole stanza.
func (s *Stanza) Children(space, local string) []xml.StartElement {
	var out []xml.StartElement
	s.eachChild(func(t xml.StartElement) bool {
		if t.Name.Space == space && t.Name.Local == local {
			out = append(out, t.Copy())
		}
		return true
	})
	return out
}

// eachChild calls fn with the start element of each of the stanza's
// children, from the buffered tokens, until fn returns false.
func (s *Stanza) eachChild(fn func(xml.StartElement) bool) {
	depth := 0
	for _, tok := range s.tokens {
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && !fn(t) {
				return
			}
		case xml.EndElement:
			depth--
		}
	}
}
