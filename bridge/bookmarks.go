package bridge

import (
	"context"
	"errors"
	"sync"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/bookmarks"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Group chat bookmarks (XEP-0402, XEP-0048 fallback): the rooms the user
// has marked autojoin on their other clients become portals at login and
// when a bookmark is added; `join` adds an autojoin bookmark and `leave`
// clears autojoin, as Conversations and Gajim do, so the user's rooms stay
// the same on every client.

// bookmarkJoins keeps one join per room in flight when notifications come
// in quick succession.
var bookmarkJoins sync.Map // login ID + room -> struct{}

// syncBookmarks adds the account's autojoin bookmarks to the saved rooms,
// so that the rejoin after a connect enters them too. Failures are logged:
// the saved rooms are joined anyway.
func (c *Client) syncBookmarks(ctx context.Context, s *xmpp.Session) {
	log := zerolog.Ctx(ctx)
	compat := xmppclient.BookmarksCompat(ctx, s)
	marks, err := xmppclient.FetchBookmarks(ctx, s, compat)
	if err != nil {
		log.Warn().Err(err).Msg("Failed to read (some) group chat bookmarks")
	}
	log.Debug().Bool("xep0048_synced_by_server", compat).Int("bookmarks", len(marks)).Msg("Read group chat bookmarks")
	saved := map[string]bool{}
	for _, r := range c.savedRooms() {
		saved[r.JID] = true
	}
	for _, b := range marks {
		if !b.Autojoin || saved[b.JID.String()] {
			continue
		}
		nick := b.Nick
		if nick == "" {
			nick = c.defaultNick()
		}
		log.Info().Stringer("room", b.JID).Msg("Joining bookmarked group chat")
		// Saved without a first join's time: the rejoin below records
		// its join's. A time from now would make that join's catch-up
		// bring what was said in the seconds before it beside the
		// room's history, as it does for a rejoin after a crash.
		if err := c.saveRoom(ctx, b.JID, nick, 0); err != nil {
			log.Err(err).Stringer("room", b.JID).Msg("Failed to remember bookmarked room")
		}
		if b.Password != "" {
			c.storeRoomPassword(ctx, b.JID, b.Password)
		}
	}
}

// handleBookmarkEvent handles a XEP-0402 notification and reports whether
// st was one. Only notifications of the account's own node count: anyone
// else's bookmarks say nothing about our rooms.
func (c *Client) handleBookmarkEvent(ctx context.Context, ev pubsub.Event) bool {
	log := zerolog.Ctx(ctx)
	marks, ok, err := xmppclient.BookmarksNotification(ev)
	if !ok {
		return false
	}
	if !ev.From.Equal(jid.JID{}) && !ev.From.Bare().Equal(c.account.Bare()) {
		log.Warn().Stringer("from", ev.From).Msg("Ignoring bookmarks notification from someone else")
		return true
	}
	if err != nil {
		log.Warn().Err(err).Msg("Ignoring malformed bookmarks")
	}
	for _, b := range marks {
		if b.Autojoin {
			c.joinBookmark(b)
		} else {
			c.leaveBookmark(b.JID)
		}
	}
	for _, id := range ev.Retracted {
		if room, err := jid.Parse(id); err == nil {
			c.leaveBookmark(room.Bare())
		}
	}
	return true
}

// joinBookmark joins a room bookmarked with autojoin on another client. It
// runs apart from the incoming loop, which must go on to read the room's
// answer.
func (c *Client) joinBookmark(b bookmarks.Conference) {
	if c.rejoining.Load() {
		// The rejoin after a connect reads all bookmarks itself
		// (syncBookmarks); a second join of the same room now would race it.
		return
	}
	if r, ok := c.mucs.Get(b.JID); ok && r.Joined {
		return
	}
	for _, r := range c.savedRooms() {
		if r.JID == b.JID.String() {
			// Saved and not joined: the rejoin is under way or has
			// answered with a notice.
			return
		}
	}
	key := string(c.login.ID) + " " + b.JID.String()
	if _, busy := bookmarkJoins.LoadOrStore(key, struct{}{}); busy {
		return
	}
	go func() {
		defer bookmarkJoins.Delete(key)
		ctx, cancel := context.WithTimeout(c.backgroundCtx(), 2*xmppclient.JoinTimeout)
		defer cancel()
		log := zerolog.Ctx(ctx).With().Stringer("room", b.JID).Logger()
		nick := b.Nick
		if nick == "" {
			nick = c.defaultNick()
		}
		password := b.Password
		if password == "" {
			password = c.roomPassword(ctx, b.JID)
		}
		res, err := c.joinRoomPassword(ctx, b.JID, nick, password)
		if err != nil {
			log.Warn().Err(err).Msg("Failed to join bookmarked group chat")
			c.queueRoomNotice(b.JID, "Could not join the bookmarked group chat: "+joinErrorText(b.JID, nick, err))
			return
		}
		if err := c.rememberRoom(ctx, b.JID, nick); err != nil {
			log.Err(err).Msg("Failed to remember bookmarked room")
		}
		if b.Password != "" {
			c.storeRoomPassword(ctx, b.JID, b.Password)
		}
		log.Info().Str("nick", res.Nick).Msg("Joined group chat bookmarked on another client")
	}()
}

// leaveBookmark leaves a room whose bookmark lost autojoin or was removed
// on another client; the portal stays for its history.
func (c *Client) leaveBookmark(room jid.JID) {
	saved := false
	for _, r := range c.savedRooms() {
		saved = saved || r.JID == room.String()
	}
	if !saved {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(c.backgroundCtx(), 2*xmppclient.LeaveTimeout)
		defer cancel()
		if err := c.leaveRoom(ctx, room); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", room).Msg("Failed to leave group chat unbookmarked on another client")
			return
		}
		c.queueRoomNotice(room, "You left this group chat on another XMPP client (its bookmark no longer joins it). `join "+room.String()+"` enters it again.")
	}()
}

// setBookmark writes the room's bookmark with autojoin as given; errors
// are for the command's answer.
func (c *Client) setBookmark(ctx context.Context, room jid.JID, nick string, autojoin bool) error {
	s := c.currentSession()
	if s == nil {
		return xmppclient.ErrNotConnected
	}
	ctx, cancel := context.WithTimeout(ctx, 2*xmppclient.IQTimeout)
	defer cancel()
	err := xmppclient.SetBookmark(ctx, s, room, nick, autojoin, xmppclient.BookmarksCompat(ctx, s))
	if err != nil && !errors.Is(err, context.Canceled) {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", room).Bool("autojoin", autojoin).Msg("Failed to update bookmark")
	}
	return err
}
