// Package xmppclient is the XMPP side of one login, growing out of the
// bridge package: the parts of the protocol client that know nothing of
// bridgev2 or Matrix. Today it holds the reconnect backoff (backoff.go), the
// roster and presence cache (roster.go) and the parsing of message stanzas
// into typed messages (message.go); the connection loop, routing, archive,
// rooms and OMEMO orchestration still live in bridge/ and move here in later
// steps (docs/architecture.md, "Where it is going").
//
// It may import mellium, our xmpp/* stanza packages and omemo*; it must
// never import bridge, portal, puppet or anything of mautrix.
package xmppclient // import "github.com/mxomemo/xmpp-bridge/xmppclient"
