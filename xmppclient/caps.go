package xmppclient

import (
	"encoding/xml"
	"slices"
	"sync"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/bookmarks"
	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
)

// CapsNode is the XEP-0115 node of the bridge's client identity.
const CapsNode = "https://github.com/mxomemo/xmpp-bridge"

// CapsInfo is the disco#info the bridge's client advertises: with +notify for both
// OMEMO device-list nodes, so the server pushes contacts' device lists (and
// our own account's) to us, for avatar metadata and for the account's
// bookmarks. It is built once and shared by every session (each held its own
// copy); its slices are clipped, so a caller's append copies them.
func CapsInfo() caps.Info { return capsInfo() }

var capsInfo = sync.OnceValue(buildCapsInfo)

func buildCapsInfo() caps.Info {
	features := []string{
		caps.NSInfo,
		"urn:xmpp:ping",
		"urn:xmpp:carbons:2",
		"http://jabber.org/protocol/chatstates",
		"urn:xmpp:chat-markers:0",
		"urn:xmpp:message-correct:0",
		"urn:xmpp:reactions:0",
		"urn:xmpp:reply:0",
		"urn:xmpp:message-retract:1",
		"urn:xmpp:eme:0",
		"http://jabber.org/protocol/muc",
		omemo.NamespaceV03,
		omemo.NamespaceV2,
	}
	features = append(features, omemoxmpp.NotifyFeatures...)
	// Contacts' XEP-0084 avatar metadata, pushed like the device lists.
	features = append(features, caps.Notify(avatar.NSMetadata))
	// The user's group chat bookmarks (XEP-0402), to join rooms bookmarked
	// on other clients.
	features = append(features, caps.Notify(bookmarks.NS))
	return caps.Info{
		Identities: []caps.Identity{{Category: "client", Type: "bot", Name: "Matrix bridge"}},
		Features:   slices.Clip(features),
	}
}

// CapsElement is the <c/> for our presence, or nil if the info is broken
// (a programming error, caught by the tests).
func CapsElement() xml.TokenReader {
	c, err := CapsInfo().Caps(CapsNode)
	if err != nil {
		return nil
	}
	return c.TokenReader()
}
