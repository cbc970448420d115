package markers_test

import (
	"encoding/xml"
	"errors"
	"reflect"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
)

var (
	_ xml.Marshaler       = markers.Marker{}
	_ xml.Unmarshaler     = (*markers.Marker)(nil)
	_ xmlstream.Marshaler = markers.Marker{}
	_ xmlstream.Marshaler = markers.Markable{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		{Value: &markers.Marker{Kind: markers.Displayed, ID: "m1"}, XML: `<displayed xmlns="urn:xmpp:chat-markers:0" id="m1"></displayed>`},
		{Value: &markers.Marker{Kind: markers.Received, ID: "m2"}, XML: `<received xmlns="urn:xmpp:chat-markers:0" id="m2"></received>`},
		{Value: &markers.Marker{Kind: markers.Acknowledged, ID: "m3"}, XML: `<acknowledged xmlns="urn:xmpp:chat-markers:0" id="m3"></acknowledged>`},
		{Value: &markers.Markable{}, XML: `<markable xmlns="urn:xmpp:chat-markers:0"></markable>`, NoUnmarshal: true},
		{Value: &markers.Marker{}, XML: `<displayed xmlns="urn:xmpp:chat-markers:0"/>`, Err: markers.ErrMissingID},
		{Value: &markers.Marker{}, XML: `<read xmlns="urn:xmpp:chat-markers:0" id="x"/>`, Err: markers.ErrUnknownMarker},
		{Value: &markers.Marker{}, XML: `<received xmlns="urn:xmpp:receipts" id="x"/>`, Err: markers.ErrUnknownMarker},
	})
	for _, m := range []markers.Marker{{Kind: "read", ID: "x"}, {Kind: markers.Displayed}} {
		if _, err := xml.Marshal(m); err == nil {
			t.Errorf("invalid marker %+v marshaled", m)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want markers.Markers
		err  error
	}{
		{in: `<message xmlns="jabber:client" type="chat"><body>hi</body><markable xmlns="urn:xmpp:chat-markers:0"/></message>`, want: markers.Markers{Markable: true}},
		{in: `<message xmlns="jabber:client" type="chat"><displayed xmlns="urn:xmpp:chat-markers:0" id="a"/><store xmlns="urn:xmpp:hints"/></message>`,
			want: markers.Markers{Markers: []markers.Marker{{Kind: markers.Displayed, ID: "a"}}}},
		{in: `<message xmlns="jabber:client"><received xmlns="urn:xmpp:receipts" id="a"/></message>`},
		{in: `<message xmlns="jabber:client"><received xmlns="urn:xmpp:chat-markers:0"/></message>`, err: markers.ErrMissingID},
	} {
		got, err := markers.Parse(xmltest.Reader(tc.in))
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Fatalf("%s: wrong error: want=%v, got=%v", tc.in, tc.err, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: want=%+v, got=%+v", tc.in, tc.want, got)
		}
	}
}

func TestMessage(t *testing.T) {
	got, err := xmltest.Encode(markers.Message(stanza.Message{To: jid.MustParse("room@muc.example"), Type: stanza.GroupChatMessage},
		markers.Marker{Kind: markers.Displayed, ID: "stanza-id-1"}))
	want := `<message type="groupchat" to="room@muc.example"><displayed xmlns="urn:xmpp:chat-markers:0" id="stanza-id-1"></displayed><store xmlns="urn:xmpp:hints"></store></message>`
	if err != nil || got != want {
		t.Errorf("wrong message:\nwant=%s\n got=%s (%v)", want, got, err)
	}
}
