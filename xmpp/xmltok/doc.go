// Package xmltok holds the few token-stream helpers our stanza packages
// and omemoxmpp share and mellium.im/xmlstream lacks: tokens kept after
// their decoder moved on (Capture, Decode) and read again (Replay), and
// readers cut from a larger stream closed properly (CloseOpen).
//
// It imports only the standard library; it must never import anything of
// ours.
package xmltok // import "github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
