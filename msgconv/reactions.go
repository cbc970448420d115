package msgconv

import (
	"fmt"
	"sync"

	"go.mau.fi/util/variationselector"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
)

// XEP-0444 reactions carry the sender's whole set of reactions to a
// message, so incoming ones become a reaction sync for that sender, and
// outgoing ones are computed from what bridgev2 has stored for the user.

// LazyTarget resolves the target of an event when bridgev2 handles it in the portal's event loop,
// after the messages queued before it have been stored: a reaction or correction that follows its
// message closely (offline delivery, archive catch-up) would not find it at queue time.
type LazyTarget struct {
	once   sync.Once
	id     networkid.MessageID
	lookup func() networkid.MessageID
}

// NewLazyTarget is the target lookup finds, looked up once, when first asked.
func NewLazyTarget(lookup func() networkid.MessageID) *LazyTarget {
	return &LazyTarget{lookup: lookup}
}

// Resolve looks the target up (once).
func (t *LazyTarget) Resolve() networkid.MessageID {
	t.once.Do(func() { t.id = t.lookup() })
	return t.id
}

// LazyReactionSync is a reaction sync whose target message is looked up
// only when bridgev2 handles it.
type LazyReactionSync struct {
	simplevent.ReactionSync
	target *LazyTarget
}

var _ bridgev2.RemoteReactionSync = (*LazyReactionSync)(nil)

// GetTargetMessage implements bridgev2.RemoteEventWithTargetMessage.
func (e *LazyReactionSync) GetTargetMessage() networkid.MessageID { return e.target.Resolve() }

// ReactionSync is the event for a sender's whole XEP-0444 reaction set, in
// a 1:1 chat or a group chat; lookup finds the target message.
func ReactionSync(meta simplevent.EventMeta, r reactions.Reactions, lookup func() networkid.MessageID) *LazyReactionSync {
	user := &bridgev2.ReactionSyncUser{HasAllReactions: true}
	for _, emoji := range r.Emojis {
		user.Reactions = append(user.Reactions, &bridgev2.BackfillReaction{
			Sender:    meta.Sender,
			EmojiID:   networkid.EmojiID(emoji),
			Emoji:     emoji,
			Timestamp: meta.Timestamp,
		})
	}
	return &LazyReactionSync{
		ReactionSync: simplevent.ReactionSync{
			EventMeta: meta,
			Reactions: &bridgev2.ReactionSyncData{
				Users: map[networkid.UserID]*bridgev2.ReactionSyncUser{meta.Sender.Sender: user},
			},
		},
		target: NewLazyTarget(lookup),
	}
}

// ReactionFromMatrix is the XMPP emoji of a Matrix reaction key, or an
// error the Matrix user is shown. XMPP clients send emoji without variation
// selectors; matching that keeps one reaction from turning into two.
func ReactionFromMatrix(key string) (string, error) {
	emoji := variationselector.Remove(key)
	if emoji == "" || len(emoji) > reactions.MaxReactionLen {
		return "", fmt.Errorf("the reaction %q cannot be sent over XMPP (empty, or longer than %d bytes)", emoji, reactions.MaxReactionLen)
	}
	return emoji, nil
}
