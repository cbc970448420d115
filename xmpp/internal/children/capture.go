package children

import (
	"encoding/xml"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Capture is xmltok.Capture, for the stanza packages that already walk
// children with this package.
func Capture(d *xml.Decoder, start xml.StartElement) ([]xml.Token, error) {
	return xmltok.Capture(d, start)
}

// Replay is xmltok.Replay.
func Replay(toks []xml.Token) xml.TokenReader {
	return xmltok.Replay(toks)
}
