package mucroom

import (
	"encoding/xml"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// wrapIn puts a captured child back into an element named local, for
// mucadmin.ParseUser, which reads a whole stanza.
func wrapIn(toks []xml.Token, local string) xml.TokenReader {
	return xmlstream.Wrap(xmltok.Replay(toks), xml.StartElement{Name: xml.Name{Local: local}})
}
