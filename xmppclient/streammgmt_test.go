package xmppclient

import (
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
)

// TestUnackedKind: what a stream that could not be resumed hands back is
// looked for in the archive (messages with a body or OMEMO payload), sent
// again without a look (signals the archive does not keep), or dropped
// (IQs, presences, errors, chat states and markers).
func TestUnackedKind(t *testing.T) {
	tests := []struct {
		name string
		st   sm.Stanza
		want unackedClass
	}{
		{"chat body", sm.Stanza{Name: "message", Type: "chat", Raw: []byte(`<message xmlns="jabber:client" type="chat" id="a"><body>hi</body></message>`)}, unackedArchived},
		{"groupchat body", sm.Stanza{Name: "message", Type: "groupchat", Raw: []byte(`<message xmlns="jabber:client" type="groupchat" id="a"><body>hi</body></message>`)}, unackedArchived},
		{"omemo", sm.Stanza{Name: "message", Type: "chat", Raw: []byte(`<message xmlns="jabber:client" type="chat" id="a"><encrypted xmlns="urn:xmpp:omemo:2"><header sid="1"></header></encrypted></message>`)}, unackedArchived},
		{"reaction", sm.Stanza{Name: "message", Type: "chat", Raw: []byte(`<message xmlns="jabber:client" type="chat" id="a"><reactions xmlns="urn:xmpp:reactions:0" id="b"><reaction>👍</reaction></reactions></message>`)}, unackedResend},
		{"retraction", sm.Stanza{Name: "message", Type: "chat", Raw: []byte(`<message xmlns="jabber:client" type="chat" id="a"><retract xmlns="urn:xmpp:message-retract:1" id="b"></retract></message>`)}, unackedResend},
		{"chat state", sm.Stanza{Name: "message", Type: "chat", Raw: []byte(`<message xmlns="jabber:client" type="chat" id="a"><composing xmlns="http://jabber.org/protocol/chatstates"></composing></message>`)}, unackedSkip},
		{"marker", sm.Stanza{Name: "message", Type: "chat", Raw: []byte(`<message xmlns="jabber:client" type="chat" id="a"><displayed xmlns="urn:xmpp:chat-markers:0" id="b"></displayed></message>`)}, unackedSkip},
		{"error", sm.Stanza{Name: "message", Type: "error", Raw: []byte(`<message xmlns="jabber:client" type="error" id="a"><body>x</body></message>`)}, unackedSkip},
		{"iq", sm.Stanza{Name: "iq", Type: "get", Raw: []byte(`<iq xmlns="jabber:client" type="get" id="a"><ping xmlns="urn:xmpp:ping"></ping></iq>`)}, unackedSkip},
		{"presence", sm.Stanza{Name: "presence", Raw: []byte(`<presence xmlns="jabber:client"></presence>`)}, unackedSkip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unackedKind(tt.st); got != tt.want {
				t.Errorf("unackedKind = %d, want %d", got, tt.want)
			}
		})
	}
}
