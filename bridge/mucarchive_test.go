package bridge

import (
	"context"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestRoomCatchUpDefersAndTracks: while a room's catch-up runs, that room's live groupchat
// messages wait (other rooms' and 1:1 messages do not); its results enter the room's watermark
// only from the running catch-up; live ones once it is over; a catch-up that did not reach the
// end of the archive stops the room's cursor.
func TestRoomCatchUpDefersAndTracks(t *testing.T) {
	ctx := context.Background()
	c := &Client{}
	room := jid.MustParse("room@muc.example.org")
	const (
		fromRoom  = `<message xmlns="jabber:client" from="room@muc.example.org/bob" type="groupchat" id="m1"><body>hi</body></message>`
		fromOther = `<message xmlns="jabber:client" from="other@muc.example.org/bob" type="groupchat" id="m1"><body>hi</body></message>`
		chat      = `<message xmlns="jabber:client" from="room@muc.example.org/bob" type="chat" id="m1"><body>hi</body></message>`
	)
	if c.deferRoomMessage(xmppclient.Classify(tokens(t, fromRoom))) {
		t.Fatal("deferred a room message with no catch-up")
	}
	c.handleRoomMark(ctx, xmppclient.Event{Mark: xmppclient.MarkRoomCatchUpStart, Seq: 5, Room: room.String()})
	for _, tc := range []struct {
		name, xml string
		want      bool
	}{
		{"the room's live message", fromRoom, true},
		{"another room's message", fromOther, false},
		{"a private message from an occupant", chat, false},
	} {
		if got := c.deferRoomMessage(xmppclient.Classify(tokens(t, tc.xml))); got != tc.want {
			t.Errorf("%s: deferred = %v, want %v", tc.name, got, tc.want)
		}
	}
	if n := len(c.delivery.rooms[room.String()].deferred); n != 1 {
		t.Fatalf("%d deferred, want 1", n)
	}
	c.delivery.rooms[room.String()].deferred = nil // handling them needs bridgev2
	if tk := c.roomTicket(room, "s1", 4); tk != nil {
		t.Error("a late result of an earlier catch-up was tracked")
	}
	if tk := c.roomTicket(room, "s1", 5); tk == nil || tk.Cursor() != c.delivery.rooms[room.String()].wm {
		t.Errorf("a result of the running catch-up was not tracked for the room: %+v", tk)
	}
	if tk := c.roomTicket(room, "", 5); tk != nil {
		t.Error("a message without stanza-id was tracked")
	}
	c.handleRoomMark(ctx, xmppclient.Event{Mark: xmppclient.MarkRoomCatchUpDone, Seq: 4, Room: room.String(), OK: true})
	if c.delivery.rooms[room.String()].catchingUp != 5 {
		t.Error("the end of an earlier catch-up ended the running one")
	}
	c.handleRoomMark(ctx, xmppclient.Event{Mark: xmppclient.MarkRoomCatchUpDone, Seq: 5, Room: room.String(), OK: true})
	if c.deferRoomMessage(xmppclient.Classify(tokens(t, fromRoom))) {
		t.Error("deferred a room message after the catch-up")
	}
	if tk := c.roomTicket(room, "s2", 0); tk == nil {
		t.Error("a live message after the catch-up was not tracked")
	}
	// A catch-up that stopped early: the cursor stays where it is.
	c.handleRoomMark(ctx, xmppclient.Event{Mark: xmppclient.MarkRoomCatchUpStart, Seq: 6, Room: room.String()})
	c.handleRoomMark(ctx, xmppclient.Event{Mark: xmppclient.MarkRoomCatchUpDone, Seq: 6, Room: room.String(), OK: false})
	if tk := c.roomTicket(room, "s3", 0); tk != nil {
		t.Error("a live message was tracked after a catch-up that did not reach the end")
	}
}

// TestIdlessHistory: of a room's discussion history (delayed groupchat messages outside an
// archive query), only messages without any id are skipped: those with an id, origin-id or
// stanza-id are told from the copies bridged live by their message id.
func TestIdlessHistory(t *testing.T) {
	const room = `from="room@muc.example.org/bob" type="groupchat"`
	const delay = `<delay xmlns="urn:xmpp:delay" from="room@muc.example.org" stamp="2026-12-07T06:00:00Z"/>`
	for _, tc := range []struct {
		name    string
		stanza  string
		catchUp uint64
		want    bool
	}{
		{"history without id", `<message xmlns="jabber:client" ` + room + `><body>hi</body>` + delay + `</message>`, 0, true},
		{"history with an id", `<message xmlns="jabber:client" ` + room + ` id="m1"><body>hi</body>` + delay + `</message>`, 0, false},
		{"history with an origin-id", `<message xmlns="jabber:client" ` + room + `><body>hi</body><origin-id xmlns="urn:xmpp:sid:0" id="o1"/>` + delay + `</message>`, 0, false},
		{"history with the room's stanza-id", `<message xmlns="jabber:client" ` + room + `><body>hi</body><stanza-id xmlns="urn:xmpp:sid:0" by="room@muc.example.org" id="s1"/>` + delay + `</message>`, 0, false},
		{"live without id", `<message xmlns="jabber:client" ` + room + `><body>hi</body></message>`, 0, false},
		{"archive result without id", `<message xmlns="jabber:client" ` + room + `><body>hi</body>` + delay + `</message>`, 7, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mucroom.ParseMessage(tokens(t, tc.stanza).Reader())
			if err != nil {
				t.Fatal(err)
			}
			if got := idlessHistory(m, tc.catchUp); got != tc.want {
				t.Errorf("idlessHistory = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRoomArchiveStart: a room with a watermark is caught up after it; one
// without gets the newest page of its archive only when history backfill
// is on.
func TestRoomArchiveStart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		after    string
		backfill bool
		initial  int
		ok       bool
		last     bool
		limit    uint64
	}{
		{"watermark", "A1", true, 50, true, false, mamPageSize},
		{"watermark, backfill off", "A1", false, 0, true, false, mamPageSize},
		{"new room", "", true, 20, true, true, 20},
		{"new room, backfill off", "", false, 20, false, false, 0},
		{"new room, no initial messages", "", true, 0, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, ok := roomArchiveStart(tc.after, tc.backfill, tc.initial)
			if ok != tc.ok || q.Last != tc.last || q.Limit != tc.limit || q.PageID != tc.after {
				t.Errorf("roomArchiveStart(%q, %v, %d) = %+v, %v", tc.after, tc.backfill, tc.initial, q, ok)
			}
		})
	}
}
