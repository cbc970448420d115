package xmppclient

import (
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

func TestParsePresence(t *testing.T) {
	for _, tc := range []struct {
		name string
		xml  string
		want Presence
		ok   bool
	}{
		{"available", `<presence xmlns="jabber:client" from="a@x/r"/>`, Presence{Show: ShowAvailable}, true},
		{"away with status", `<presence xmlns="jabber:client" from="a@x/r"><show>away</show><status>lunch</status><priority>5</priority></presence>`,
			Presence{Show: ShowAway, Status: "lunch", Priority: 5}, true},
		{"dnd, status without lang preferred", `<presence xmlns="jabber:client" from="a@x/r"><show>dnd</show><status xml:lang="de">Mittag</status><status>lunch</status></presence>`,
			Presence{Show: ShowDND, Status: "lunch"}, true},
		{"unknown show is available", `<presence xmlns="jabber:client" from="a@x/r"><show>sleeping</show></presence>`, Presence{Show: ShowAvailable}, true},
		{"bad priority ignored", `<presence xmlns="jabber:client" from="a@x/r"><priority>999</priority></presence>`, Presence{Show: ShowAvailable}, true},
		{"unavailable", `<presence xmlns="jabber:client" from="a@x/r" type="unavailable"><show>away</show><status>bye</status></presence>`,
			Presence{Show: ShowOffline, Status: "bye"}, true},
		{"extension skipped", `<presence xmlns="jabber:client" from="a@x/r"><x xmlns="vcard-temp:x:update"><photo>ab</photo></x><show>xa</show></presence>`,
			Presence{Show: ShowXA}, true},
		{"subscribe is not presence", `<presence xmlns="jabber:client" from="a@x" type="subscribe"/>`, Presence{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, p, ok, err := ParsePresence(xml.NewDecoder(strings.NewReader(tc.xml)))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || (ok && p != tc.want) {
				t.Errorf("got %+v, %v; want %+v, %v", p, ok, tc.want, tc.ok)
			}
			if from.Bare().String() != "a@x" {
				t.Errorf("from %s", from)
			}
		})
	}
}

func TestPresencesAggregate(t *testing.T) {
	ps := NewPresences()
	a := func(s string) jid.JID { return jid.MustParse(s) }
	steps := []struct {
		from string
		p    Presence
		want Presence
	}{
		{"c@x/phone", Presence{Show: ShowAway, Priority: 0}, Presence{Show: ShowAway}},
		// A higher priority wins although it is less available.
		{"c@x/laptop", Presence{Show: ShowXA, Status: "far", Priority: 10}, Presence{Show: ShowXA, Status: "far", Priority: 10}},
		// Equal priority: the most reachable show.
		{"c@x/desk", Presence{Show: ShowChat, Priority: 10}, Presence{Show: ShowChat, Priority: 10}},
		{"c@x/desk", Presence{Show: ShowOffline}, Presence{Show: ShowXA, Status: "far", Priority: 10}},
		{"c@x/laptop", Presence{Show: ShowOffline}, Presence{Show: ShowAway}},
		{"c@x/phone", Presence{Show: ShowOffline, Status: "gone"}, Presence{Show: ShowOffline, Status: "gone"}},
		{"c@x/phone", Presence{Show: ShowDND}, Presence{Show: ShowDND}},
		{"c@x", Presence{Show: ShowOffline}, Presence{Show: ShowOffline}},
	}
	for i, st := range steps {
		if got := ps.Update(a(st.from), st.p); got != st.want {
			t.Fatalf("step %d (%s %+v): got %+v, want %+v", i, st.from, st.p, got, st.want)
		}
	}
	if p, ok := ps.Get(a("c@x")); !ok || p.Show != ShowOffline {
		t.Errorf("Get after offline: %+v %v", p, ok)
	}
	ps.Reset()
	if _, ok := ps.Get(a("c@x")); ok {
		t.Error("Reset kept the contact")
	}
}
