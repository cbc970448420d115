// Package portal maps XMPP chats to bridgev2 portal keys.
//
// A 1:1 chat is keyed by the contact's bare JID and always belongs to one
// login (the receiver), because two accounts chatting with the same contact
// are two different conversations. A MUC is keyed by "muc:" plus the room's
// bare JID; the prefix cannot occur in a JID (':' is not allowed in a
// localpart), so the two kinds never collide. Whether MUC portals are shared
// between logins is the caller's choice.
//
// It also holds the message ID codec (messageid.go: chat, sender and XMPP id
// in one bridgev2 message ID; a group chat message keyed by the room's
// stanza-id, else by nick and the sender's id: RoomMessageID) and the typed
// metadata bridgev2 stores per portal and per message (metadata.go).
//
// And the chat info of each kind of chat (chatinfo.go: DMInfo, PMInfo,
// RoomInfo, RoomMembers), built from plain data the connector hands in.
//
// It imports mellium's jid package and bridgev2's types; it must never
// import the bridge package, the protocol client (xmppclient) or puppet.
package portal // import "github.com/mxomemo/xmpp-bridge/portal"
