package bridge

import (
	"testing"

	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestPresenceQueueCoalesces: a burst of presences (a login's first
// seconds) leaves one update per contact, the latest, in first-seen order;
// what the ghost already shows is not queued again; a reconnect's sweep
// sets the contacts the new session did not mention offline.
func TestPresenceQueueCoalesces(t *testing.T) {
	var ps presenceState
	bob, carol := jid.MustParse("bob@x/a"), jid.MustParse("carol@x/b")
	for i := range 100 {
		show := xmppclient.ShowAway
		if i%2 == 1 {
			show = xmppclient.ShowDND
		}
		ps.update(bob, xmppclient.Presence{Show: show, Priority: i % 3})
		ps.update(carol, xmppclient.Presence{Show: xmppclient.ShowAvailable, Status: "here"})
	}
	var got []string
	for {
		key, p, ok := ps.next()
		if !ok {
			break
		}
		got = append(got, key+"="+string(p.Show))
		ps.done(key, p)
	}
	if want := "[bob@x=dnd carol@x=]"; fmtList(got) != want {
		t.Fatalf("queue drained %s, want %s", fmtList(got), want)
	}
	ps.update(carol, xmppclient.Presence{Show: xmppclient.ShowAvailable, Status: "here"})
	if _, _, ok := ps.next(); ok {
		t.Error("an unchanged presence was queued again")
	}
	ps.reset()
	ps.update(carol, xmppclient.Presence{Show: xmppclient.ShowAvailable, Status: "here"})
	ps.sweep()
	key, p, ok := ps.next()
	if !ok || key != "bob@x" || p.Show != xmppclient.ShowOffline {
		t.Errorf("sweep queued %q %+v %v, want bob offline", key, p, ok)
	}
	if _, _, ok := ps.next(); ok {
		t.Error("sweep queued carol, whom the new session mentioned")
	}
}

func fmtList(ss []string) string {
	out := "["
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out + "]"
}

func TestPresenceMapping(t *testing.T) {
	for _, tc := range []struct {
		in     xmppclient.Presence
		want   event.Presence
		status string
	}{
		{xmppclient.Presence{Show: xmppclient.ShowAvailable, Status: "hi"}, event.PresenceOnline, "hi"},
		{xmppclient.Presence{Show: xmppclient.ShowChat}, event.PresenceOnline, ""},
		{xmppclient.Presence{Show: xmppclient.ShowAway, Status: "lunch"}, event.PresenceUnavailable, "lunch"},
		{xmppclient.Presence{Show: xmppclient.ShowXA}, event.PresenceUnavailable, ""},
		{xmppclient.Presence{Show: xmppclient.ShowDND}, event.PresenceUnavailable, "Do not disturb"},
		{xmppclient.Presence{Show: xmppclient.ShowDND, Status: "meeting"}, event.PresenceUnavailable, "meeting"},
		{xmppclient.Presence{Show: xmppclient.ShowOffline, Status: "bye"}, event.PresenceOffline, "bye"},
	} {
		if p, s := matrixPresence(tc.in); p != tc.want || s != tc.status {
			t.Errorf("matrixPresence(%+v) = %s %q, want %s %q", tc.in, p, s, tc.want, tc.status)
		}
	}
	for in, want := range map[event.Presence]xmppclient.Show{
		event.PresenceOnline:      xmppclient.ShowAvailable,
		event.PresenceUnavailable: xmppclient.ShowAway,
		event.PresenceOffline:     xmppclient.ShowXA,
	} {
		if got := xmppShow(in); got != want {
			t.Errorf("xmppShow(%s) = %q, want %q", in, got, want)
		}
	}
}
