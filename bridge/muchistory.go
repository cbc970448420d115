package bridge

import (
	"time"
)

// Room history (docs/group-chats.md): a room joined without an archive
// watermark — a new portal, or a room rejoined after `leave` — gets the
// room's most recent messages from its archive (XEP-0313 on the room JID)
// before its live messages, through the same catch-up path as a room
// rejoined after downtime (mucarchive.go). So history, catch-up and live
// copies of a message share one bridgev2 message ID (the room's
// stanza-id) and are bridged once; they are handled in the room's order,
// decrypted in order when they are OMEMO messages, and move the room's
// watermark as they are stored. The bridge joins with maxstanzas=0, so
// the room's own join history never competes with the archive.

// roomArchivePlan is what a room's catch-up asks the room's archive for.
type roomArchivePlan struct {
	// after is the room's watermark ("" for none): everything after it.
	after string
	// history, for a room without a watermark, is how many of the
	// archive's newest messages (up to since, when set) come first.
	history uint64
	// since, for a room without a watermark, is the login's first join of
	// it (SavedRoom.JoinedAt; zero on the first join): everything from
	// then on follows the history, so that a crash before the room's
	// first stored message loses nothing.
	since time.Time
}

// roomArchiveStart is the plan of a room's catch-up: after the watermark
// when there is one; else the newest `backfill.max_initial_messages`
// messages (the last page, RSM <before/>) when history backfill is on, and
// everything since the first join when the room was joined before. ok is
// false when there is nothing to ask for.
func roomArchiveStart(after string, since time.Time, backfill bool, initial int) (roomArchivePlan, bool) {
	switch {
	case after != "":
		return roomArchivePlan{after: after}, true
	case backfill && initial > 0:
		return roomArchivePlan{history: uint64(initial), since: since}, true
	case !since.IsZero():
		return roomArchivePlan{since: since}, true
	}
	return roomArchivePlan{}, false
}

// roomHistorySize says whether history backfill is on and how many
// messages a room without a watermark gets. It is one query of the last
// page, so the server's page limit (Prosody and ejabberd: 50 by default)
// caps it: paging backwards would hand the catch-up path the room's
// messages out of order.
func (c *Client) roomHistorySize() (bool, int) {
	cfg := c.main.Bridge.Config.Backfill
	return cfg.Enabled, cfg.MaxInitialMessages
}
