package bridge

import (
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestDeferrable: while a catch-up runs, live 1:1 messages wait for it; group chat traffic, our
// own archive results and presences do not.
func TestDeferrable(t *testing.T) {
	tests := []struct {
		name, xml string
		want      bool
	}{
		{"live chat message", `<message xmlns="jabber:client" from="bob@example.org/phone" type="chat" id="m1"><body>hi</body></message>`, true},
		{"offline message", `<message xmlns="jabber:client" from="bob@example.org/phone" type="chat" id="m1"><body>hi</body><delay xmlns="urn:xmpp:delay" stamp="2026-11-20T08:00:00Z"/></message>`, true},
		{"group chat message", `<message xmlns="jabber:client" from="room@muc.example.org/bob" type="groupchat" id="m1"><body>hi</body></message>`, false},
		{"archive result", archiveResult("", "q1", `<message xmlns="jabber:client" from="bob@example.org/phone" to="alice@example.org" type="chat" id="m1"><body>old</body></message>`), false},
		{"presence", `<presence xmlns="jabber:client" from="room@muc.example.org/bob"/>`, false},
	}
	for _, tc := range tests {
		if got := deferrable(xmppclient.Classify(tokens(t, tc.xml))); got != tc.want {
			t.Errorf("%s: deferrable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTrackable: only live messages and results of the running catch-up enter the watermark.
func TestTrackable(t *testing.T) {
	c := &Client{}
	c.delivery.catchingUp = 2
	tests := []struct {
		name string
		in   incoming
		want bool
	}{
		{"live with archive id", incoming{Message: xmppclient.Message{StanzaID: "a1"}}, true},
		{"live without archive id", incoming{}, false},
		{"result of the running catch-up", incoming{Message: xmppclient.Message{StanzaID: "a1", Archived: true}, catchUpSeq: 2}, true},
		{"late result of an earlier catch-up", incoming{Message: xmppclient.Message{StanzaID: "a1", Archived: true}, catchUpSeq: 1}, false},
	}
	for _, tc := range tests {
		if got := c.trackable(&tc.in); got != tc.want {
			t.Errorf("%s: trackable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
