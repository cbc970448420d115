package omemoxmpp

import (
	"encoding/xml"

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
