package xmppclient

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// affPresence is an occupant's presence in testRoom with affiliation aff.
func affPresence(nick, realJID, aff, typ string, status ...string) string {
	t := ""
	if typ != "" {
		t = ` type="` + typ + `"`
	}
	x := `<item affiliation="` + aff + `" role="participant" jid="` + realJID + `"/>`
	for _, s := range status {
		x += `<status code="` + s + `"/>`
	}
	return `<presence` + nsC + ` from="` + testRoom + `/` + nick + `"` + t + `><x` + nsMUCUser + `>` + x + `</x></presence>`
}

// roomAnnouncement is the room's own message (type "" or groupchat) with a
// muc#user payload x, as Prosody and ejabberd send for absent users.
func roomAnnouncement(from, typ, x string) string {
	t := ""
	if typ != "" {
		t = ` type="` + typ + `"`
	}
	return `<message` + nsC + ` from="` + from + `" to="alice@example.org/bridge"` + t + `><x` + nsMUCUser + `>` + x + `</x></message>`
}

// joinedWithMembers is a Rooms with testRoom joined as alice and its lists
// read: bob and carol members, dave owner.
func joinedWithMembers(t *testing.T) *Rooms {
	t.Helper()
	rs := NewRooms()
	rs.StartJoin(jid.MustParse(testRoom), "alice", mucroom.Info{}, mucadmin.RoomInfo{})
	rs.ApplyPresence(mustPresence(t, affPresence("alice", "alice@example.org/bridge", "member", "", "110", "100")))
	m := &rs.rooms[testRoom].members
	m.reading = make(chan struct{})
	m.finish(m.epoch, []mucadmin.Item{
		{JID: jid.MustParse("bob@example.org"), Affiliation: mucadmin.Member},
		{JID: jid.MustParse("carol@example.org"), Affiliation: mucadmin.Member},
		{JID: jid.MustParse("dave@example.org"), Affiliation: mucadmin.Owner},
	}, nil, time.Now())
	return rs
}

// memberSet is testRoom's cached members as "jid=affiliation", sorted, or
// nil when the lists are not known.
func memberSet(rs *Rooms) []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	m := rs.rooms[testRoom].members
	if !m.known {
		return nil
	}
	var out []string
	for _, it := range m.list() {
		out = append(out, it.JID.String()+"="+string(it.Affiliation))
	}
	return out
}

// TestRoomMemberUpdates: what the room tells its occupants keeps the read
// lists current. Each case starts from bob and carol members and dave
// owner.
func TestRoomMemberUpdates(t *testing.T) {
	const (
		base = "bob@example.org=member carol@example.org=member dave@example.org=owner"
		none = "-" // the lists are forgotten: read again at the next message
	)
	tests := []struct {
		name string
		// stanzas from the room, in order: presences, groupchat or other messages
		stanzas []string
		want    string
		// consumed: ApplyAnnouncement took the last (non-groupchat) message
		consumed bool
	}{
		{"occupant's presence as member changes nothing",
			[]string{affPresence("bob", "bob@example.org/phone", "member", "")}, base, false},
		{"present occupant made admin",
			[]string{affPresence("bob", "bob@example.org/phone", "admin", "")}, "bob@example.org=admin carol@example.org=member dave@example.org=owner", false},
		{"present occupant removed leaves with 321",
			[]string{affPresence("bob", "bob@example.org/phone", "none", "unavailable", "321")}, "carol@example.org=member dave@example.org=owner", false},
		{"present occupant banned leaves with 301",
			[]string{affPresence("carol", "carol@example.org/x", "outcast", "unavailable", "301")}, "bob@example.org=member dave@example.org=owner", false},
		{"present occupant in an open room loses membership, stays",
			[]string{affPresence("bob", "bob@example.org/phone", "none", "")}, "carol@example.org=member dave@example.org=owner", false},
		{"new member joins",
			[]string{affPresence("erin", "erin@example.org/y", "member", "")}, base + " erin@example.org=member", false},
		{"a leave keeps the member",
			[]string{affPresence("bob", "bob@example.org/phone", "member", "unavailable")}, base, false},
		{"absent user made member (Prosody: no type)",
			[]string{roomAnnouncement(testRoom, "", `<item affiliation="member" jid="erin@example.org"/>`)}, base + " erin@example.org=member", true},
		{"absent member removed (ejabberd: role none, full JID)",
			[]string{roomAnnouncement(testRoom, "", `<item affiliation="none" role="none" jid="carol@example.org/x"/><status code="321"/>`)}, "bob@example.org=member dave@example.org=owner", true},
		{"absent member banned, groupchat",
			[]string{roomAnnouncement(testRoom, "groupchat", `<item affiliation="outcast" jid="bob@example.org"/>`)}, "carol@example.org=member dave@example.org=owner", false},
		{"absent owner made member",
			[]string{roomAnnouncement(testRoom, "", `<item affiliation="member" jid="dave@example.org"/>`)}, "bob@example.org=member carol@example.org=member dave@example.org=member", true},
		{"removed then added again",
			[]string{
				roomAnnouncement(testRoom, "", `<item affiliation="none" jid="bob@example.org"/>`),
				roomAnnouncement(testRoom, "", `<item affiliation="member" jid="bob@example.org"/>`),
			}, base, true},
		{"an occupant's private message cannot speak for the room",
			[]string{roomAnnouncement(testRoom+"/mallory", "", `<item affiliation="member" jid="mallory@example.org"/>`)}, base, false},
		{"another room's announcement",
			[]string{roomAnnouncement("other@muc.example.org", "", `<item affiliation="member" jid="mallory@example.org"/>`)}, base, false},
		{"an item without a JID (the room hides it)",
			[]string{roomAnnouncement(testRoom, "", `<item affiliation="member"/>`)}, base, false},
		{"a mediated invitation is no announcement",
			[]string{roomAnnouncement(testRoom, "", `<invite from="bob@example.org"/>`)}, base, false},
		{"configuration change (104) forgets the lists",
			[]string{roomAnnouncement(testRoom, "groupchat", `<status code="104"/>`)}, none, false},
		{"now semi-anonymous (173)",
			[]string{roomAnnouncement(testRoom, "groupchat", `<status code="173"/>`)}, none, false},
		{"now non-anonymous (172), then an item",
			[]string{
				roomAnnouncement(testRoom, "groupchat", `<status code="172"/>`),
				roomAnnouncement(testRoom, "", `<item affiliation="member" jid="erin@example.org"/>`),
			}, none, true},
		{"fully anonymous (174) in a presence",
			[]string{`<presence` + nsC + ` from="` + testRoom + `/alice"><x` + nsMUCUser + `><item affiliation="member" role="participant"/><status code="110"/><status code="174"/></x></presence>`}, none, false},
		{"we leave",
			[]string{affPresence("alice", "alice@example.org/bridge", "member", "unavailable", "110")}, none, false},
		{"we are kicked",
			[]string{affPresence("alice", "alice@example.org/bridge", "member", "unavailable", "110", "307")}, none, false},
		{"our nick change keeps the lists",
			[]string{`<presence` + nsC + ` from="` + testRoom + `/alice" type="unavailable"><x` + nsMUCUser + `><item nick="alice2" affiliation="member" role="participant"/><status code="110"/><status code="303"/></x></presence>`}, base, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := joinedWithMembers(t)
			var consumed bool
			for _, s := range tt.stanzas {
				in := Classify(tokens(t, s))
				switch in.Kind {
				case KindRoomPresence:
					if in.Err != nil {
						t.Fatal(in.Err)
					}
					rs.ApplyPresence(in.Presence)
					consumed = false
				case KindGroupchat:
					if in.Err != nil {
						t.Fatal(in.Err)
					}
					rs.ApplyRoomMessage(in.Room.Message)
					consumed = false
				default:
					consumed, _ = rs.ApplyAnnouncement(in)
				}
			}
			want := []string(nil)
			if tt.want != none {
				want = strings.Fields(tt.want)
			}
			if got := memberSet(rs); !slices.Equal(got, want) {
				t.Errorf("members %q, want %q", got, want)
			}
			if consumed != tt.consumed {
				t.Errorf("ApplyAnnouncement took the last message: %v, want %v", consumed, tt.consumed)
			}
		})
	}
}

// TestRoomMemberRead: a read's answer is kept with the changes the room
// announced while it ran replayed over it; a read that an invalidation
// overtook is not kept, nor a failed one beyond memberRetry; changes while
// no read runs and nothing is known are dropped (the next read has them).
func TestRoomMemberRead(t *testing.T) {
	bob := mucadmin.Item{JID: jid.MustParse("bob@example.org"), Affiliation: mucadmin.Member}
	carol := mucadmin.Item{JID: jid.MustParse("carol@example.org"), Affiliation: mucadmin.Member}
	carolGone := mucadmin.Item{JID: jid.MustParse("carol@example.org/x"), Affiliation: mucadmin.None}
	erin := mucadmin.Item{JID: jid.MustParse("erin@example.org/y"), Affiliation: mucadmin.Admin}
	bobOut := mucadmin.Item{JID: jid.MustParse("bob@example.org"), Affiliation: mucadmin.Outcast}
	failure := errors.New("forbidden")
	now := time.Now()
	tests := []struct {
		name       string
		before     []mucadmin.Item // announced before the read started
		during     []mucadmin.Item // announced while it ran
		invalidate bool            // an invalidation while it ran
		answer     []mucadmin.Item
		err        error
		want       []string // nil: not known
		retry      bool     // a retry time is set
	}{
		{"answer kept", nil, nil, false, []mucadmin.Item{bob, carol}, nil, []string{"bob@example.org=member", "carol@example.org=member"}, false},
		{"empty answer kept", nil, nil, false, nil, nil, []string{}, false},
		{"changes before the read are in its answer", []mucadmin.Item{erin}, nil, false, []mucadmin.Item{bob}, nil, []string{"bob@example.org=member"}, false},
		{"changes during the read replayed", nil, []mucadmin.Item{carolGone, erin}, false, []mucadmin.Item{bob, carol}, nil,
			[]string{"bob@example.org=member", "erin@example.org=admin"}, false},
		{"a change the answer already has, replayed", nil, []mucadmin.Item{bobOut}, false, nil, nil, []string{}, false},
		{"changes in order", nil, []mucadmin.Item{bobOut, bob}, false, nil, nil, []string{"bob@example.org=member"}, false},
		{"invalidated during the read", nil, []mucadmin.Item{erin}, true, []mucadmin.Item{bob}, nil, nil, false},
		{"failed read", nil, []mucadmin.Item{erin}, false, nil, failure, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m memberList
			for _, it := range tt.before {
				m.note(it)
			}
			m.reading = make(chan struct{})
			epoch := m.epoch
			for _, it := range tt.during {
				m.note(it)
			}
			if tt.invalidate {
				m.invalidate()
			}
			m.finish(epoch, tt.answer, tt.err, now)
			if m.reading != nil || m.changes != nil {
				t.Errorf("after the read: reading %v, %d changes kept", m.reading, len(m.changes))
			}
			var got []string
			if m.known {
				got = []string{}
				for _, it := range m.list() {
					got = append(got, it.JID.String()+"="+string(it.Affiliation))
				}
			}
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("members %q, want %q", got, tt.want)
			}
			if retry := !m.retryAt.IsZero(); retry != tt.retry || (retry && !m.retryAt.Equal(now.Add(memberRetry))) || (retry && m.failed != tt.err) {
				t.Errorf("retry at %v (error %v), want a retry: %v", m.retryAt, m.failed, tt.retry)
			}
		})
	}
}

// TestRoomMembersForgottenOnNewSession: a new session or a new join starts
// without the lists, and snapshots never carry them.
func TestRoomMembersForgottenOnNewSession(t *testing.T) {
	for _, tt := range []struct {
		name string
		do   func(rs *Rooms)
	}{
		{"disconnected", func(rs *Rooms) { rs.Disconnected() }},
		{"joined again", func(rs *Rooms) {
			rs.StartJoin(jid.MustParse(testRoom), "alice", mucroom.Info{}, mucadmin.RoomInfo{})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := joinedWithMembers(t)
			if memberSet(rs) == nil {
				t.Fatal("the lists are not known after the read")
			}
			if r, _ := rs.Get(jid.MustParse(testRoom)); r.members.known || r.members.byJID != nil {
				t.Error("a snapshot carries the lists")
			}
			tt.do(rs)
			if got := memberSet(rs); got != nil {
				t.Errorf("members %q after %s, want them forgotten", got, tt.name)
			}
		})
	}
}

// fakeReads stands in for the room's answers in TestRoomMembersReads: each
// read blocks until the test releases it with an answer, and is counted.
type fakeReads struct {
	mu      sync.Mutex
	n       int
	started chan struct{}
	answer  chan fakeAnswer
}

type fakeAnswer struct {
	items []mucadmin.Item
	err   error
}

func (f *fakeReads) read(ctx context.Context, _ *xmpp.Session, _ jid.JID) ([]mucadmin.Item, error) {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	f.started <- struct{}{}
	select {
	case a := <-f.answer:
		return a.items, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeReads) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestRoomMembersReads: concurrent senders share one read; what the room
// announces meanwhile is applied over its answer; a failed read is not
// asked again before memberRetry; a configuration change during a read
// makes the next message read again. Run with -race.
func TestRoomMembersReads(t *testing.T) {
	room := jid.MustParse(testRoom)
	rs := NewRooms()
	f := &fakeReads{started: make(chan struct{}, 16), answer: make(chan fakeAnswer)}
	rs.readMembers = f.read
	rs.StartJoin(room, "alice", mucroom.Info{}, mucadmin.RoomInfo{})
	rs.ApplyPresence(mustPresence(t, affPresence("alice", "alice@example.org/bridge", "member", "", "110", "100")))
	ctx := context.Background()
	bob := mucadmin.Item{JID: jid.MustParse("bob@example.org"), Affiliation: mucadmin.Member}
	carol := mucadmin.Item{JID: jid.MustParse("carol@example.org"), Affiliation: mucadmin.Member}

	// Eight senders at once: one read, carol's removal announced while it runs.
	const senders = 8
	results := make(chan []mucadmin.Item, senders)
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			items, err := rs.Members(ctx, nil, room)
			if err != nil {
				t.Error(err)
			}
			results <- items
		}()
	}
	<-f.started
	rs.ApplyPresence(mustPresence(t, affPresence("carol", "carol@example.org/x", "none", "unavailable", "321")))
	f.answer <- fakeAnswer{items: []mucadmin.Item{bob, carol}}
	wg.Wait()
	close(results)
	if n := f.count(); n != 1 {
		t.Errorf("%d reads for %d concurrent senders, want 1", n, senders)
	}
	for items := range results {
		if len(items) == 0 {
			t.Errorf("a sender got no members")
		}
	}
	if got, want := memberSet(rs), []string{"bob@example.org=member"}; !slices.Equal(got, want) {
		t.Errorf("after the read with carol removed during it: %q, want %q", got, want)
	}
	if items, err := rs.Members(ctx, nil, room); err != nil || len(items) != 1 || f.count() != 1 {
		t.Errorf("steady state: %v, %v after %d reads, want bob without a read", items, err, f.count())
	}

	// A configuration change forgets the lists; one during the read keeps its answer out.
	rs.ApplyRoomMessage(mustRoomMessage(t, roomAnnouncement(testRoom, "groupchat", `<status code="104"/>`)))
	done := make(chan error, 1)
	go func() {
		_, err := rs.Members(ctx, nil, room)
		done <- err
	}()
	<-f.started
	rs.ApplyRoomMessage(mustRoomMessage(t, roomAnnouncement(testRoom, "groupchat", `<status code="173"/>`)))
	f.answer <- fakeAnswer{items: []mucadmin.Item{bob}}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := memberSet(rs); got != nil {
		t.Errorf("a read overtaken by a configuration change was kept: %q", got)
	}

	// A failed read: its error until memberRetry, then read again.
	failure := errors.New("forbidden")
	go func() {
		_, err := rs.Members(ctx, nil, room)
		done <- err
	}()
	<-f.started
	f.answer <- fakeAnswer{err: failure}
	if err := <-done; !errors.Is(err, failure) {
		t.Fatalf("failed read: %v", err)
	}
	reads := f.count()
	if _, err := rs.Members(ctx, nil, room); !errors.Is(err, failure) || f.count() != reads {
		t.Errorf("right after a failure: %v after %d reads, want the failure without a read", err, f.count()-reads)
	}
	rs.mu.Lock()
	rs.rooms[testRoom].members.retryAt = time.Now().Add(-time.Second)
	rs.mu.Unlock()
	go func() {
		_, err := rs.Members(ctx, nil, room)
		done <- err
	}()
	<-f.started
	f.answer <- fakeAnswer{items: []mucadmin.Item{carol}}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := memberSet(rs), []string{"carol@example.org=member"}; !slices.Equal(got, want) {
		t.Errorf("after the retry: %q, want %q", got, want)
	}

	// A sender that gives up while a read runs for another.
	rs.Disconnected()
	rs.StartJoin(room, "alice", mucroom.Info{}, mucadmin.RoomInfo{})
	rs.ApplyPresence(mustPresence(t, affPresence("alice", "alice@example.org/bridge", "member", "", "110", "100")))
	go func() {
		_, err := rs.Members(ctx, nil, room)
		done <- err
	}()
	<-f.started
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := rs.Members(short, nil, room); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a waiting sender whose context ended: %v", err)
	}
	f.answer <- fakeAnswer{items: []mucadmin.Item{bob}}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := memberSet(rs), []string{"bob@example.org=member"}; !slices.Equal(got, want) {
		t.Errorf("after a new join: %q, want %q", got, want)
	}
}

func mustRoomMessage(t *testing.T, s string) mucroom.Message {
	t.Helper()
	in := Classify(tokens(t, s))
	if in.Kind != KindGroupchat || in.Err != nil {
		t.Fatalf("%s: kind %v, %v", s, in.Kind, in.Err)
	}
	return in.Room.Message
}
