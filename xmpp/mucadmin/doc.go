// Package mucadmin implements the parts of XEP-0045: Multi-User Chat that
// the bridge needs for OMEMO in groupchats and mellium.im/xmpp/muc lacks.
//
// OMEMO in a room encrypts for the devices of every member's real JID, so
// the bridge must know the real JIDs: from the affiliation lists (admin
// <query/> for member, admin and owner, §9.5, §10.5, §10.8), from the
// <item jid='…'/> in occupants' presence (ParseUser), and it must know that
// the room is non-anonymous (everyone may see real JIDs), from the room's
// disco#info features (muc_nonanonymous, readable by anyone) or its owner
// configuration (muc#roomconfig_whois=anyone).
//
// mellium.im/xmpp/muc can join rooms, set one affiliation and fetch the
// owner configuration form, which this package reads but does not repeat.
package mucadmin // import "github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
