package bridge

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// XEP-0444 reactions carry the sender's whole set of reactions to a message,
// so incoming ones become a reaction sync for that sender (msgconv), and
// outgoing ones are computed from what bridgev2 has stored for the user.

var _ bridgev2.ReactionHandlingNetworkAPI = (*Client)(nil)

// findMessage returns the ID of the bridged message an XMPP id refers to in
// a 1:1 chat, where either side may have written it; "" if none is known.
func (c *Client) findMessage(ctx context.Context, peer jid.JID, xmppID string, authors ...jid.JID) networkid.MessageID {
	if len(authors) == 0 {
		authors = []jid.JID{peer, c.account}
	}
	for _, author := range authors {
		id := portal.MakeMessageID(peer, author, xmppID)
		msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, id)
		if err == nil && msg != nil {
			return id
		}
	}
	return ""
}

func (c *Client) queueReactions(ctx context.Context, in *incoming, r reactions.Reactions) {
	log := zerolog.Ctx(ctx)
	meta := c.eventMeta(in, bridgev2.RemoteEventReactionSync)
	c.ackAfterHandling(in.ack, &meta, nil)
	res := c.login.QueueRemoteEvent(msgconv.ReactionSync(meta, r, func() networkid.MessageID {
		target := c.findMessage(context.WithoutCancel(ctx), in.Peer, r.ID)
		if target == "" {
			log.Debug().Str("target_id", r.ID).Msg("Ignoring reactions to an unknown message")
		}
		return target
	}))
	ackUnqueued(ctx, in.ack, res)
}

// PreHandleMatrixReaction implements bridgev2.ReactionHandlingNetworkAPI.
func (c *Client) PreHandleMatrixReaction(ctx context.Context, msg *bridgev2.MatrixReaction) (bridgev2.MatrixReactionPreResponse, error) {
	emoji, err := msgconv.ReactionFromMatrix(msg.Content.RelatesTo.Key)
	if err != nil {
		return bridgev2.MatrixReactionPreResponse{}, refusal(err)
	}
	return bridgev2.MatrixReactionPreResponse{
		SenderID:     puppet.UserID(c.account),
		EmojiID:      networkid.EmojiID(emoji),
		Emoji:        emoji,
		MaxReactions: reactions.MaxReactions,
	}, nil
}

// HandleMatrixReaction implements bridgev2.ReactionHandlingNetworkAPI.
func (c *Client) HandleMatrixReaction(ctx context.Context, msg *bridgev2.MatrixReaction) (*database.Reaction, error) {
	emojis := make([]string, 0, len(msg.ExistingReactionsToKeep)+1)
	for _, r := range msg.ExistingReactionsToKeep {
		emojis = append(emojis, string(r.EmojiID))
	}
	emojis = append(emojis, msg.PreHandleResp.Emoji)
	return &database.Reaction{}, c.sendReactions(ctx, msg.Portal, msg.TargetMessage.ID, emojis)
}

// HandleMatrixReactionRemove implements bridgev2.ReactionHandlingNetworkAPI.
func (c *Client) HandleMatrixReactionRemove(ctx context.Context, msg *bridgev2.MatrixReactionRemove) error {
	target := msg.TargetReaction
	all, err := c.main.Bridge.DB.Reaction.GetAllToMessageBySender(ctx, msg.Portal.Receiver, target.MessageID, target.SenderID)
	if err != nil {
		return fmt.Errorf("failed to get reactions: %w", err)
	}
	emojis := make([]string, 0, len(all))
	for _, r := range all {
		if r.EmojiID != target.EmojiID {
			emojis = append(emojis, string(r.EmojiID))
		}
	}
	return c.sendReactions(ctx, msg.Portal, target.MessageID, emojis)
}

func (c *Client) sendReactions(ctx context.Context, p *bridgev2.Portal, target networkid.MessageID, emojis []string) error {
	chat, err := portal.Parse(p.PortalKey)
	if err != nil {
		return err
	}
	if chat.Kind == portal.PM {
		return refusal(errPMUnsupported)
	}
	if err := c.awaitReady(ctx); err != nil {
		return err
	}
	parsed, err := portal.ParseMessageID(target)
	if err != nil {
		return err
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupReactions(ctx, chat.JID, target, emojis)
	}
	return c.sendSignal(ctx, xmppclient.Signal{To: chat.JID, ID: random.String(24), Reactions: &reactions.Reactions{ID: parsed.ID, Emojis: emojis}})
}
