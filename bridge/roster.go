package bridge

import (
	"context"
	"encoding/xml"
	"fmt"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmpp/vcardphoto"
)

// fetchRoster loads the roster and brings every contact's ghost up to date.
func (c *Client) fetchRoster(ctx context.Context, s *xmpp.Session) error {
	iter := roster.Fetch(ctx, s)
	var items []roster.Item
	for iter.Next() {
		items = append(items, iter.Item())
	}
	err := iter.Err()
	_ = iter.Close()
	if err != nil {
		return fmt.Errorf("failed to fetch roster: %w", err)
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

// handlePresence tracks which contacts are online. Subscription requests are
// left to the user's other clients: approving them is a privacy decision.
func (c *Client) handlePresence(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	p, err := stanza.NewPresence(*start)
	if err != nil {
		return nil
	}
	switch p.Type {
	case stanza.AvailablePresence:
		c.roster.SetOnline(p.From, true)
		st, err := stanzabuf.Read(xmlstream.MultiReader(xmlstream.Token(*start), t))
		if err != nil {
			return nil
		}
		if u, ok, err := vcardphoto.ParseUpdate(st.Reader()); err == nil && ok {
			c.handleAvatarUpdate(p.From, u)
		}
		c.readContactPresence(st)
	case stanza.UnavailablePresence:
		c.roster.SetOnline(p.From, false)
		if st, err := stanzabuf.Read(xmlstream.MultiReader(xmlstream.Token(*start), t)); err == nil {
			c.readContactPresence(st)
		}
	case stanza.SubscribePresence:
		c.login.Log.Info().Stringer("from", p.From.Bare()).Msg("Contact asked to see our presence; answer it from an XMPP client")
	}
	return nil
}
