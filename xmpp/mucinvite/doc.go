// Package mucinvite implements group chat invitations: XEP-0249 Direct MUC
// Invitations (<x xmlns='jabber:x:conference'/> sent by the inviter to the
// invitee) and XEP-0045 §7.8.2 mediated invitations and declines
// (<x xmlns='http://jabber.org/protocol/muc#user'><invite/></x>, sent
// through the room, which adds the invitee to the member list of a
// members-only room when the inviter may).
//
// Parse reads either kind from a message stanza; Mediated and Decline build
// the stanzas the bridge sends. The package knows nothing of the bridge.
package mucinvite // import "github.com/mxomemo/xmpp-bridge/xmpp/mucinvite"
