package bridge

import (
	"context"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/mxomemo/xmpp-bridge/portal"
)

// In rooms that hide real JIDs an occupant is known by nick only, and a
// nick can pass to someone else after its owner left: the ghost (room/nick)
// is then the same, so "only the sender's own message" would let the new
// occupant correct or retract the old one's messages. Where the room
// stamps XEP-0421 occupant ids, the id of the original message is stored
// with it and a correction or retraction must carry the same one.

// sameOccupant reports whether the bridged message target was sent by the
// occupant with id occupant: true when the original carries no occupant id
// (a room without the feature, or older rows), else the ids must match.
func (c *Client) sameOccupant(ctx context.Context, target networkid.MessageID, occupant string) bool {
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, target)
	if err != nil || msg == nil {
		return false
	}
	meta, _ := msg.Metadata.(*portal.MessageMetadata)
	return occupantMatches(meta, occupant)
}

// occupantMatches is sameOccupant for the original's metadata.
func occupantMatches(meta *portal.MessageMetadata, occupant string) bool {
	return meta == nil || meta.OccupantID == "" || meta.OccupantID == occupant
}
