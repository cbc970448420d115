package chatstates_test

import (
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

var (
	_ xml.Marshaler       = chatstates.Active
	_ xml.Unmarshaler     = (*chatstates.State)(nil)
	_ xmlstream.Marshaler = chatstates.Active
)

func ptr(s chatstates.State) *chatstates.State { return &s }

func TestEncoding(t *testing.T) {
	var cases []xmltest.Case
	for _, s := range []chatstates.State{chatstates.Active, chatstates.Composing, chatstates.Paused, chatstates.Inactive, chatstates.Gone} {
		cases = append(cases, xmltest.Case{Value: ptr(s), XML: `<` + string(s) + ` xmlns="http://jabber.org/protocol/chatstates"></` + string(s) + `>`})
	}
	cases = append(cases,
		xmltest.Case{Value: ptr(""), XML: `<typing xmlns="http://jabber.org/protocol/chatstates"/>`, Err: chatstates.ErrUnknownState},
		xmltest.Case{Value: ptr(""), XML: `<active xmlns="jabber:client"/>`, Err: chatstates.ErrUnknownState},
	)
	xmltest.Run(t, cases)
	if _, err := xml.Marshal(chatstates.State("typing")); !errors.Is(err, chatstates.ErrUnknownState) {
		t.Errorf("unknown state marshaled: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want chatstates.State
		err  error
	}{
		{in: `<message xmlns="jabber:client" type="chat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`, want: chatstates.Composing},
		{in: `<message xmlns="jabber:client" type="chat"><body>hi</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>`, want: chatstates.Active},
		{in: `<message xmlns="jabber:client" type="chat"><body>hi</body></message>`},
		{in: `<message xmlns="jabber:client"><active xmlns="http://jabber.org/protocol/chatstates"/><gone xmlns="http://jabber.org/protocol/chatstates"/></message>`, err: chatstates.ErrTwoStates},
		{in: `<message xmlns="jabber:client"><typing xmlns="http://jabber.org/protocol/chatstates"/></message>`, err: chatstates.ErrUnknownState},
	} {
		got, err := chatstates.Parse(xmltest.Reader(tc.in))
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Fatalf("%s: wrong error: want=%v, got=%v", tc.in, tc.err, err)
		}
		if got != tc.want {
			t.Errorf("%s: want=%q, got=%q", tc.in, tc.want, got)
		}
	}
}

func TestMessage(t *testing.T) {
	got, err := xmltest.Encode(chatstates.Message(stanza.Message{To: jid.MustParse("juliet@capulet.example"), Type: stanza.ChatMessage}, chatstates.Paused))
	want := `<message type="chat" to="juliet@capulet.example"><paused xmlns="http://jabber.org/protocol/chatstates"></paused><no-store xmlns="urn:xmpp:hints"></no-store></message>`
	if err != nil || got != want {
		t.Errorf("wrong message:\nwant=%s\n got=%s (%v)", want, got, err)
	}
}
