package bridge

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// stubRoom is a room's timeline (oldest first) paged backward as Dendrite's /messages does
// without a filter: the token is the position before which the next page ends.
type stubRoom struct {
	events []*event.Event
	pages  int
	fail   bool
}

func (r *stubRoom) page(_ context.Context, from string) (*mautrix.RespMessages, error) {
	r.pages++
	if r.fail {
		return nil, errors.New("homeserver away")
	}
	end := len(r.events)
	if from != "" {
		end, _ = strconv.Atoi(from)
	}
	start := max(0, end-sendingPage)
	resp := &mautrix.RespMessages{Start: from}
	for i := end - 1; i >= start; i-- {
		resp.Chunk = append(resp.Chunk, r.events[i])
	}
	if start > 0 {
		resp.End = strconv.Itoa(start)
	}
	return resp, nil
}

func TestScanForMarker(t *testing.T) {
	const (
		ghost  = id.UserID("@xmpp_bob:localhost")
		other  = id.UserID("@xmpp_carol:localhost")
		user   = id.UserID("@alice:localhost")
		marker = "the-marker"
	)
	n := 0
	evt := func(sender id.UserID, typ event.Type, mark string) *event.Event {
		n++
		raw := map[string]any{}
		if mark != "" {
			raw[remoteMarkerKey] = mark
		}
		return &event.Event{ID: id.EventID("$" + strconv.Itoa(n)), Sender: sender, Type: typ, Content: event.Content{Raw: raw}}
	}
	msg := event.EventMessage
	times := func(k int, f func(i int) *event.Event) []*event.Event {
		var out []*event.Event
		for i := range k {
			out = append(out, f(i))
		}
		return out
	}
	userMsgs := func(k int) []*event.Event {
		return times(k, func(int) *event.Event { return evt(user, msg, "") })
	}
	ghostMsgs := func(k int) []*event.Event {
		return times(k, func(i int) *event.Event { return evt(ghost, msg, "m"+strconv.Itoa(i)) })
	}
	cat := func(parts ...[]*event.Event) []*event.Event {
		var out []*event.Event
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(e *event.Event) []*event.Event { return []*event.Event{e} }

	tests := []struct {
		name   string
		events []*event.Event
		fail   bool
		found  bool
		// read is how many events were read.
		read    int
		wantErr bool
	}{
		{name: "the newest event", events: cat(ghostMsgs(5), one(evt(ghost, msg, marker))), found: true, read: 1},
		// The case of TestRoomKill: the Matrix user kept writing while the bridge restarted.
		// Dendrite's /messages with a sender filter took the last page of the room and then
		// filtered it, so the message was not found and was sent again.
		{name: "behind 150 of the Matrix user's messages", events: cat(ghostMsgs(3), one(evt(ghost, msg, marker)), userMsgs(150)), found: true, read: 151},
		{name: "behind 1500 other events", events: cat(one(evt(ghost, msg, marker)), userMsgs(1500)), found: true, read: 1501},
		{name: "encrypted", events: cat(one(evt(ghost, event.EventEncrypted, marker)), userMsgs(10)), found: true, read: 11},
		{name: "not in the room: read to its start", events: cat(ghostMsgs(20), userMsgs(250)), read: 270},
		{name: "another ghost's event with the marker", events: cat(one(evt(other, msg, marker)), userMsgs(3)), read: 4},
		{name: "a state event with the marker", events: cat(one(evt(ghost, event.StateTopic, marker)), userMsgs(3)), read: 4},
		{name: "older than the ghost's latest 50", events: cat(one(evt(ghost, msg, marker)), ghostMsgs(50)), read: 50},
		{name: "older than the scan limit", events: cat(one(evt(ghost, msg, marker)), userMsgs(sendingScanMax+500)), read: sendingScanMax},
		{name: "an empty room", read: 0},
		{name: "the homeserver fails", events: userMsgs(3), fail: true, wantErr: true, read: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &stubRoom{events: tc.events, fail: tc.fail}
			markerOf := func(e *event.Event) string { s, _ := e.Content.Raw[remoteMarkerKey].(string); return s }
			got, scan, err := scanForMarker(context.Background(), r.page, ghost, marker, markerOf)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if found := got != ""; found != tc.found {
				t.Errorf("found %q, want found %v", got, tc.found)
			}
			if got != "" {
				for _, e := range tc.events {
					if e.ID == got && (e.Sender != ghost || markerOf(e) != marker) {
						t.Errorf("found %s, not the ghost's marked event", got)
					}
				}
			}
			if scan.events != tc.read {
				t.Errorf("read %d events (%d pages), want %d", scan.events, r.pages, tc.read)
			}
		})
	}
}
