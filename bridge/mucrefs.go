package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// References in group chats name messages in two ways:
//   - replies (XEP-0461), reactions (XEP-0444) and retractions (XEP-0424)
//     use the stanza-id the room stamped, which is also the key of the
//     bridged message (groupchatMessageID);
//   - corrections (XEP-0308) use the id the sender gave the message (its
//     origin-id), kept in portal.MessageMetadata and looked up among the portal's
//     recent messages, only among the corrector's own.

// groupRefWindow is how many of a portal's latest messages a correction's
// target is looked for in: the origin-id is not part of the message key.
const groupRefWindow = 500

// groupStanzaID is the room's stanza-id of a bridged groupchat message, ""
// when the room stamped none.
func groupStanzaID(msg *database.Message) string {
	if p, err := portal.ParseMessageID(msg.ID); err == nil && p.StanzaID() != "" {
		return p.StanzaID()
	}
	if meta, ok := msg.Metadata.(*portal.MessageMetadata); ok {
		return meta.StanzaID
	}
	return ""
}

// groupOriginID is the id the sender gave a bridged groupchat message.
func groupOriginID(msg *database.Message) string {
	if meta, ok := msg.Metadata.(*portal.MessageMetadata); ok && meta.OriginID != "" {
		return meta.OriginID
	}
	if p, err := portal.ParseMessageID(msg.ID); err == nil {
		return p.SenderGivenID()
	}
	return ""
}

// matchGroupRef picks among msgs (newest last or in any order) the one
// with the given origin-id sent by sender ("" for anyone), or nil.
func matchGroupRef(msgs []*database.Message, sender networkid.UserID, originID string) *database.Message {
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if (sender == "" || m.SenderID == sender) && groupOriginID(m) == originID {
			return m
		}
	}
	return nil
}

// findGroupMessage returns the bridged message of room that id refers to:
// by stanza-id first when byStanzaID, else (and as fallback for clients
// that use the origin-id) by origin-id. sender, when set, must have sent it.
func (c *Client) findGroupMessage(ctx context.Context, room jid.JID, id string, byStanzaID bool, sender networkid.UserID) networkid.MessageID {
	if id == "" {
		return ""
	}
	db := c.main.Bridge.DB.Message
	if byStanzaID {
		key := portal.RoomMessageID(room, id, "", "")
		if msg, err := db.GetFirstPartByID(ctx, c.login.ID, key); err == nil && msg != nil {
			if sender == "" || msg.SenderID == sender {
				return key
			}
			return ""
		}
	}
	msgs, err := db.GetLastNInPortal(ctx, c.mucKey(room), groupRefWindow)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to look up a groupchat message")
		return ""
	}
	if m := matchGroupRef(msgs, sender, id); m != nil {
		return m.ID
	}
	return ""
}

// queueGroupRef bridges a groupchat message that refers to an earlier one:
// a correction, a retraction or a reaction set. It reports false for plain
// messages (replies included), which queueMessage bridges.
func (c *Client) queueGroupRef(ctx context.Context, g *incoming) bool {
	if g.Reactions == nil && g.Retract == "" && g.Replace == "" {
		return false
	}
	if isOwnReflection(g) {
		// The room's reflection of what the bridge sent for Matrix.
		return true
	}
	log := zerolog.Ctx(ctx)
	meta := c.eventMeta(g, bridgev2.RemoteEventUnknown)
	ctx = context.WithoutCancel(ctx)
	lookup := func(id string, byStanzaID bool, sender networkid.UserID) func() networkid.MessageID {
		return func() networkid.MessageID {
			target := c.findGroupMessage(ctx, g.Peer, id, byStanzaID, sender)
			if target != "" && sender != "" && !c.sameOccupant(ctx, target, g.Room.OccupantID) {
				log.Warn().Str("target_id", id).Str("muc_nick", g.Room.Nick).Msg("Ignoring a correction or retraction from another occupant with the same nick")
				target = ""
			}
			if target == "" {
				log.Debug().Str("target_id", id).Str("muc_nick", g.Room.Nick).Msg("Ignoring a reference to an unknown groupchat message")
			}
			return target
		}
	}
	switch {
	case g.Reactions != nil:
		meta.Type = bridgev2.RemoteEventReactionSync
		c.login.QueueRemoteEvent(msgconv.ReactionSync(meta, *g.Reactions, lookup(g.Reactions.ID, true, "")))
	case g.Retract != "":
		// XEP-0424: the room's stanza-id in groupchats; only the sender's
		// own message (moderation, XEP-0425, is not bridged).
		meta.Type = bridgev2.RemoteEventMessageRemove
		c.login.QueueRemoteEvent(&lazyMessageRemove{
			MessageRemove: simplevent.MessageRemove{EventMeta: meta},
			target:        msgconv.NewLazyTarget(lookup(g.Retract, true, g.Sender.Sender)),
		})
	case g.Body == "":
	default:
		// XEP-0308: the id the occupant sent, only its own message.
		meta.Type = bridgev2.RemoteEventEdit
		c.login.QueueRemoteEvent(&lazyGroupEdit{
			Message: &simplevent.Message[*incoming]{
				EventMeta:       meta,
				Data:            g,
				ID:              g.ID,
				ConvertEditFunc: c.convertEdit,
			},
			target: msgconv.NewLazyTarget(lookup(g.Replace, false, g.Sender.Sender)),
		})
	}
	return true
}

type lazyMessageRemove struct {
	simplevent.MessageRemove
	target *msgconv.LazyTarget
}

func (e *lazyMessageRemove) GetTargetMessage() networkid.MessageID { return e.target.Resolve() }

type lazyGroupEdit struct {
	*simplevent.Message[*incoming]
	target *msgconv.LazyTarget
}

func (e *lazyGroupEdit) GetTargetMessage() networkid.MessageID { return e.target.Resolve() }

// groupReplyTarget finds the bridged message an XMPP reply in a room
// points at: by the room's stanza-id, as XEP-0461 says for groupchats.
func (c *Client) groupReplyTarget(ctx context.Context, in *incoming) *networkid.MessageOptionalPartID {
	if in.ReplyTo == nil {
		return nil
	}
	if id := c.findGroupMessage(ctx, in.Peer, in.ReplyTo.ID, true, ""); id != "" {
		return &networkid.MessageOptionalPartID{MessageID: id}
	}
	return nil
}

// groupReply is the XEP-0461 reply to target in room r: the room's
// stanza-id, and the occupant JID of its author when it is in the room.
func groupReply(r xmppclient.Room, target *database.Message, account jid.JID) *reply.Reply {
	id := groupStanzaID(target)
	if id == "" {
		return nil
	}
	rep := &reply.Reply{ID: id}
	nick := ""
	if target.SenderID == puppet.UserID(account) {
		nick = r.Nick
	} else {
		for n, o := range r.Occupants {
			if g, _ := roomGhost(r, o, account); g == target.SenderID {
				nick = n
				break
			}
		}
	}
	if nick != "" {
		if to, err := r.JID.WithResource(nick); err == nil {
			rep.To = to
		}
	}
	return rep
}

// ownGroupMessage checks that target is the user's own groupchat message:
// only those can be corrected or retracted.
func (c *Client) ownGroupMessage(target *database.Message) error {
	if target.SenderID != puppet.UserID(c.account) {
		return refusal(errors.New("only your own messages can be changed on XMPP"))
	}
	return nil
}

// sendGroupReactions sends the user's whole reaction set to a groupchat
// message, named by the room's stanza-id (XEP-0444).
func (c *Client) sendGroupReactions(ctx context.Context, room jid.JID, target networkid.MessageID, emojis []string) error {
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, target)
	if err != nil || msg == nil {
		return fmt.Errorf("failed to find the message reacted to: %w", err)
	}
	id := groupStanzaID(msg)
	if id == "" {
		return refusal(errors.New("the room gave this message no stanza-id, so it cannot be reacted to"))
	}
	return c.sendSignal(ctx, xmppclient.Signal{To: room, Room: true, ID: newMessageID(), Reactions: &reactions.Reactions{ID: id, Emojis: emojis}})
}

// sendGroupRetraction retracts the user's own groupchat message, named by
// the room's stanza-id (XEP-0424).
func (c *Client) sendGroupRetraction(ctx context.Context, room jid.JID, target *database.Message) error {
	if err := c.ownGroupMessage(target); err != nil {
		return err
	}
	id := groupStanzaID(target)
	if id == "" {
		return refusal(errors.New("the room gave this message no stanza-id, so it cannot be retracted"))
	}
	return c.sendSignal(ctx, xmppclient.Signal{To: room, Room: true, ID: newMessageID(), Retract: id})
}
