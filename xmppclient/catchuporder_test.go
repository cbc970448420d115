package xmppclient

import (
	"context"
	"encoding/xml"
	"slices"
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

func inboundOf(t *testing.T, s string) Inbound {
	t.Helper()
	st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(s)))
	if err != nil {
		t.Fatal(err)
	}
	return Classify(st)
}

// TestLaneOf: live 1:1 messages and PEP notifications wait in the
// account's lane, a room's groupchat messages in the room's; archive
// results and presences never wait.
func TestLaneOf(t *testing.T) {
	for _, tc := range []struct {
		name, xml string
		lane      string
		ok        bool
	}{
		{"live chat message", `<message xmlns="jabber:client" from="bob@example.org/phone" type="chat" id="m1"><body>hi</body></message>`, AccountLane, true},
		{"offline message", `<message xmlns="jabber:client" from="bob@example.org/phone" type="chat" id="m1"><body>hi</body><delay xmlns="urn:xmpp:delay" stamp="2026-11-20T08:00:00Z"/></message>`, AccountLane, true},
		{"pubsub notification", `<message xmlns="jabber:client" from="bob@example.org"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="urn:xmpp:avatar:metadata"/></event></message>`, AccountLane, true},
		{"group chat message", `<message xmlns="jabber:client" from="Room@muc.example.org/bob" type="groupchat" id="m1"><body>hi</body></message>`, "room@muc.example.org", true},
		{"private message from an occupant", `<message xmlns="jabber:client" from="room@muc.example.org/bob" type="chat" id="m1"><body>hi</body></message>`, AccountLane, true},
		{"archive result", `<message xmlns="jabber:client" from="alice@example.org"><result xmlns="urn:xmpp:mam:2" queryid="q1" id="a1"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" from="bob@example.org/phone" to="alice@example.org" type="chat" id="m1"><body>old</body></message></forwarded></result></message>`, "", false},
		{"presence", `<presence xmlns="jabber:client" from="room@muc.example.org/bob"/>`, "", false},
	} {
		lane, ok := LaneOf(inboundOf(t, tc.xml))
		if lane != tc.lane || ok != tc.ok {
			t.Errorf("%s: lane %q %v, want %q %v", tc.name, lane, ok, tc.lane, tc.ok)
		}
	}
}

// TestCatchUpOrder: while a lane catches up, its live events wait and
// come right after its done mark; other lanes' events and archive results
// pass; a catch-up started meanwhile takes the place of the running one,
// whose done mark is dropped.
func TestCatchUpOrder(t *testing.T) {
	const room = "room@muc.example.org"
	events := map[string]Event{
		"chat":   {In: inboundOf(t, `<message xmlns="jabber:client" from="bob@example.org/phone" type="chat" id="chat"><body>hi</body></message>`)},
		"chat2":  {In: inboundOf(t, `<message xmlns="jabber:client" from="bob@example.org/phone" type="chat" id="chat2"><body>hi</body></message>`)},
		"group":  {In: inboundOf(t, `<message xmlns="jabber:client" from="room@muc.example.org/bob" type="groupchat" id="group"><body>hi</body></message>`)},
		"other":  {In: inboundOf(t, `<message xmlns="jabber:client" from="other@muc.example.org/bob" type="groupchat" id="other"><body>hi</body></message>`)},
		"result": {In: inboundOf(t, `<message xmlns="jabber:client" from="alice@example.org" id="result"><result xmlns="urn:xmpp:mam:2" queryid="q1" id="a1"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" from="bob@example.org/phone" type="chat" id="m1"><body>old</body></message></forwarded></result></message>`)},
		"start1": {Mark: MarkCatchUpStart, Seq: 1, Lane: AccountLane},
		"done1":  {Mark: MarkCatchUpDone, Seq: 1, Lane: AccountLane, OK: true},
		"start2": {Mark: MarkCatchUpStart, Seq: 2, Lane: AccountLane},
		"done2":  {Mark: MarkCatchUpDone, Seq: 2, Lane: AccountLane, OK: true},
		"rstart": {Mark: MarkCatchUpStart, Seq: 3, Lane: room},
		"rdone":  {Mark: MarkCatchUpDone, Seq: 3, Lane: room},
	}
	name := func(ev Event) string {
		for n, e := range events {
			if e.Mark == ev.Mark && e.Seq == ev.Seq && e.Lane == ev.Lane && e.In.Stanza == ev.In.Stanza {
				return n
			}
		}
		return "?"
	}
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		running map[string]uint64 // after the input
	}{
		{"no catch-up", []string{"chat", "group"}, []string{"chat", "group"}, nil},
		{"account catch-up holds 1:1", []string{"start1", "chat", "group", "result", "done1"},
			[]string{"start1", "group", "result", "done1", "chat"}, map[string]uint64{AccountLane: 0}},
		{"room catch-up holds the room only", []string{"rstart", "group", "other", "chat", "rdone", "group"},
			[]string{"rstart", "other", "chat", "rdone", "group", "group"}, map[string]uint64{room: 0}},
		{"a new catch-up takes over", []string{"start1", "chat", "start2", "chat2", "done1", "done2"},
			[]string{"start1", "start2", "done2", "chat", "chat2"}, nil},
		{"still running", []string{"start1", "chat", "rstart"}, []string{"start1", "rstart"},
			map[string]uint64{AccountLane: 1, room: 3}},
		{"a done mark without a start", []string{"done1", "chat"}, []string{"chat"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o CatchUpOrder
			var got []string
			for _, n := range tc.in {
				o.Step(context.Background(), events[n], func(_ context.Context, ev Event) { got = append(got, name(ev)) })
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("handed on %v, want %v", got, tc.want)
			}
			for lane, want := range tc.running {
				if r := o.Running(lane); r != want {
					t.Errorf("running catch-up of %q: %d, want %d", lane, r, want)
				}
			}
		})
	}
}
