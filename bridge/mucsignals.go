package bridge

import (
	"context"
	"time"

	"go.mau.fi/util/random"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Typing (XEP-0085) and displayed markers (XEP-0333) in group chats, both
// ways (docs/group-chats.md).
//
// XEP-0085 §5.5 lets occupants send chat states to the room, which
// reflects them to everyone; XEP-0333 (§4, groupchats) has markers in groupchats name the
// message by the room's stanza-id. So an occupant's <composing/> is its
// ghost typing in the portal, and its <displayed/> a read receipt of the
// portal message with that stanza-id; our own nick's markers (the user's
// other XMPP clients) are the user's receipts. Matrix typing goes to the
// room as a chat state (not stored), and a Matrix read receipt of a message
// that asked for markers as a displayed marker with its stanza-id. Only
// live stanzas count: none from the archive, none delayed (join history).

// groupSignals bridges the chat state and displayed markers (sig) of a live
// groupchat stanza from room.
func (c *Client) groupSignals(room xmppclient.Room, m mucroom.Message, sig xmppclient.Signals, hasBody bool) {
	nick := m.Nick()
	if nick == "" || !m.Delay.IsZero() {
		return
	}
	sender := roomSender(room, nick, c.account, c.login.ID)
	key := c.mucKey(room.JID)
	if sig.ChatState != "" && !sender.IsFromMe {
		c.login.QueueRemoteEvent(&simplevent.Typing{
			EventMeta: simplevent.EventMeta{Type: bridgev2.RemoteEventTyping, PortalKey: key, Sender: sender},
			Timeout:   typingTimeoutFor(sig.ChatState, hasBody),
		})
	}
	for _, marker := range sig.Markers {
		if marker.Kind != markers.Displayed || marker.ID == "" {
			continue
		}
		c.login.QueueRemoteEvent(&simplevent.Receipt{
			EventMeta:  simplevent.EventMeta{Type: bridgev2.RemoteEventReadReceipt, PortalKey: key, Sender: sender},
			LastTarget: portal.MakeMessageID(room.JID.Bare(), jid.JID{}, "sid:"+marker.ID),
		})
	}
}

// typingTimeoutFor is how long a chat state keeps the ghost typing: a
// <composing/> without text until the XEP-0085 fallback to paused, any
// other state (or one on a message) stops it.
func typingTimeoutFor(state chatstates.State, hasBody bool) time.Duration {
	if state == chatstates.Composing && !hasBody {
		return typingTimeout
	}
	return 0
}

// sendGroupTyping is HandleMatrixTyping for a room portal.
func (c *Client) sendGroupTyping(ctx context.Context, room jid.JID, typing bool) error {
	if r, ok := c.mucs.Get(room); !ok || !r.Joined {
		return nil
	}
	state := chatstates.Paused
	if typing {
		state = chatstates.Composing
	}
	return c.sendSignal(ctx, xmppclient.Signal{To: room, Room: true, ID: random.String(24), ChatState: state})
}

// sendGroupMarker is HandleMatrixReadReceipt for a room portal: only for a
// message that asked for markers and has the room's stanza-id, and never
// for our own messages.
func (c *Client) sendGroupMarker(ctx context.Context, room jid.JID, msg *bridgev2.MatrixReadReceipt) error {
	meta, ok := msg.ExactMessage.Metadata.(*portal.MessageMetadata)
	if !ok || !meta.Markable || meta.StanzaID == "" || msg.ExactMessage.SenderID == c.GetUserID() {
		return nil
	}
	if r, ok := c.mucs.Get(room); !ok || !r.Joined {
		return nil
	}
	return c.sendSignal(ctx, xmppclient.Signal{To: room, Room: true, ID: random.String(24), Displayed: meta.StanzaID})
}
