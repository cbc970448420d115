package bridge

import (
	"context"
	"testing"
	"time"

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

// TestJoinedSince: a room's first join bounds its catch-up and history a second early, at the
// second (servers compare in seconds); a room saved before the time was recorded has none.
func TestJoinedSince(t *testing.T) {
	for _, tc := range []struct {
		name     string
		joinedAt int64
		want     time.Time
	}{
		{"not recorded", 0, time.Time{}},
		{"on a second", time.Date(2026, 12, 7, 6, 0, 10, 0, time.UTC).UnixMilli(), time.Date(2026, 12, 7, 6, 0, 9, 0, time.UTC)},
		{"within a second", time.Date(2026, 12, 7, 6, 0, 10, 999e6, time.UTC).UnixMilli(), time.Date(2026, 12, 7, 6, 0, 9, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (SavedRoom{JoinedAt: tc.joinedAt}).joinedSince(); !got.Equal(tc.want) {
				t.Errorf("joinedSince = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRoomArchiveStart: a room with a watermark is caught up after it; one
// without gets the newest page of its archive when history backfill is on
// (up to its first join, when it was joined before), and everything since
// its first join, when it was joined before.
func TestRoomArchiveStart(t *testing.T) {
	joined := time.Date(2026, 12, 7, 6, 0, 9, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		after    string
		since    time.Time
		backfill bool
		initial  int
		ok       bool
		want     roomArchivePlan
	}{
		{"watermark", "A1", time.Time{}, true, 50, true, roomArchivePlan{after: "A1"}},
		{"watermark, backfill off", "A1", time.Time{}, false, 0, true, roomArchivePlan{after: "A1"}},
		{"watermark, joined before", "A1", joined, true, 50, true, roomArchivePlan{after: "A1"}},
		{"new room", "", time.Time{}, true, 20, true, roomArchivePlan{history: 20}},
		{"new room, backfill off", "", time.Time{}, false, 20, false, roomArchivePlan{}},
		{"new room, no initial messages", "", time.Time{}, true, 0, false, roomArchivePlan{}},
		{"nothing stored since the first join", "", joined, true, 20, true, roomArchivePlan{history: 20, since: joined}},
		{"nothing stored since the first join, backfill off", "", joined, false, 20, true, roomArchivePlan{since: joined}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := roomArchiveStart(tc.after, tc.since, tc.backfill, tc.initial)
			if ok != tc.ok || got != tc.want {
				t.Errorf("roomArchiveStart(%q, %v, %v, %d) = %+v, %v; want %+v, %v", tc.after, tc.since, tc.backfill, tc.initial, got, ok, tc.want, tc.ok)
			}
		})
	}
}
