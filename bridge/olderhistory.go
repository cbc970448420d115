package bridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Older 1:1 history on request (docs/backfill.md). bridgev2 pages older
// history backwards only through its backfill queue, which it runs only on
// homeservers with batch sending (Beeper's): on Synapse and Dendrite the
// messages would have to be sent as new events, after everything in the
// room. So `history [count]` in a 1:1 portal reads the next older page of
// the user's archive (the same query, classification and folding as the
// first batch, backfill.go) and posts it as one notice from the bridge bot,
// each line with its time and sender, oldest first; the portal remembers
// the oldest archive id shown, so the next `history` continues from there.
// Nothing is stored as a bridged message: the notice is a transcript, not
// the messages, and cannot be replied to or reacted to as them.

const (
	historyDefaultCount = 20
	historyMaxCount     = 100
)

// olderHistoryPage is one page of older history, oldest first.
type olderHistoryPage struct {
	Entries []*historyEntry
	// Next is the archive id to continue before; "" when the archive
	// gave nothing.
	Next string
	// More is false once the archive's beginning is reached.
	More bool
}

// fetchOlderHistory reads up to n archived messages with contact from
// before cursor (an archive id), or, without one, before the portal's
// oldest message.
func (c *Client) fetchOlderHistory(ctx context.Context, p *bridgev2.Portal, contact jid.JID, cursor string, n int) (olderHistoryPage, error) {
	s := c.currentSession()
	if s == nil {
		return olderHistoryPage{}, xmppclient.ErrNotConnected
	}
	first, err := c.main.Bridge.DB.Message.GetFirstPortalMessage(ctx, p.PortalKey)
	if err != nil {
		return olderHistoryPage{}, fmt.Errorf("failed to get the portal's first message: %w", err)
	}
	q := archiveQuery(contact, bridgev2.FetchMessagesParams{Forward: false, Cursor: networkid.PaginationCursor(cursor), AnchorMessage: first})
	if cursor == "" && first != nil {
		// Before the portal's oldest message by time, that message
		// included: archives stamp to the second (Prosody), so messages
		// of the same second are on either side; those in the portal are
		// left out below.
		q = history.Query{With: contact, Last: true, End: first.Timestamp.Add(time.Second)}
	}
	var ins []*incoming
	fetch := func(q history.Query) ([]xmppclient.Archived, history.Result, error) {
		return c.fetchArchivePage(ctx, s, q)
	}
	oldest, complete, err := pageBackward(q, n, fetch, func(got []xmppclient.Archived) int {
		var pageIns []*incoming
		for _, a := range got {
			in, err := parseArchivedMessage(a, c.account)
			if err != nil || !in.Peer.Equal(contact.Bare()) || c.inPortal(ctx, p, in) || !c.historyOMEMO(ctx, in) {
				continue
			}
			pageIns = append(pageIns, in)
		}
		ins = append(pageIns, ins...)
		return len(pageIns)
	})
	if err != nil {
		return olderHistoryPage{}, fmt.Errorf("failed to query the archive: %w", err)
	}
	out := olderHistoryPage{More: !complete, Next: oldest}
	out.Entries = foldHistory(ins, c.account)
	return out, nil
}

// inPortal reports whether the portal has the archived message in (by the
// ID backfill and the live path give it).
func (c *Client) inPortal(ctx context.Context, p *bridgev2.Portal, in *incoming) bool {
	sender := in.Peer
	if in.FromMe {
		sender = c.account
	}
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, p.Receiver, portal.MakeMessageID(in.Peer, sender, in.XMPPID))
	return err == nil && msg != nil
}

// historyLine is one message of the transcript. An aesgcm:// link is never
// shown: its fragment is the file's key.
func historyLine(e *historyEntry, contact jid.JID) string {
	who := contact.Bare().String()
	if e.In.FromMe {
		who = "you"
	}
	ts := e.In.Timestamp.UTC().Format("2006-01-02 15:04")
	body := e.In.Body
	if aesgcm.IsLink(strings.TrimSpace(body)) {
		body = "[encrypted file, open it in an XMPP client]"
	}
	body = strings.ReplaceAll(body, "\n", "\n    ")
	return ts + " " + who + ": " + body
}

// historyTranscript is the notice text of a page.
func historyTranscript(page olderHistoryPage, contact jid.JID) string {
	if len(page.Entries) == 0 {
		return "No older messages with " + contact.String() + " in your XMPP archive."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Older messages with %s from your XMPP archive (%d, UTC):\n", contact, len(page.Entries))
	for _, e := range page.Entries {
		b.WriteString(historyLine(e, contact))
		b.WriteByte('\n')
	}
	if page.More {
		b.WriteString("(`history` again for earlier ones)")
	} else {
		b.WriteString("(the beginning of the archive)")
	}
	return b.String()
}

// historyCommandHandler is the `history` portal command.
func (xc *Connector) historyCommandHandler() commands.CommandHandler {
	return &commands.FullHandler{
		Func: xc.cmdHistory,
		Name: "history",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionChats,
			Description: "In a 1:1 chat or a group chat: show older messages from your XMPP archive or the room's (the next page each time) as one notice.",
			Args:        "[count]",
		},
		RequiresLogin:  true,
		RequiresPortal: true,
	}
}

func (xc *Connector) cmdHistory(ce *commands.Event) {
	c, chat, room, err := commandClient(ce)
	if err != nil {
		ce.Reply("%s", err.Error())
		return
	}
	if chat.Equal(jid.JID{}) && room.Equal(jid.JID{}) {
		ce.Reply("`history` works in the room of a 1:1 chat or a group chat.")
		return
	}
	n := historyDefaultCount
	if len(ce.Args) > 0 {
		if n, err = strconv.Atoi(ce.Args[0]); err != nil || n < 1 || n > historyMaxCount {
			ce.Reply("Usage: `$cmdprefix history [count]`, count from 1 to %d.", historyMaxCount)
			return
		}
	}
	meta, _ := ce.Portal.Metadata.(*portal.Metadata)
	if meta == nil {
		meta = &portal.Metadata{}
		ce.Portal.Metadata = meta
	}
	ctx, cancel := context.WithTimeout(ce.Ctx, 2*time.Minute)
	defer cancel()
	var text, next string
	if !room.Equal(jid.JID{}) {
		page, err := c.fetchOlderRoomHistory(ctx, ce.Portal, room, meta.HistoryCursor, n)
		if err != nil {
			ce.Reply("Could not read the group chat's archive: %s", err.Error())
			return
		}
		text, next = roomHistoryTranscript(page, room), page.Next
	} else {
		page, err := c.fetchOlderHistory(ctx, ce.Portal, chat, meta.HistoryCursor, n)
		if err != nil {
			ce.Reply("Could not read your XMPP archive: %s", err.Error())
			return
		}
		text, next = historyTranscript(page, chat), page.Next
	}
	ce.ReplyAdvanced(text, false, false)
	if next != "" {
		meta.HistoryCursor = next
		if err := ce.Portal.Save(ce.Ctx); err != nil {
			ce.Log.Err(err).Msg("Failed to save the history cursor")
		}
	}
}
