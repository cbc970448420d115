package bridge

import (
	"context"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// What strangers can make the bridge store. Any account on the federated
// network can send us PEP notifications (a server forwards those of
// accounts we never subscribed to); storing each would let a stranger grow
// the database without bound. Device lists are kept only of the JIDs the
// login has something to do with: roster contacts, chat peers (a DM
// portal exists), members of the rooms it is in, and JIDs whose list it
// already holds (fetched when they messaged us or when we sent to them).

// deviceListWanted reports whether a device list of j may be stored.
func (c *Client) deviceListWanted(ctx context.Context, j jid.JID) bool {
	j = j.Bare()
	if _, ok := c.roster.Get(j); ok {
		return true
	}
	if c.mucs.HasMember(j) {
		return true
	}
	if known, err := xmppclient.KnownDevices(ctx, c.omemoStore(), j); err == nil && known != nil {
		return true
	}
	// The table, not bridgev2's cache: this only asks whether it exists.
	p, err := c.main.Bridge.DB.Portal.GetByKey(ctx, portal.DMKey(j, c.login.ID))
	return err == nil && p != nil
}
