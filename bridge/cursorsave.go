package bridge

import (
	"context"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// cursorSaveDelay is how long a moved archive cursor (the account's or a
// room's, in the login metadata) may wait before it is written. Writing it
// for every message was a UserLogin.Save (metadata JSON and an UPDATE) per
// bridged message; now a burst costs one write per delay. A cursor that is
// behind after a crash is safe: the next catch-up reads the messages after
// it again and bridgev2 ignores the ids it already stored, so nothing is
// lost or doubled (docs/delivery.md), only re-read.
const cursorSaveDelay = time.Second

// noteArchiveID saves lane's cursor in the login metadata: the account's
// (also the newest archive id at the first connect, mam.go) or a room's
// (SavedRoom.LastArchiveID).
func (c *Client) noteArchiveID(ctx context.Context, lane, id string) {
	if id == "" {
		return
	}
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	meta := c.meta()
	cur := &meta.LastArchiveID
	if lane != xmppclient.AccountLane {
		i := slices.IndexFunc(meta.Rooms, func(r SavedRoom) bool { return r.JID == lane })
		if i < 0 {
			return
		}
		cur = &meta.Rooms[i].LastArchiveID
	}
	if *cur == id {
		return
	}
	*cur = id
	c.cursorSaveLocked()
}

// cursorSaveLocked schedules a write of the login metadata; metaMu is held.
func (c *Client) cursorSaveLocked() {
	if c.cursorPending {
		return
	}
	c.cursorPending = true
	time.AfterFunc(cursorSaveDelay, c.flushCursor)
}

// flushCursor writes the login metadata if a cursor write is pending.
func (c *Client) flushCursor() {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	if !c.cursorPending {
		return
	}
	c.cursorPending = false
	log := c.login.Log
	if err := c.login.Save(log.WithContext(c.main.Bridge.BackgroundCtx)); err != nil {
		zerolog.Ctx(log.WithContext(c.main.Bridge.BackgroundCtx)).Err(err).Msg("Failed to save the archive cursor")
	}
}
