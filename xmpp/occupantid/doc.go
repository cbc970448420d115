// Package occupantid implements XEP-0421: Anonymous unique occupant
// identifiers for MUCs.
//
// A room that supports it (disco feature NS) stamps every groupchat message
// and presence with <occupant-id id='…'/>, an id that stays the same for one
// real user in that room whatever nick they use, and removes any such
// element a client sent itself. In rooms that hide real JIDs it is the only
// way to tell that a correction or retraction comes from the occupant who
// sent the original rather than a later one with the same nick. Without
// the room's feature the element may come from the sender and means
// nothing. mellium.im/xmpp has no occupant-id.
package occupantid // import "github.com/mxomemo/xmpp-bridge/xmpp/occupantid"
