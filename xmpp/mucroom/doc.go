// Package mucroom implements the occupant's side of XEP-0045: Multi-User
// Chat as the bridge takes part in rooms: the join and leave presences
// (§7.2, §7.14) with history control, the errors a join can end in, the
// occupant presences that tell who is in the room (§7.2.3, with the muc#user
// payload of mucadmin.ParseUser), groupchat messages with the room's
// stanza-id and subject changes (§7.4, §8.1), and the room's name from its
// disco#info (§6.4).
//
// mellium.im/xmpp/muc joins rooms through its own mux handler and only
// reports our own presence; the bridge reads every presence and message of
// a room itself, in one queue, so that occupant changes stay in order with
// the messages around them. This package therefore only builds and parses
// stanzas; mellium's muc is used for what fits as it is (its namespaces and
// SetConfig, which makes a new room an instant room).
//
// It imports mellium, mucadmin and sid, and nothing else of ours.
package mucroom // import "github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
