package reply_test

import (
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/fallback"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
)

var (
	_ xml.Marshaler       = reply.Reply{}
	_ xml.Unmarshaler     = (*reply.Reply)(nil)
	_ xmlstream.Marshaler = reply.Reply{}
)

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		{Value: &reply.Reply{To: jid.MustParse("anna@example.com/laptop"), ID: "message-id1"},
			XML: `<reply xmlns="urn:xmpp:reply:0" to="anna@example.com/laptop" id="message-id1"></reply>`},
		{Value: &reply.Reply{ID: "message-id1"}, XML: `<reply xmlns="urn:xmpp:reply:0" id="message-id1"></reply>`},
		{Value: &reply.Reply{}, XML: `<reply xmlns="urn:xmpp:reply:0" to="anna@example.com"/>`, Err: reply.ErrMissingID},
		{Value: &reply.Reply{}, XML: `<reply xmlns="urn:xmpp:reply:0" to="@bad" id="x"/>`, Err: xmltest.ErrAny},
	})
}

func TestRoundTrip(t *testing.T) {
	// A reply built for Matrix → XMPP parses back to the same relation and,
	// with the quote stripped, to the same text; multi-byte characters in
	// the quote check that the range counts code points.
	msg := reply.Message(stanza.Message{To: jid.MustParse("room@muc.example"), Type: stanza.GroupChatMessage},
		reply.Reply{To: jid.MustParse("room@muc.example/anna"), ID: "stanza-id-9"},
		"We should bake a cake 🎂\nwith ✓ icing", "Great idea!")
	out, err := xmltest.Encode(msg)
	if err != nil {
		t.Fatal(err)
	}
	rep, ok, err := reply.Parse(xmltest.Reader(out))
	if err != nil || !ok || rep.ID != "stanza-id-9" || rep.To.String() != "room@muc.example/anna" {
		t.Fatalf("wrong reply %+v %t %v in %s", rep, ok, err, out)
	}
	var m struct {
		Body string `xml:"body"`
	}
	if err := xml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m.Body != "> We should bake a cake 🎂\n> with ✓ icing\nGreat idea!" {
		t.Errorf("wrong body %q", m.Body)
	}
	fbs, err := fallback.Parse(xmltest.Reader(out))
	if err != nil {
		t.Fatal(err)
	}
	body, err := reply.Strip(m.Body, fbs)
	if err != nil || body != "Great idea!" {
		t.Errorf("wrong stripped body %q: %v", body, err)
	}

	// Without a quote there is no fallback.
	out, _ = xmltest.Encode(reply.Message(stanza.Message{}, reply.Reply{ID: "x"}, "", "hi"))
	if fbs, _ := fallback.Parse(xmltest.Reader(out)); len(fbs) != 0 {
		t.Errorf("fallback without quote: %s", out)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in  string
		ok  bool
		err error
	}{
		{in: `<message xmlns="jabber:client"><body>hi</body></message>`},
		{in: `<message xmlns="jabber:client"><reply xmlns="urn:xmpp:reply:0" id="a"/><reply xmlns="urn:xmpp:reply:0" id="b"/></message>`, err: reply.ErrTwoReply},
		{in: `<message xmlns="jabber:client"><reply xmlns="urn:xmpp:reply:0"/></message>`, err: reply.ErrMissingID},
	} {
		_, ok, err := reply.Parse(xmltest.Reader(tc.in))
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || ok != tc.ok {
			t.Errorf("%s: ok=%t err=%v", tc.in, ok, err)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"a":      "> a\n",
		"a\nb\n": "> a\n> b\n",
		"":       "> \n",
	} {
		if got := reply.Quote(in); got != want {
			t.Errorf("Quote(%q) = %q, want %q", in, got, want)
		}
	}
}
