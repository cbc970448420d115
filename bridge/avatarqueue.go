package bridge

import (
	"context"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/puppet"
)

// Avatar lookups are queued, one per contact (a newer request replaces a
// pending one), and run by one goroutine per login at a time: a flood of
// notifications costs a bounded map, not a goroutine each. Only contacts
// the login already knows (roster, or a ghost made when they messaged us)
// are looked up, so a stranger's notifications create no ghost.

// avatarQueueMax bounds the contacts waiting for an avatar lookup.
const avatarQueueMax = 256

// queueAvatar queues a lookup of contact's avatar.
func (c *Client) queueAvatar(ctx context.Context, contact jid.JID, req avatarRequest) {
	key := contact.Bare().String()
	a := &c.avatars
	a.mu.Lock()
	if a.pending == nil {
		a.pending = map[string]avatarRequest{}
	}
	if _, ok := a.pending[key]; !ok && len(a.pending) >= avatarQueueMax {
		a.mu.Unlock()
		zerolog.Ctx(ctx).Debug().Stringer("contact", contact).Msg("Avatar lookup queue full, dropping")
		return
	}
	a.pending[key] = req
	start := !a.running
	a.running = true
	a.mu.Unlock()
	if start {
		go c.runAvatarQueue(context.WithoutCancel(ctx))
	}
}

// runAvatarQueue looks up queued avatars until none is left.
func (c *Client) runAvatarQueue(ctx context.Context) {
	a := &c.avatars
	for {
		a.mu.Lock()
		var (
			key string
			req avatarRequest
		)
		for key, req = range a.pending {
			break
		}
		if key == "" {
			a.running = false
			a.mu.Unlock()
			return
		}
		delete(a.pending, key)
		a.mu.Unlock()
		if contact, err := jid.Parse(key); err == nil {
			c.refreshAvatar(ctx, contact, req)
		}
	}
}

// avatarWanted reports whether contact's avatar may be looked up: a roster
// contact, or someone with a ghost already (a stranger who messaged us).
func (c *Client) avatarWanted(ctx context.Context, contact jid.JID) bool {
	if _, ok := c.roster.Get(contact.Bare()); ok {
		return true
	}
	// The table, not bridgev2's cache (which would make the ghost).
	g, err := c.main.Bridge.DB.Ghost.GetByID(ctx, puppet.UserID(contact.Bare()))
	return err == nil && g != nil
}
