package carbons_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

var romeo = jid.MustParse("romeo@montague.example/garden")

const (
	inner = `<message xmlns="jabber:client" from="juliet@capulet.example/balcony" to="romeo@montague.example/garden" type="chat"><body>Wherefore art thou?</body></message>`
	sent  = `<message xmlns="jabber:client" from="romeo@montague.example/home" to="juliet@capulet.example/balcony" type="chat"><body>Here</body></message>`
)

func wrap(from, kind, payload string) string {
	f := ""
	if from != "" {
		f = ` from="` + from + `"`
	}
	return `<message xmlns="jabber:client"` + f + ` to="romeo@montague.example/garden" type="chat">` +
		`<` + kind + ` xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` + payload +
		`</forwarded></` + kind + `></message>`
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		sent bool
		from string
		body string
		err  error
	}{
		{name: "received", in: wrap("romeo@montague.example", "received", inner), from: "juliet@capulet.example/balcony", body: "Wherefore art thou?"},
		{name: "received, from blanked by session", in: wrap("", "received", inner), from: "juliet@capulet.example/balcony", body: "Wherefore art thou?"},
		{name: "sent", in: wrap("romeo@montague.example", "sent", sent), sent: true, from: "romeo@montague.example/home", body: "Here"},
		{name: "from uncanonical own JID", in: wrap("Romeo@Montague.example", "received", inner), from: "juliet@capulet.example/balcony", body: "Wherefore art thou?"},
		{name: "forged by contact", in: wrap("tybalt@capulet.example/home", "received", inner), err: carbons.ErrForged},
		{name: "forged by own full JID", in: wrap("romeo@montague.example/other", "received", inner), err: carbons.ErrForged},
		{name: "forged by own server", in: wrap("montague.example", "received", inner), err: carbons.ErrForged},
		{name: "sent copy of someone else's message", in: wrap("romeo@montague.example", "sent", inner), err: carbons.ErrForged},
		{name: "received copy addressed elsewhere", in: wrap("romeo@montague.example", "received", sent), err: carbons.ErrForged},
		{name: "not a carbon", in: inner, err: carbons.ErrNotCarbon},
		{name: "wrong namespace", in: strings.ReplaceAll(wrap("", "received", inner), "carbons:2", "carbons:1"), err: carbons.ErrNotCarbon},
		{name: "no forwarded", in: `<message xmlns="jabber:client"><received xmlns="urn:xmpp:carbons:2"/></message>`, err: carbons.ErrMalformed},
		{name: "no message", in: wrap("", "received", ""), err: carbons.ErrMalformed},
		{name: "two messages", in: wrap("", "received", inner+inner), err: carbons.ErrMalformed},
		{name: "two carbons", in: strings.Replace(wrap("", "received", inner), "</received>", `</received><sent xmlns="urn:xmpp:carbons:2"/>`, 1), err: carbons.ErrMalformed},
		{name: "stray element", in: strings.Replace(wrap("", "received", inner), "<forwarded", "<x/><forwarded", 1), err: carbons.ErrMalformed},
		{name: "bad inner JID", in: wrap("", "received", `<message xmlns="jabber:client" from="@bad"/>`), err: carbons.ErrMalformed},
		{name: "truncated", in: wrap("", "received", inner)[:200], err: xmltest.ErrAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := carbons.Parse(xmltest.Reader(tc.in), romeo)
			if tc.err != nil {
				if err == nil || (tc.err != xmltest.ErrAny && !errors.Is(err, tc.err)) {
					t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if c.Sent != tc.sent || c.Message.From.String() != tc.from {
				t.Errorf("wrong carbon: sent=%t from=%s", c.Sent, c.Message.From)
			}
			// The inner message can be read more than once.
			for i := 0; i < 2; i++ {
				var m struct {
					XMLName xml.Name `xml:"jabber:client message"`
					Body    string   `xml:"body"`
				}
				if err := xml.NewTokenDecoder(c.Inner()).Decode(&m); err != nil {
					t.Fatalf("failed to decode inner message: %v", err)
				}
				if m.Body != tc.body {
					t.Errorf("wrong body: want=%q, got=%q", tc.body, m.Body)
				}
			}
		})
	}
}

func TestDelayAndRoundTrip(t *testing.T) {
	stamp := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	in := wrap("", "received", `<delay xmlns="urn:xmpp:delay" stamp="2026-11-23T10:00:00Z"/>`+inner)
	c, err := carbons.Parse(xmltest.Reader(in), romeo)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Delay.Time.Equal(stamp) {
		t.Errorf("wrong delay: %v", c.Delay.Time)
	}
	// Wrap then Parse gives the same inner message back.
	out, err := xmltest.Encode(carbons.Wrap(romeo, false, c.Inner()))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := carbons.Parse(xmltest.Reader(out), romeo)
	if err != nil {
		t.Fatalf("failed to parse %s: %v", out, err)
	}
	a, _ := xmltest.Encode(c.Inner())
	b, _ := xmltest.Encode(c2.Inner())
	if a != b || !strings.Contains(a, "Wherefore art thou?") {
		t.Errorf("inner message changed:\n%s\n%s", a, b)
	}
}
