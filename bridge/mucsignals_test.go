package bridge

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

func encode(t *testing.T, r xml.TokenReader) string {
	t.Helper()
	var b strings.Builder
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, r); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestGroupSignalStanzas: our typing and markers go to the room as
// groupchat messages, typing never stored, markers naming the room's
// stanza-id.
func TestGroupSignalStanzas(t *testing.T) {
	room := jid.MustParse("plans@conference.example.org/alice")
	typing := encode(t, groupTypingStanza(room, true))
	for _, want := range []string{`to="plans@conference.example.org"`, `type="groupchat"`, `<composing xmlns="http://jabber.org/protocol/chatstates">`, `<no-store xmlns="urn:xmpp:hints">`} {
		if !strings.Contains(typing, want) {
			t.Errorf("typing stanza %s lacks %s", typing, want)
		}
	}
	if paused := encode(t, groupTypingStanza(room, false)); !strings.Contains(paused, "<paused ") {
		t.Errorf("stopped typing is %s", paused)
	}
	marker := encode(t, groupMarkerStanza(room, "sid-123"))
	for _, want := range []string{`type="groupchat"`, `<displayed xmlns="urn:xmpp:chat-markers:0" id="sid-123">`} {
		if !strings.Contains(marker, want) {
			t.Errorf("marker stanza %s lacks %s", marker, want)
		}
	}
}

func TestGroupMarkable(t *testing.T) {
	read := func(s string) *stanzabuf.Stanza {
		st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(s)))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if !groupMarkable(read(`<message xmlns="jabber:client" type="groupchat"><body>hi</body><markable xmlns="urn:xmpp:chat-markers:0"/></message>`)) {
		t.Error("markable message not seen as such")
	}
	if groupMarkable(read(`<message xmlns="jabber:client" type="groupchat"><body>hi</body></message>`)) || groupMarkable(nil) {
		t.Error("plain message seen as markable")
	}
	if typingTimeoutFor(chatstates.Composing, false) != typingTimeout || typingTimeoutFor(chatstates.Composing, true) != 0 ||
		typingTimeoutFor(chatstates.Paused, false) != 0 || typingTimeout != 30*time.Second {
		t.Error("typing timeouts")
	}
}
