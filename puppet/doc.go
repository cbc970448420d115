// Package puppet maps XMPP contacts to bridgev2 ghosts: a contact's bare JID
// is the ghost's network user ID (and an account's bare JID is its login ID),
// and the ghost's name comes from the roster, falling back to the JID. An
// occupant of a group chat that hides real JIDs gets a ghost of its own,
// keyed by its occupant JID (room@service/nick, see OccupantUserID);
// OccupantGhost says which ghost an occupant is.
//
// Metadata (metadata.go) is what bridgev2 stores per ghost: the names the
// roster and the contact gave, recorded through SetRosterName and SetNick.
//
// The ghost info of each kind of ghost (userinfo.go: ContactInfo, NickInfo,
// OccupantInfo) is built here from plain data the connector hands in.
//
// It imports mellium's jid package and bridgev2's types; it must never
// import the bridge package, the protocol client (xmppclient) or portal.
package puppet // import "github.com/mxomemo/xmpp-bridge/puppet"
