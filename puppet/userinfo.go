package puppet

import (
	"context"

	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/bridgev2"
	"mellium.im/xmpp/jid"
)

// The ghost info bridgev2 keeps each ghost up to date with, from plain
// data: the connector hands in the display name (formatted by its config's
// template) and where the name came from; what a ghost carries is decided
// here.

// ContactInfo is the ghost info of a contact as a roster names it:
// displayName, and rosterName ("" when the roster gives none) recorded in
// the ghost's metadata, so that another login without it keeps the name.
func ContactInfo(contact jid.JID, displayName, rosterName string) *bridgev2.UserInfo {
	return &bridgev2.UserInfo{
		Identifiers: []string{"xmpp:" + contact.Bare().String()},
		Name:        &displayName,
		IsBot:       ptr.Ptr(false),
		ExtraUpdates: func(_ context.Context, g *bridgev2.Ghost) bool {
			meta, _ := g.Metadata.(*Metadata)
			return meta.SetRosterName(rosterName)
		},
	}
}

// NickInfo is the ghost info of a contact outside every roster, named by
// its own nick (XEP-0172, or vCard): displayName, and the nick recorded in
// the ghost's metadata.
func NickInfo(displayName, nick string) *bridgev2.UserInfo {
	return &bridgev2.UserInfo{
		Name: &displayName,
		ExtraUpdates: func(_ context.Context, g *bridgev2.Ghost) bool {
			meta, _ := g.Metadata.(*Metadata)
			return meta.SetNick(nick)
		},
	}
}

// OccupantInfo is the ghost info of a room occupant whose real JID the room
// hides (room@service/nick): the nick is all that is known of it.
func OccupantInfo(occupant jid.JID, displayName string) *bridgev2.UserInfo {
	return &bridgev2.UserInfo{
		Identifiers: []string{"xmpp:" + occupant.String()},
		Name:        &displayName,
		IsBot:       ptr.Ptr(false),
	}
}
