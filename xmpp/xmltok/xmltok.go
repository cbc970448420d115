package xmltok

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
)

// Capture reads the rest of the element begun by start from d (which must be
// positioned just after start) and returns all of its tokens, start and end
// included, copied so that they stay valid after d moves on.
func Capture(d *xml.Decoder, start xml.StartElement) ([]xml.Token, error) {
	toks := []xml.Token{StripNS(start)}
	depth := 1
	for depth > 0 {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("failed to read %s: %w", start.Name.Local, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			toks = append(toks, StripNS(t))
			continue
		case xml.EndElement:
			depth--
		}
		toks = append(toks, xml.CopyToken(tok))
	}
	return toks, nil
}

// Decode decodes an XML fragment into tokens that can be encoded again
// (start elements through StripNS); comments, processing instructions and
// directives are dropped.
func Decode(data []byte) ([]xml.Token, error) {
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
			out = append(out, StripNS(t))
		case xml.EndElement, xml.CharData:
			out = append(out, xml.CopyToken(t))
		}
	}
}

// StripNS copies start without its namespace declarations: the decoder has
// already resolved every name, and keeping them makes encoding/xml write
// each xmlns twice when the tokens are encoded again.
func StripNS(start xml.StartElement) xml.StartElement {
	out := xml.StartElement{Name: start.Name, Attr: make([]xml.Attr, 0, len(start.Attr))}
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		out.Attr = append(out.Attr, a)
	}
	return out
}

// Replay returns a new reader over captured tokens.
func Replay(toks []xml.Token) xml.TokenReader {
	return &replay{toks: toks}
}

type replay struct {
	toks []xml.Token
	i    int
}

func (r *replay) Token() (xml.Token, error) {
	if r.i >= len(r.toks) {
		return nil, io.EOF
	}
	t := r.toks[r.i]
	r.i++
	// Hand out copies: consumers such as xml.Decoder may keep or modify them.
	return xml.CopyToken(t), nil
}

// CloseOpen returns r with the elements left open when r runs out ended:
// readers cut from a larger stream (as mellium's muxer hands out) may stop
// before the stanza's end element, which encoding/xml would report as a
// syntax error.
func CloseOpen(r xml.TokenReader) xml.TokenReader {
	return &closer{r: r}
}

type closer struct {
	r     xml.TokenReader
	open  []xml.Name
	ended bool
}

func (c *closer) Token() (xml.Token, error) {
	if c.ended {
		return c.pop()
	}
	tok, err := c.r.Token()
	switch t := tok.(type) {
	case xml.StartElement:
		c.open = append(c.open, t.Name)
	case xml.EndElement:
		if len(c.open) > 0 {
			c.open = c.open[:len(c.open)-1]
		}
	}
	if err == io.EOF {
		c.ended = true
		if tok != nil {
			return tok, nil
		}
		return c.pop()
	}
	return tok, err
}

func (c *closer) pop() (xml.Token, error) {
	if len(c.open) == 0 {
		return nil, io.EOF
	}
	n := c.open[len(c.open)-1]
	c.open = c.open[:len(c.open)-1]
	return xml.EndElement{Name: n}, nil
}
