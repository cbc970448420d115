// Package nick reads the names an XMPP contact gives itself when it is not in the user's roster:
// XEP-0172 (User Nickname) — a <nick xmlns='http://jabber.org/protocol/nick'/> in a message or
// subscription request, or the item of the contact's PEP node of that namespace — and the
// NICKNAME or FN of its vcard-temp (XEP-0054).
//
// The package imports only xmpp/pubsub and mellium; it knows nothing of the bridge.
package nick // import "github.com/mxomemo/xmpp-bridge/xmpp/nick"
