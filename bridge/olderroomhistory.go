package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Older group chat history on request (docs/group-chats.md). A new room
// portal gets the room's newest archive page (muchistory.go); `history
// [count]` in a room portal reads the page before the portal's oldest
// message, then before the oldest one shown, from the room's own archive
// (XEP-0313 on the room JID) and posts it as one transcript notice from the
// bridge bot, as in 1:1 chats (olderhistory.go) and for the same reason:
// Synapse and Dendrite can only append events. Corrections replace the text
// of their message when both are in the transcript, retractions remove it,
// reactions are left out; OMEMO messages are not decrypted for it (that
// would move the live ratchets out of order).

// roomHistoryLine is one message of a room transcript.
type roomHistoryLine struct {
	At       time.Time
	Nick     string
	Body     string
	stanzaID string
	// ids are the ids the sender gave the message (id, origin-id), which
	// its corrections name.
	ids []string
}

// olderRoomHistoryPage is one page of a room's older history, oldest first.
type olderRoomHistoryPage struct {
	Lines []roomHistoryLine
	Next  string
	More  bool
}

// roomHistoryAnchor is where the first `history` in a room portal starts:
// before the portal's oldest message, by the room's stanza-id (archive ids
// of a room are its stanza-ids) or, without one, by its time.
func roomHistoryAnchor(first *database.Message) history.Query {
	q := history.Query{Last: true}
	if first == nil {
		return q
	}
	sid := messageStanzaID(first)
	if sid == "" {
		if id, err := portal.ParseMessageID(first.ID); err == nil && strings.HasPrefix(id.ID, "sid:") {
			sid = strings.TrimPrefix(id.ID, "sid:")
		}
	}
	if sid != "" {
		q.PageID = sid
	} else {
		q.End = first.Timestamp
	}
	return q
}

// fetchOlderRoomHistory reads up to n messages of room's archive before
// cursor (an archive id) or, without one, before the portal's oldest message.
func (c *Client) fetchOlderRoomHistory(ctx context.Context, p *bridgev2.Portal, room jid.JID, cursor string, n int) (olderRoomHistoryPage, error) {
	s := c.currentSession()
	if s == nil {
		return olderRoomHistoryPage{}, xmppclient.ErrNotConnected
	}
	r, ok := c.mucs.Get(room)
	if !ok {
		r = xmppclient.Room{JID: room.Bare()}
	}
	q := history.Query{Last: true, PageID: cursor}
	if cursor == "" {
		first, err := c.main.Bridge.DB.Message.GetFirstPortalMessage(ctx, p.PortalKey)
		if err != nil {
			return olderRoomHistoryPage{}, fmt.Errorf("failed to get the portal's first message: %w", err)
		}
		q = roomHistoryAnchor(first)
	}
	var (
		all  []xmppclient.Groupchat
		sids []string
	)
	fetch := func(q history.Query) ([]xmppclient.Archived, history.Result, error) {
		q.ID = c.mam.AddRoomBackfill(room)
		return c.mam.Collected(ctx, s, q, room.Bare(), backfillQueryTimeout)
	}
	oldest, complete, err := pageBackward(q, n, fetch, func(got []xmppclient.Archived) int {
		messages := 0
		var pageGs []xmppclient.Groupchat
		var pageSids []string
		for _, a := range got {
			rm, err := a.RoomMessage()
			if err != nil {
				continue
			}
			g := xmppclient.ReadGroupchat(rm, r)
			if g.Timestamp.IsZero() {
				g.Timestamp = a.Stamp
			}
			if g.Kind != xmppclient.GroupchatMessage || c.inRoomPortal(ctx, p, room, a.ArchiveID) {
				continue
			}
			if g.Replace == "" && g.Retract == "" && g.Reactions == nil {
				messages++
			}
			pageGs, pageSids = append(pageGs, g), append(pageSids, a.ArchiveID)
		}
		all, sids = append(pageGs, all...), append(pageSids, sids...)
		return messages
	})
	if err != nil {
		return olderRoomHistoryPage{}, fmt.Errorf("failed to query the room's archive: %w", err)
	}
	return olderRoomHistoryPage{Lines: foldRoomHistory(all, sids), Next: oldest, More: !complete}, nil
}

// inRoomPortal reports whether the portal has the room's message with
// stanzaID.
func (c *Client) inRoomPortal(ctx context.Context, p *bridgev2.Portal, room jid.JID, stanzaID string) bool {
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, p.Receiver, portal.MakeMessageID(room.Bare(), jid.JID{}, "sid:"+stanzaID))
	return err == nil && msg != nil
}

// foldRoomHistory turns a room's archived messages (oldest first, with
// their stanza-ids) into transcript lines: corrections by the same nick
// replace the text of the message they name, retractions (by stanza-id)
// remove it, reactions are dropped.
func foldRoomHistory(gs []xmppclient.Groupchat, sids []string) []roomHistoryLine {
	var lines []roomHistoryLine
	for i, g := range gs {
		switch {
		case g.Reactions != nil:
		case g.Retract != "":
			lines = slices.DeleteFunc(lines, func(l roomHistoryLine) bool { return l.stanzaID == g.Retract && l.Nick == g.Nick })
		case g.Replace != "":
			for j := range lines {
				if lines[j].Nick == g.Nick && slices.Contains(lines[j].ids, g.Replace) {
					lines[j].Body = roomHistoryBody(g)
				}
			}
		default:
			var ids []string
			for _, id := range []string{g.XMPPID, g.OriginID} {
				if id != "" {
					ids = append(ids, id)
				}
			}
			lines = append(lines, roomHistoryLine{At: g.Timestamp, Nick: g.Nick, Body: roomHistoryBody(g), stanzaID: sids[i], ids: ids})
		}
	}
	return lines
}

// roomHistoryBody is what the transcript shows of g: never an OMEMO
// message's fallback text, never an aesgcm link's key.
func roomHistoryBody(g xmppclient.Groupchat) string {
	if g.Encrypted {
		return "[OMEMO message, not decrypted for history]"
	}
	if aesgcm.IsLink(strings.TrimSpace(g.Body)) {
		return "[encrypted file, open it in an XMPP client]"
	}
	return g.Body
}

// roomHistoryTranscript is the notice text of a page of room's history.
func roomHistoryTranscript(page olderRoomHistoryPage, room jid.JID) string {
	if len(page.Lines) == 0 {
		return "No older messages in " + room.String() + " in the room's archive."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Older messages in %s from the room's archive (%d, UTC):\n", room, len(page.Lines))
	for _, l := range page.Lines {
		ts := l.At.UTC().Format("2006-01-02 15:04")
		b.WriteString(ts + " " + l.Nick + ": " + strings.ReplaceAll(l.Body, "\n", "\n    ") + "\n")
	}
	if page.More {
		b.WriteString("(`history` again for earlier ones)")
	} else {
		b.WriteString("(the beginning of the room's archive)")
	}
	return b.String()
}
