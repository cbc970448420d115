package bridge

import (
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/database"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestFoldRoomHistory: a room transcript shows messages oldest first, a
// correction by the same nick replaces its message's text (one by another
// nick does not), a retraction removes its message, reactions and OMEMO
// fallback texts never show, an aesgcm link never shows its key.
func TestFoldRoomHistory(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	msg := func(nick, id, body string) xmppclient.Groupchat {
		return xmppclient.Groupchat{Kind: xmppclient.GroupchatMessage, Nick: nick, XMPPID: id, Body: body, Timestamp: at}
	}
	correction := func(nick, id, target, body string) xmppclient.Groupchat {
		g := msg(nick, id, body)
		g.Replace = target
		return g
	}
	retraction := func(nick, sid string) xmppclient.Groupchat {
		g := msg(nick, "r-"+sid, "")
		g.Retract = sid
		return g
	}
	reaction := msg("carol", "x1", "")
	reaction.Reactions = &reactions.Reactions{ID: "S1", Emojis: []string{"👍"}}
	encrypted := msg("bob", "e1", "I sent you an OMEMO encrypted message")
	encrypted.Encrypted = true
	gs := []xmppclient.Groupchat{
		msg("bob", "m1", "first (typo)"),
		msg("carol", "m2", "second"),
		correction("bob", "m1c", "m1", "first (fixed)"),
		correction("carol", "m1x", "m1", "not carol's to fix"),
		msg("bob", "m3", "to be retracted"),
		retraction("bob", "S5"),
		reaction,
		encrypted,
		msg("carol", "m4", "aesgcm://example.org/f.jpg#00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677"),
	}
	sids := []string{"S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"}
	lines := foldRoomHistory(gs, sids)
	var got []string
	for _, l := range lines {
		got = append(got, l.Nick+": "+l.Body)
	}
	want := []string{
		"bob: first (fixed)",
		"carol: second",
		"bob: [OMEMO message, not decrypted for history]",
		"carol: [encrypted file, open it in an XMPP client]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("folded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	room := jid.MustParse("plans@conference.example.org")
	text := roomHistoryTranscript(olderRoomHistoryPage{Lines: lines, More: true}, room)
	for _, w := range []string{"Older messages in plans@conference.example.org from the room's archive (4, UTC):", "2026-12-01 09:30 bob: first (fixed)", "`history` again"} {
		if !strings.Contains(text, w) {
			t.Errorf("transcript lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "0011223344") || strings.Contains(text, "I sent you") {
		t.Errorf("transcript shows a key or a fallback text:\n%s", text)
	}
	if text := roomHistoryTranscript(olderRoomHistoryPage{}, room); !strings.HasPrefix(text, "No older messages") {
		t.Errorf("empty page: %q", text)
	}
}

// TestRoomHistoryAnchor: the first `history` in a room portal asks for the
// page before the portal's oldest message, by its stanza-id when known.
func TestRoomHistoryAnchor(t *testing.T) {
	room := jid.MustParse("plans@conference.example.org")
	ts := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		first  *database.Message
		pageID string
		end    bool
	}{
		{"empty portal", nil, "", false},
		{"stanza-id in metadata", &database.Message{ID: "x", Timestamp: ts, Metadata: &portal.MessageMetadata{StanzaID: "S9"}}, "S9", false},
		{"stanza-id in the message ID", &database.Message{ID: portal.MakeMessageID(room, jid.JID{}, "sid:S8"), Timestamp: ts}, "S8", false},
		{"no stanza-id", &database.Message{ID: portal.MakeMessageID(room, jid.JID{}, "nick:bob/hash:00"), Timestamp: ts}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := roomHistoryAnchor(tc.first)
			if !q.Last || q.PageID != tc.pageID || q.End.Equal(ts) != tc.end {
				t.Errorf("roomHistoryAnchor = %+v", q)
			}
		})
	}
}
