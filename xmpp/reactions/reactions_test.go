package reactions_test

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
)

var (
	_ xml.Marshaler       = reactions.Reactions{}
	_ xml.Unmarshaler     = (*reactions.Reactions)(nil)
	_ xmlstream.Marshaler = reactions.Reactions{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		0: {
			Value: &reactions.Reactions{ID: "744f6e18", Emojis: []string{"👋", "🐢"}},
			XML:   `<reactions xmlns="urn:xmpp:reactions:0" id="744f6e18"><reaction>👋</reaction><reaction>🐢</reaction></reactions>`,
		},
		1: {
			// Removing all reactions.
			Value: &reactions.Reactions{ID: "744f6e18", Emojis: []string{}},
			XML:   `<reactions xmlns="urn:xmpp:reactions:0" id="744f6e18"></reactions>`,
		},
		2: {
			Value:     &reactions.Reactions{ID: "a", Emojis: []string{"👍", "👨‍👩‍👧‍👦"}},
			XML:       `<reactions xmlns="urn:xmpp:reactions:0" id="a"><reaction> 👍 </reaction><reaction/><reaction>👍</reaction><reaction>👨‍👩‍👧‍👦</reaction><other>x</other></reactions>`,
			NoMarshal: true,
		},
		3: {Value: &reactions.Reactions{}, XML: `<reactions xmlns="urn:xmpp:reactions:0"><reaction>👍</reaction></reactions>`, Err: reactions.ErrMissingID},
		4: {Value: &reactions.Reactions{}, XML: `<reactions xmlns="urn:xmpp:reactions:0" id="a"><reaction>` + strings.Repeat("x", 65) + `</reaction></reactions>`, Err: reactions.ErrTooLong},
		5: {Value: &reactions.Reactions{}, XML: `<reactions xmlns="urn:xmpp:reactions:0" id="a">` + strings.Repeat(`<reaction>👍</reaction>`, 65) + `</reactions>`, Err: reactions.ErrTooMany},
	})
	if _, err := xml.Marshal(reactions.Reactions{}); !errors.Is(err, reactions.ErrMissingID) {
		t.Errorf("reactions without id marshaled: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want reactions.Reactions
		ok   bool
		err  error
	}{
		{in: `<message xmlns="jabber:client" type="chat"><reactions id="m1" xmlns="urn:xmpp:reactions:0"><reaction>👋</reaction></reactions><store xmlns="urn:xmpp:hints"/></message>`,
			want: reactions.Reactions{ID: "m1", Emojis: []string{"👋"}}, ok: true},
		{in: `<message xmlns="jabber:client" type="chat"><body>hi</body></message>`},
		{in: `<message xmlns="jabber:client"><reactions id="a" xmlns="urn:xmpp:reactions:0"/><reactions id="b" xmlns="urn:xmpp:reactions:0"/></message>`, err: reactions.ErrTwoReactions},
		{in: `<message xmlns="jabber:client"><reactions xmlns="urn:xmpp:reactions:0"/></message>`, err: reactions.ErrMissingID},
	} {
		got, ok, err := reactions.Parse(xmltest.Reader(tc.in))
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Fatalf("%s: wrong error: want=%v, got=%v", tc.in, tc.err, err)
		}
		if ok != tc.ok || (tc.ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%s: want=%+v %t, got=%+v %t", tc.in, tc.want, tc.ok, got, ok)
		}
	}
}

func TestMessage(t *testing.T) {
	out, err := xmltest.Encode(reactions.Message(stanza.Message{To: jid.MustParse("romeo@montague.lit"), Type: stanza.ChatMessage},
		reactions.Reactions{ID: "m1", Emojis: []string{"🐢"}}))
	want := `<message type="chat" to="romeo@montague.lit"><reactions xmlns="urn:xmpp:reactions:0" id="m1"><reaction>🐢</reaction></reactions><store xmlns="urn:xmpp:hints"></store></message>`
	if err != nil || out != want {
		t.Errorf("wrong message:\nwant=%s\n got=%s (%v)", want, out, err)
	}
}
