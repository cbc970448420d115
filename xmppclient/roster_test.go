package xmppclient

import (
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
)

func TestRoster(t *testing.T) {
	bob, carol := jid.MustParse("bob@example.org"), jid.MustParse("carol@example.org")
	r := NewRoster()
	r.Replace([]roster.Item{{JID: carol, Name: "Carol"}, {JID: bob, Name: "Bob"}})
	r.Set(roster.Item{JID: bob, Name: "Robert", Subscription: "both"})
	if got, ok := r.Get(jid.MustParse("bob@example.org/phone")); !ok || got.Name != "Robert" {
		t.Errorf("Get(bob/phone) = %+v, %v; want the pushed item", got, ok)
	}
	if l := r.List(); len(l) != 2 || !l[0].JID.Equal(bob) || !l[1].JID.Equal(carol) {
		t.Errorf("List = %+v, want bob then carol", l)
	}
	r.Set(roster.Item{JID: carol, Subscription: "remove"})
	if _, ok := r.Get(carol); ok {
		t.Error("removed contact still on the roster")
	}

	for _, tc := range []struct {
		from      string
		available bool
		want      bool
	}{
		{"bob@example.org/phone", true, true},
		{"bob@example.org/laptop", true, true},
		{"bob@example.org/phone", false, true},
		{"bob@example.org/laptop", false, false},
		{"bob@example.org/never", false, false},
	} {
		r.SetOnline(jid.MustParse(tc.from), tc.available)
		if got := r.Online(bob); got != tc.want {
			t.Errorf("after %s available=%v: Online = %v, want %v", tc.from, tc.available, got, tc.want)
		}
	}
}
