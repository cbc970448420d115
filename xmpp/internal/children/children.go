// Package children walks the direct children of a stanza so that the stanza
// packages can pick out their own elements without decoding the whole
// stanza into one struct.
package children

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// ErrNotElement is returned when the reader does not start with an element.
var ErrNotElement = errors.New("children: input does not start with an element")

// Func is called for one direct child. If it returns consumed=true it must
// have read the whole child (for example with d.DecodeElement(v, &start));
// otherwise it must not have read from d and Each skips the child.
type Func func(d *xml.Decoder, start xml.StartElement) (consumed bool, err error)

// Each calls f for every direct child element of the first element read from
// r (normally a stanza) and returns that element's start.
// Character data, comments and processing instructions around it are ignored.
func Each(r xml.TokenReader, f Func) (xml.StartElement, error) {
	d := xml.NewTokenDecoder(&closer{r: r})
	var outer xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return outer, ErrNotElement
			}
			return outer, fmt.Errorf("failed to read stanza start: %w", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			outer = s.Copy()
			break
		}
		if _, ok := tok.(xml.EndElement); ok {
			return outer, ErrNotElement
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return outer, fmt.Errorf("failed to read stanza child: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return outer, nil
		case xml.StartElement:
			t = t.Copy()
			consumed, err := f(d, t)
			if err != nil {
				return outer, err
			}
			if !consumed {
				if err := d.Skip(); err != nil {
					return outer, fmt.Errorf("failed to skip %s: %w", t.Name.Local, err)
				}
			}
		}
	}
}

// closer ends elements left open when r runs out: readers cut from a larger
// stream (as mellium's muxer hands out) may stop before the stanza's end
// element, which encoding/xml would report as a syntax error.
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
