package xmppclient

import (
	"errors"
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

const (
	testRoom  = "room@muc.example.org"
	nsMUCUser = ` xmlns="http://jabber.org/protocol/muc#user"`
)

func mustPresence(t *testing.T, s string) mucroom.Presence {
	t.Helper()
	p, err := mucroom.ParsePresence(tokens(t, s).Reader())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func occupantPresence(nick, realJID, typ string, status ...int) string {
	item := `<item affiliation="member" role="participant"`
	if realJID != "" {
		item += ` jid="` + realJID + `"`
	}
	item += `/>`
	for _, s := range status {
		item += fmt.Sprintf(`<status code="%d"/>`, s)
	}
	t := ""
	if typ != "" {
		t = ` type="` + typ + `"`
	}
	return `<presence` + nsC + ` from="` + testRoom + `/` + nick + `"` + t + `><x` + nsMUCUser + `>` + item + `</x></presence>`
}

// TestMUCPresenceSequence walks a join and the changes after it: occupants
// before our own presence are the initial member list, after it they are
// member changes; an error answers the pending join.
func TestMUCPresenceSequence(t *testing.T) {
	room := jid.MustParse(testRoom)
	rs := NewRooms()
	answer := rs.StartJoin(room, "alice", mucroom.Info{Name: "The Room"}, mucadmin.RoomInfo{})
	if !rs.Known(jid.MustParse(testRoom + "/bob")) {
		t.Fatal("a room being joined is not known")
	}
	steps := []struct {
		name       string
		xml        string
		change     RoomChange
		occupant   string
		joined     bool
		occupants  int
		nick       string
		answerNick string
	}{
		{"occupant before us", occupantPresence("bob", "bob@example.org/laptop", ""), ChangeNone, "", false, 1, "alice", ""},
		{"anonymous occupant before us", occupantPresence("ghost", "", ""), ChangeNone, "", false, 2, "alice", ""},
		{"our presence, nick rewritten", occupantPresence("Alice", "alice@example.org/bridge", "", 100, 110, 210), ChangeSelfJoined, "", true, 2, "Alice", "Alice"},
		{"presence update of a known occupant", occupantPresence("bob", "bob@example.org/laptop", ""), ChangeNone, "", true, 2, "Alice", ""},
		{"occupant joins after us", occupantPresence("carol", "carol@example.org/x", ""), ChangeOccupantJoined, "carol", true, 3, "Alice", ""},
		{"occupant leaves", occupantPresence("ghost", "", "unavailable"), ChangeOccupantLeft, "ghost", true, 2, "Alice", ""},
		{"unknown occupant leaves", occupantPresence("nobody", "", "unavailable"), ChangeNone, "", true, 2, "Alice", ""},
		{"our nick change", `<presence` + nsC + ` from="` + testRoom + `/Alice" type="unavailable"><x` + nsMUCUser + `><item nick="alice2" role="participant"/>` +
			`<status code="110"/><status code="303"/></x></presence>`, ChangeNone, "", true, 2, "alice2", ""},
		{"our presence under the new nick", occupantPresence("alice2", "", "", 110), ChangeNone, "", true, 2, "alice2", ""},
		{"we are kicked", occupantPresence("alice2", "", "unavailable", 110, 307), ChangeSelfLeft, "", false, 0, "alice2", ""},
	}
	for _, st := range steps {
		got, out, ok := rs.ApplyPresence(mustPresence(t, st.xml))
		if !ok {
			t.Fatalf("%s: room not known", st.name)
		}
		if out.Change != st.change || out.Occupant.Nick != st.occupant {
			t.Errorf("%s: change %v (%q), want %v (%q)", st.name, out.Change, out.Occupant.Nick, st.change, st.occupant)
		}
		if got.Joined != st.joined || len(got.Occupants) != st.occupants || got.Nick != st.nick {
			t.Errorf("%s: joined=%t occupants=%d nick=%q, want %t %d %q", st.name, got.Joined, len(got.Occupants), got.Nick, st.joined, st.occupants, st.nick)
		}
		if st.answerNick != "" {
			select {
			case res := <-answer:
				if res.Err != nil || res.Nick != st.answerNick {
					t.Errorf("%s: join answer %+v", st.name, res)
				}
			default:
				t.Errorf("%s: the pending join got no answer", st.name)
			}
		}
	}
	if r, _ := rs.Get(room); !r.NonAnonymous || r.Info.Name != "The Room" {
		t.Errorf("room state lost status 100 or the name: %+v", r)
	}

	// A refused join.
	answer = rs.StartJoin(room, "alice", mucroom.Info{}, mucadmin.RoomInfo{})
	_, out, _ := rs.ApplyPresence(mustPresence(t, `<presence`+nsC+` from="`+testRoom+`/alice" type="error"><error type="auth"><registration-required xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`))
	if out.Change != ChangeJoinFailed {
		t.Errorf("error presence: change %v", out.Change)
	}
	if res := <-answer; !errors.Is(res.Err, mucroom.ErrMembersOnly) {
		t.Errorf("join answer %v, want ErrMembersOnly", res.Err)
	}

	// Presences of other rooms are not ours.
	if _, _, ok := rs.ApplyPresence(mustPresence(t, `<presence`+nsC+` from="other@muc.example.org/x"/>`)); ok {
		t.Error("presence from an unknown room was applied")
	}
	rs.Disconnected()
	if r, _ := rs.Get(room); r.Joined || len(r.Occupants) != 0 {
		t.Errorf("after a disconnect the room is %+v", r)
	}
}

func TestNickCandidates(t *testing.T) {
	got := NickCandidates("alice")
	want := []string{"alice", "alice_", "alice_2", "alice_3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("NickCandidates = %q, want %q", got, want)
	}
}

// TestRoomsGetFor: a message's snapshot of its room is the room's state
// with only its sender among the occupants, and changing it changes
// nothing of the room.
func TestRoomsGetFor(t *testing.T) {
	room := jid.MustParse(testRoom)
	rs := NewRooms()
	rs.StartJoin(room, "alice", mucroom.Info{Name: "The Room"}, mucadmin.RoomInfo{})
	for _, p := range []string{
		occupantPresence("bob", "bob@example.org/laptop", ""),
		occupantPresence("carol", "carol@example.org/x", ""),
		occupantPresence("alice", "alice@example.org/bridge", "", 100, 110),
	} {
		rs.ApplyPresence(mustPresence(t, p))
	}
	for _, tc := range []struct {
		name, nick string
		want       string // the occupant's real JID, "" for no occupant
	}{
		{"an occupant", "bob", "bob@example.org"},
		{"another", "carol", "carol@example.org"},
		{"not in the room", "dave", ""},
		{"no nick (the room itself)", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := rs.GetFor(room, tc.nick)
			if !ok || !r.Joined || r.Nick != "alice" || !r.NonAnonymous || r.Info.Name != "The Room" {
				t.Fatalf("snapshot %+v, %v: want the joined room's state", r, ok)
			}
			o, has := r.Occupants[tc.nick]
			if n := len(r.Occupants); has != (tc.want != "") || n != map[bool]int{true: 1, false: 0}[has] || o.RealJID.String() != tc.want {
				t.Fatalf("occupants %+v, want only %q (%s)", r.Occupants, tc.nick, tc.want)
			}
			if has {
				r.Occupants[tc.nick] = Occupant{Nick: "changed"}
				if full, _ := rs.Get(room); full.Occupants[tc.nick].RealJID.String() != tc.want || len(full.Occupants) != 2 {
					t.Errorf("the room changed with the snapshot: %+v", full.Occupants)
				}
			}
		})
	}
	if _, ok := rs.GetFor(jid.MustParse("other@muc.example.org"), "bob"); ok {
		t.Error("a snapshot of a room the login is not in")
	}
}
