package xmpptap

import "testing"

// TestLedger drives both directions' counters through a sequence of events
// and checks every translated h: "s" a server stanza to the bridge, "i" an
// injected one, "f" a bridge stanza forwarded, "w" one swallowed, "r" the
// bridge's ack request forwarded; "A<n>" the bridge acknowledges n
// (translated for the server), "a<n>" the server answers the oldest request
// with n (translated for the bridge).
func TestLedger(t *testing.T) {
	type ack struct {
		event string
		h     uint32 // what the other side must see
	}
	for _, tc := range []struct {
		name   string
		events []string
		acks   []ack
	}{
		{"nothing injected or swallowed", []string{"s", "s", "f", "f", "r", "f"}, []ack{{"A2", 2}, {"a2", 2}}},
		{"injected among server stanzas", []string{"s", "i", "i", "s", "i"}, []ack{{"A1", 1}, {"A3", 1}, {"A4", 2}, {"A5", 2}}},
		{"bridge acks before the injected ones", []string{"s", "s", "i", "i"}, []ack{{"A2", 2}, {"A4", 2}}},
		{"burst injected then server resumes", []string{"s", "i", "i", "i", "s", "s"}, []ack{{"A6", 3}}},
		{"swallowed before the request", []string{"f", "w", "w", "r", "f"}, []ack{{"a1", 3}}},
		{"swallowed after the request: not yet", []string{"f", "r", "w", "w", "f"}, []ack{{"a1", 1}}},
		{"requests answered in order", []string{"f", "r", "w", "w", "r", "f", "w", "r"}, []ack{{"a1", 1}, {"a1", 3}, {"a2", 5}}},
		{"an answer without a request keeps the last", []string{"w", "r", "w"}, []ack{{"a0", 1}, {"a0", 1}}},
		{"both ways at once", []string{"s", "f", "i", "w", "r", "s", "f", "w"}, []ack{{"A3", 2}, {"a1", 2}, {"A3", 2}}},
		{"wrapping counters", []string{"wrap", "s", "i", "s", "f", "w", "r", "f"}, []ack{{"A1", 1}, {"A3", 2}, {"a1", 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l ledger
			for _, e := range tc.events {
				switch e {
				case "s":
					l.in(false)
				case "i":
					l.in(true)
				case "w":
					l.swallow()
				case "r":
					l.request()
				case "wrap":
					// The inbound count just below 2^32: h wraps to 0, 1, ….
					l.written = ^uint32(0)
				}
			}
			base := uint32(0)
			if tc.events[0] == "wrap" {
				base = ^uint32(0)
			}
			for _, a := range tc.acks {
				var n uint32
				for _, c := range a.event[1:] {
					n = n*10 + uint32(c-'0')
				}
				var got uint32
				if a.event[0] == 'A' {
					got = l.toServer(base+n) - base
				} else {
					got = l.toBridge(base+n) - base
				}
				if got != a.h {
					t.Errorf("%s: got h %d, want %d", a.event, got, a.h)
				}
			}
		})
	}
}

func TestLedgerResumed(t *testing.T) {
	var l ledger
	l.swallow()
	l.request()
	l.swallow()
	if got := l.toBridgeAll(4); got != 6 {
		t.Errorf("<resumed h='4'/> after 2 swallowed: got %d, want 6", got)
	}
	l.resetOut()
	l.request()
	if got := l.toBridge(1); got != 1 {
		t.Errorf("after <enable/>: got %d, want 1", got)
	}
}

func TestSMRewrite(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{`<a xmlns='urn:xmpp:sm:3' h='10'/>`, `<a xmlns='urn:xmpp:sm:3' h='7'/>`},
		{`<a h="10" xmlns="urn:xmpp:sm:3"/>`, `<a h="7" xmlns="urn:xmpp:sm:3"/>`},
		{`<resumed xmlns='urn:xmpp:sm:3' previd='x' h='10'/>`, `<resumed xmlns='urn:xmpp:sm:3' previd='x' h='7'/>`},
		{`<r xmlns='urn:xmpp:sm:3'/>`, `<r xmlns='urn:xmpp:sm:3'/>`},
	} {
		got := string(smRewrite([]byte(tc.raw), func(h uint32) uint32 { return h - 3 }))
		if got != tc.want {
			t.Errorf("smRewrite(%s) = %s, want %s", tc.raw, got, tc.want)
		}
	}
}

func TestStanzaAndSMNames(t *testing.T) {
	for _, tc := range []struct {
		p       Piece
		stanza  bool
		smLocal string
	}{
		{Piece{Name: "message", Raw: []byte(`<message to='a'/>`)}, true, ""},
		{Piece{Name: "iq", Raw: []byte(`<iq xmlns='jabber:client'/>`)}, true, ""},
		{Piece{Name: "presence", Raw: []byte(`<presence xmlns='jabber:server'/>`)}, false, ""},
		{Piece{Name: "a", Raw: []byte(`<a xmlns='urn:xmpp:sm:3' h='1'/>`)}, false, "a"},
		{Piece{Name: "enabled", Raw: []byte(`<enabled xmlns='urn:xmpp:sm:3' resume='true'/>`)}, false, "enabled"},
		{Piece{Name: "a", Raw: []byte(`<a h='1'/>`)}, false, ""},
		{Piece{Name: "stream:features", Raw: []byte(`<stream:features/>`)}, false, ""},
	} {
		if got := isStanza(tc.p); got != tc.stanza {
			t.Errorf("isStanza(%s) = %v", tc.p.Raw, got)
		}
		if got := smName(tc.p); got != tc.smLocal {
			t.Errorf("smName(%s) = %q, want %q", tc.p.Raw, got, tc.smLocal)
		}
	}
}
