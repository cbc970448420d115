package omemoxmpp

import (
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/eme"
	"github.com/mxomemo/xmpp-bridge/xmpp/hints"
)

// FallbackBody is the plaintext <body/> of an encrypted message, for
// clients that do not speak OMEMO.
const FallbackBody = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."

// EME returns the <encryption xmlns='urn:xmpp:eme:0'/> element for v, named
// "OMEMO" for clients that do not know the namespace.
func EME(v omemo.Version) xml.TokenReader {
	return eme.Encryption{Namespace: v.Namespace(), Name: "OMEMO"}.TokenReader()
}

// BuildMessage returns msg (type, to, id as the caller sets them; type chat
// when empty) with the encrypted elements of out, and — unless out holds
// only empty messages (heartbeats, key transport) — a fallback <body/>, an
// EME <encryption/> per version and a <store/> hint so archives keep it.
// extra are further children (origin-id, receipts request, …).
func BuildMessage(msg stanza.Message, out *Outgoing, extra ...xml.TokenReader) (xml.TokenReader, error) {
	if msg.Type == "" {
		msg.Type = stanza.ChatMessage
	}
	if out == nil || len(out.Elements) == 0 {
		return nil, fmt.Errorf("%w: nothing encrypted", ErrMalformed)
	}
	empty := true
	for _, e := range out.Elements {
		if e.Payload != nil {
			empty = false
		}
	}
	var kids []xml.TokenReader
	if !empty {
		kids = append(kids, xmlstream.Wrap(xmlstream.Token(xml.CharData(FallbackBody)),
			xml.StartElement{Name: xml.Name{Local: "body"}}))
	}
	for _, e := range out.Elements {
		r, err := marshalReader(e)
		if err != nil {
			return nil, fmt.Errorf("failed to marshal OMEMO %s element: %w", e.Version, err)
		}
		kids = append(kids, r)
	}
	if !empty {
		for _, e := range out.Elements {
			kids = append(kids, EME(e.Version))
		}
	}
	kids = append(kids, hints.Store.TokenReader())
	kids = append(kids, extra...)
	return msg.Wrap(xmlstream.MultiReader(kids...)), nil
}
