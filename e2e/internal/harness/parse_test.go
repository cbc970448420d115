package harness

import "testing"

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		want      ReceivedMessage
		encrypted bool
	}{
		{`<message to='r@muc' type='groupchat' id='1'><body>a &amp; b</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>`,
			ReceivedMessage{To: "r@muc", Type: "groupchat", ID: "1", Body: "a & b", OriginID: "o1"}, false},
		{`<message xmlns='jabber:client' to='d@h' type='chat'><body>fallback</body><encrypted xmlns='urn:xmpp:omemo:2'><header sid='7'/><payload>AA==</payload></encrypted></message>`,
			ReceivedMessage{To: "d@h", Type: "chat", Body: "fallback"}, true},
		{`<message to='a@h'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='a@h/x' to='b@h' type='chat'><body>hi</body></message></forwarded></sent></message>`,
			ReceivedMessage{From: "a@h/x", To: "b@h", Type: "chat", Body: "hi", Carbon: true, CarbonSent: true}, false},
	} {
		got, err := ParseMessage([]byte(tc.raw))
		if err != nil {
			t.Fatalf("ParseMessage(%s): %v", tc.raw, err)
		}
		if (got.OMEMO != nil) != tc.encrypted {
			t.Errorf("ParseMessage(%s): OMEMO %v, want %v", tc.raw, got.OMEMO != nil, tc.encrypted)
		}
		got.OMEMO = nil
		if got.From != tc.want.From || got.To != tc.want.To || got.ID != tc.want.ID || got.Type != tc.want.Type ||
			got.Body != tc.want.Body || got.OriginID != tc.want.OriginID || got.Carbon != tc.want.Carbon || got.CarbonSent != tc.want.CarbonSent {
			t.Errorf("ParseMessage(%s) = %+v, want %+v", tc.raw, got, tc.want)
		}
	}
	if _, err := ParseMessage([]byte(`<message><body>`)); err == nil {
		t.Error("ParseMessage of a truncated stanza: no error")
	}
}
