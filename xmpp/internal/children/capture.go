package children

import (
	"encoding/xml"
	"fmt"
	"io"
)

// Capture reads the rest of the element begun by start from d (which must be
// positioned just after start) and returns all of its tokens, start and end
// included, copied so that they stay valid after d moves on.
func Capture(d *xml.Decoder, start xml.StartElement) ([]xml.Token, error) {
	toks := []xml.Token{stripNS(start)}
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
			toks = append(toks, stripNS(t))
			continue
		case xml.EndElement:
			depth--
		}
		toks = append(toks, xml.CopyToken(tok))
	}
	return toks, nil
}

// stripNS copies start without its namespace declarations: the decoder has
// already resolved every name, and keeping them makes encoding/xml write
// each xmlns twice when the tokens are encoded again.
func stripNS(start xml.StartElement) xml.StartElement {
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
