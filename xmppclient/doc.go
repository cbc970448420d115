// Package xmppclient is the XMPP side of one login, growing out of the
// bridge package: the parts of the protocol client that know nothing of
// bridgev2 or Matrix. Today it holds the reconnect backoff (backoff.go), the
// roster and presence cache (roster.go), the reading of 1:1 message stanzas
// into a typed Message (message.go), the classification of groupchat
// messages (groupchat.go), the live state of the login's rooms (rooms.go:
// occupants, our nick, joins and leaves from presences), joining and leaving
// rooms (roomjoin.go) and the avatar fetch (avatar.go: XEP-0084 metadata and
// data); the connection loop, routing, archive and OMEMO orchestration
// still live in bridge/ and move here in later
// steps (docs/architecture.md, "Where it is going").
//
// It may import mellium, our xmpp/* stanza packages and omemo*; it must
// never import bridge, portal, puppet or anything of mautrix.
package xmppclient // import "github.com/mxomemo/xmpp-bridge/xmppclient"
