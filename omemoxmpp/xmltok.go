package omemoxmpp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
)

// tokens decodes an XML fragment into tokens that can be re-encoded: the
// xmlns attributes the decoder reports are dropped because the encoder
// writes them again from the element names.
func tokens(data []byte) ([]xml.Token, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var out []xml.Token
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			t = t.Copy()
			attrs := t.Attr[:0]
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				attrs = append(attrs, a)
			}
			t.Attr = attrs
			out = append(out, t)
		case xml.EndElement, xml.CharData:
			out = append(out, xml.CopyToken(t))
		}
	}
}

// marshalTokens marshals v (one element) into a token slice.
func marshalTokens(v any) ([]xml.Token, error) {
	data, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return tokens(data)
}

// replay is an xml.TokenReader over a token slice.
type replay struct {
	toks []xml.Token
	i    int
}

func newReplay(toks []xml.Token) *replay { return &replay{toks: toks} }

func (r *replay) Token() (xml.Token, error) {
	if r.i >= len(r.toks) {
		return nil, io.EOF
	}
	r.i++
	return r.toks[r.i-1], nil
}

// marshalReader marshals v into a token reader.
func marshalReader(v any) (xml.TokenReader, error) {
	toks, err := marshalTokens(v)
	if err != nil {
		return nil, err
	}
	return newReplay(toks), nil
}

// closer ends the elements left open when r runs out: readers handed out by
// mellium's muxer may stop before the stanza's end element, which
// encoding/xml would report as a syntax error.
type closer struct {
	r     xml.TokenReader
	open  []xml.Name
	ended bool
}

func (c *closer) Token() (xml.Token, error) {
	if !c.ended {
		tok, err := c.r.Token()
		if tok != nil {
			switch t := tok.(type) {
			case xml.StartElement:
				c.open = append(c.open, t.Name)
			case xml.EndElement:
				if len(c.open) > 0 {
					c.open = c.open[:len(c.open)-1]
				}
			}
			return tok, nil
		}
		if err != io.EOF {
			return nil, err
		}
		c.ended = true
	}
	if len(c.open) == 0 {
		return nil, io.EOF
	}
	n := c.open[len(c.open)-1]
	c.open = c.open[:len(c.open)-1]
	return xml.EndElement{Name: n}, nil
}

// readStanza reads one whole element (a stanza) from r into tokens.
func readStanza(r xml.TokenReader) ([]xml.Token, error) {
	c := &closer{r: r}
	var out []xml.Token
	depth := 0
	for {
		tok, err := c.Token()
		if err == io.EOF {
			if len(out) == 0 {
				return nil, fmt.Errorf("%w: no stanza", ErrMalformed)
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		default:
			if depth == 0 {
				continue
			}
		}
		out = append(out, xml.CopyToken(tok))
		if depth == 0 {
			return out, nil
		}
	}
}
