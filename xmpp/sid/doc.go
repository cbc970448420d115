// Package sid implements XEP-0359: Unique and Stable Stanza IDs.
//
// A sending client adds <origin-id/> so that it can recognise its own
// message when the server reflects it (carbons, MUC echo, MAM). A server or
// MUC service that archives a message adds <stanza-id by='…'/> naming
// itself; that id is what MAM queries and XEP-0424/0444/0461 references use.
//
// Anyone can put a <stanza-id/> in a message they send, so a stanza-id only
// counts when its by attribute is the entity we trust to have stamped it:
// our own bare JID for 1:1 chats, the room's bare JID for groupchats.
// IDs.StanzaIDBy enforces this; never read IDs.StanzaIDs[0] directly.
//
// mellium.im/xmpp/stanza has marshal-only ID and OriginID types; this package
// adds validating unmarshalers and the extraction helpers the bridge needs.
// It imports only mellium and nothing else of ours.
package sid // import "github.com/mxomemo/xmpp-bridge/xmpp/sid"
