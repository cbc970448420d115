package omemoxmpp

import (
	"encoding/xml"
	"fmt"
	"io"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// marshalReader marshals v (one element) into a token reader that can be
// encoded into a stanza.
func marshalReader(v any) (xml.TokenReader, error) {
	data, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	toks, err := xmltok.Decode(data)
	if err != nil {
		return nil, err
	}
	return xmltok.Replay(toks), nil
}

// readStanza reads one whole element (a stanza) from r into tokens.
func readStanza(r xml.TokenReader) ([]xml.Token, error) {
	c := xmltok.CloseOpen(r)
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
