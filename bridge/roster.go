package bridge

import (
	"context"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"

	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// fetchRoster loads the roster and brings every contact's ghost up to date.
func (c *Client) fetchRoster(ctx context.Context, s *xmpp.Session) error {
	items, err := xmppclient.FetchRoster(ctx, s)
	if err != nil {
		return err
	}
	c.roster.Replace(items)
	zerolog.Ctx(ctx).Debug().Int("contacts", len(items)).Msg("Fetched roster")
	go c.syncGhosts(context.WithoutCancel(ctx), items)
	return nil
}

// syncGhosts pushes roster names to the ghosts of the given contacts.
func (c *Client) syncGhosts(ctx context.Context, items []roster.Item) {
	for _, item := range items {
		if item.Subscription == "remove" || item.JID.Equal(jid.JID{}) {
			continue
		}
		ghost, err := c.main.Bridge.GetGhostByID(ctx, puppet.UserID(item.JID))
		if err != nil {
			zerolog.Ctx(ctx).Err(err).Stringer("contact", item.JID).Msg("Failed to get ghost")
			continue
		}
		ghost.UpdateInfo(ctx, c.userInfo(item.JID))
		c.initialAvatar(ctx, ghost, item.JID)
	}
}

// handleRosterPush runs inside Serve: it only updates the cache and leaves
// the ghost update to a goroutine.
func (c *Client) handleRosterPush(ver string, item roster.Item) error {
	c.roster.Set(item)
	ctx := c.backgroundCtx()
	go c.syncGhosts(ctx, []roster.Item{item})
	return nil
}
