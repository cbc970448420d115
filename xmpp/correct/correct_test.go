package correct_test

import (
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/correct"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

var (
	_ xml.Marshaler       = correct.Replace{}
	_ xml.Unmarshaler     = (*correct.Replace)(nil)
	_ xmlstream.Marshaler = correct.Replace{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		{Value: &correct.Replace{ID: "bad1"}, XML: `<replace xmlns="urn:xmpp:message-correct:0" id="bad1"></replace>`},
		{Value: &correct.Replace{}, XML: `<replace xmlns="urn:xmpp:message-correct:0"/>`, Err: correct.ErrMissingID},
	})
	if _, err := xml.Marshal(correct.Replace{}); !errors.Is(err, correct.ErrMissingID) {
		t.Errorf("replace without id marshaled: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in  string
		id  string
		ok  bool
		err error
	}{
		{in: `<message xmlns="jabber:client"><body>But soft, what light?</body><replace xmlns="urn:xmpp:message-correct:0" id="bad1"/></message>`, id: "bad1", ok: true},
		{in: `<message xmlns="jabber:client"><body>x</body></message>`},
		{in: `<message xmlns="jabber:client"><replace xmlns="urn:xmpp:message-correct:1" id="a"/></message>`},
		{in: `<message xmlns="jabber:client"><replace xmlns="urn:xmpp:message-correct:0"/></message>`, err: correct.ErrMissingID},
		{in: `<message xmlns="jabber:client"><replace xmlns="urn:xmpp:message-correct:0" id="a"/><replace xmlns="urn:xmpp:message-correct:0" id="b"/></message>`, err: correct.ErrTwoIDs},
	} {
		id, ok, err := correct.Parse(xmltest.Reader(tc.in))
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Fatalf("%s: wrong error: want=%v, got=%v", tc.in, tc.err, err)
		}
		if id != tc.id || ok != tc.ok {
			t.Errorf("%s: want=(%q,%t), got=(%q,%t)", tc.in, tc.id, tc.ok, id, ok)
		}
	}
}

func TestSameSender(t *testing.T) {
	j := jid.MustParse
	for _, tc := range []struct {
		a, b      string
		groupchat bool
		want      bool
	}{
		{"romeo@montague.example/a", "romeo@montague.example/b", false, true},
		{"romeo@montague.example/a", "tybalt@capulet.example/a", false, false},
		{"room@muc.example/romeo", "room@muc.example/romeo", true, true},
		{"room@muc.example/romeo", "room@muc.example/tybalt", true, false},
	} {
		if got := correct.SameSender(j(tc.a), j(tc.b), tc.groupchat); got != tc.want {
			t.Errorf("SameSender(%s, %s, %t) = %t", tc.a, tc.b, tc.groupchat, got)
		}
	}
}

func TestMessage(t *testing.T) {
	got, err := xmltest.Encode(correct.Message(stanza.Message{ID: "good1", To: jid.MustParse("juliet@capulet.example"), Type: stanza.ChatMessage}, "bad1", "But soft, what light through yonder window breaks?"))
	want := `<message type="chat" to="juliet@capulet.example" id="good1"><body>But soft, what light through yonder window breaks?</body><replace xmlns="urn:xmpp:message-correct:0" id="bad1"></replace></message>`
	if err != nil || got != want {
		t.Errorf("wrong message:\nwant=%s\n got=%s (%v)", want, got, err)
	}
}
