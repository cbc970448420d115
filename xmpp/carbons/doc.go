// Package carbons parses XEP-0280: Message Carbons copies safely.
//
// Enabling and disabling carbons, and wrapping copies, are in
// mellium.im/xmpp/carbons (carbons.Enable) and are not repeated here.
// mellium's carbons.Handler hands the forwarded message out once as a
// stream, relies on the session having blanked a from equal to the
// account's bare JID, and does not look at the forwarded message's
// addresses. Parse instead works on any reader (live stanzas, tests, stored
// XML), accepts a carbon only when the wrapping message comes from the
// account's own bare JID or carries no from (mellium's session removes a
// from equal to our bare JID), and checks that a <sent/> copy was sent by
// the account and a <received/> copy was addressed to it. Anyone can send us
// a message containing <received/>, so without these checks a contact could
// put words in another contact's mouth.
//
// The forwarded message is kept as buffered tokens so the bridge can read it
// several times (body, stanza ids, OMEMO payload).
package carbons // import "github.com/mxomemo/xmpp-bridge/xmpp/carbons"
