package bridge

import (
	"context"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestRoomCatchUpDefersAndTracks: while a room's catch-up runs, that room's live groupchat
// messages wait (other rooms' and 1:1 messages do not) and come after its end; its results enter
// the room's watermark only from the running catch-up; live ones once it is over; a catch-up that
// did not reach the end of the archive stops the room's cursor.
func TestRoomCatchUpDefersAndTracks(t *testing.T) {
	ctx := context.Background()
	c := &Client{}
	room := jid.MustParse("room@muc.example.org")
	lane := room.String()
	const (
		fromRoom  = `<message xmlns="jabber:client" from="room@muc.example.org/bob" type="groupchat" id="m1"><body>hi</body></message>`
		fromOther = `<message xmlns="jabber:client" from="other@muc.example.org/bob" type="groupchat" id="m2"><body>hi</body></message>`
		chat      = `<message xmlns="jabber:client" from="room@muc.example.org/bob" type="chat" id="m3"><body>hi</body></message>`
	)
	// handled records the stanzas handed on (handling them needs
	// bridgev2); marks go to the connector's step.
	var handled []string
	step := func(ev xmppclient.Event) {
		c.delivery.order.Step(ctx, ev, func(ctx context.Context, ev xmppclient.Event) {
			if ev.Mark != 0 {
				c.handleOrdered(ctx, ev)
				return
			}
			handled = append(handled, xmppclient.AttrValue(ev.In.Stanza.Start(), "id"))
		})
	}
	live := func(s string) xmppclient.Event { return xmppclient.Event{In: xmppclient.Classify(tokens(t, s))} }
	if tk := c.ticket(lane, "s0", false, 0); tk != nil {
		t.Error("a message of a room that never had a catch-up was tracked")
	}
	step(xmppclient.Event{Mark: xmppclient.MarkCatchUpStart, Seq: 5, Lane: lane})
	step(live(fromRoom))
	step(live(fromOther))
	step(live(chat))
	if want := []string{"m2", "m3"}; !slices.Equal(handled, want) {
		t.Fatalf("handled %v during the room's catch-up, want %v", handled, want)
	}
	if tk := c.ticket(lane, "s1", false, 4); tk != nil {
		t.Error("a late result of an earlier catch-up was tracked")
	}
	if tk := c.ticket(lane, "s1", false, 5); tk == nil || tk.Cursor() != c.delivery.rooms[lane] {
		t.Errorf("a result of the running catch-up was not tracked for the room: %+v", tk)
	}
	if tk := c.ticket(lane, "", false, 5); tk != nil {
		t.Error("a message without stanza-id was tracked")
	}
	step(xmppclient.Event{Mark: xmppclient.MarkCatchUpDone, Seq: 4, Lane: lane, OK: true})
	if c.delivery.order.Running(lane) != 5 || len(handled) != 2 {
		t.Error("the end of an earlier catch-up ended the running one")
	}
	step(xmppclient.Event{Mark: xmppclient.MarkCatchUpDone, Seq: 5, Lane: lane, OK: true})
	if want := []string{"m2", "m3", "m1"}; !slices.Equal(handled, want) {
		t.Errorf("handled %v after the room's catch-up, want %v", handled, want)
	}
	step(live(fromRoom))
	if len(handled) != 4 {
		t.Error("deferred a room message after the catch-up")
	}
	if tk := c.ticket(lane, "s2", false, 0); tk == nil {
		t.Error("a live message after the catch-up was not tracked")
	}
	// A catch-up that stopped early: the cursor stays where it is.
	step(xmppclient.Event{Mark: xmppclient.MarkCatchUpStart, Seq: 6, Lane: lane})
	step(xmppclient.Event{Mark: xmppclient.MarkCatchUpDone, Seq: 6, Lane: lane, OK: false})
	if tk := c.ticket(lane, "s3", false, 0); tk != nil {
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
