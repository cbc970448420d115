package xmppclient

import (
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

func encodeXML(t *testing.T, r xml.TokenReader) string {
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

func signalXML(t *testing.T, s Signal) string {
	t.Helper()
	r, err := s.Stanza()
	if err != nil {
		t.Fatal(err)
	}
	return encodeXML(t, r)
}

// TestSignalStanzas: our typing and markers go to the room as groupchat
// messages, typing never stored, markers naming the room's stanza-id; our
// presence carries show, status and caps.
func TestSignalStanzas(t *testing.T) {
	room := jid.MustParse("plans@conference.example.org/alice")
	for _, tc := range []struct {
		name string
		got  string
		want []string
	}{
		{"typing", signalXML(t, Signal{To: room, Room: true, ID: "t1", ChatState: chatstates.Composing}), []string{`to="plans@conference.example.org"`, `type="groupchat"`, `<composing xmlns="http://jabber.org/protocol/chatstates">`, `<no-store xmlns="urn:xmpp:hints">`}},
		{"paused", signalXML(t, Signal{To: room, Room: true, ID: "t2", ChatState: chatstates.Paused}), []string{"<paused "}},
		{"marker", signalXML(t, Signal{To: room, Room: true, ID: "m1", Displayed: "sid-123"}), []string{`type="groupchat"`, `<displayed xmlns="urn:xmpp:chat-markers:0" id="sid-123">`}},
		{"away", encodeXML(t, PresenceStanza(ShowAway, "lunch")), []string{"<presence", "<show>away</show>", "<status>lunch</status>", `<c xmlns="http://jabber.org/protocol/caps"`}},
	} {
		for _, w := range tc.want {
			if !strings.Contains(tc.got, w) {
				t.Errorf("%s: %s lacks %s", tc.name, tc.got, w)
			}
		}
	}
	if got := encodeXML(t, PresenceStanza(ShowAvailable, "")); strings.Contains(got, "<show>") || strings.Contains(got, "<status>") {
		t.Errorf("available presence: %s", got)
	}
}

func TestParseSignals(t *testing.T) {
	read := func(s string) *stanzabuf.Stanza {
		st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(s)))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	s := ParseSignals(read(`<message xmlns="jabber:client" type="groupchat"><composing xmlns="http://jabber.org/protocol/chatstates"/><markable xmlns="urn:xmpp:chat-markers:0"/><displayed xmlns="urn:xmpp:chat-markers:0" id="x"/></message>`))
	if s.ChatState != chatstates.Composing || !s.Markable || len(s.Markers) != 1 || s.Markers[0].Kind != markers.Displayed || s.Markers[0].ID != "x" {
		t.Errorf("ParseSignals = %+v", s)
	}
	if s := ParseSignals(nil); s.Markable || s.ChatState != "" {
		t.Errorf("nil stanza: %+v", s)
	}
}
