package omemo

import (
	"errors"
	"testing"
	"time"
)

// TestParseEnvelopeNamespaces reads envelopes as other implementations
// write them: the same document with prefixes, default namespaces,
// whitespace and affixes must give the same content.
func TestParseEnvelopeNamespaces(t *testing.T) {
	const body = `<body xmlns='jabber:client'>Hi &amp; bye</body>`
	for _, tc := range []struct {
		name, in    string
		content     string
		from, to    string
		stamp, rpad string
	}{{
		name:    "ours",
		in:      `<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>Hi &amp; bye</body></content><rpad>xy</rpad><from jid='a@b/r'/></envelope>`,
		content: body, from: "a@b/r", rpad: "xy",
	}, {
		name: "ElementTree prefixes",
		in: `<ns0:envelope xmlns:ns0="urn:xmpp:sce:1" xmlns:ns1="jabber:client"><ns0:content><ns1:body>Hi &amp; bye</ns1:body></ns0:content>` +
			`<ns0:rpad>xy</ns0:rpad><ns0:to jid="c@d" /><ns0:from jid="a@b" /></ns0:envelope>`,
		content: body, from: "a@b", to: "c@d", rpad: "xy",
	}, {
		name:    "prefix declared on content",
		in:      `<s:envelope xmlns:s='urn:xmpp:sce:1'><s:content xmlns:c='jabber:client'><c:body>Hi &amp; bye</c:body></s:content><s:from jid='a@b'/></s:envelope>`,
		content: body, from: "a@b",
	}, {
		name:    "client as default namespace of the envelope",
		in:      `<sce:envelope xmlns='jabber:client' xmlns:sce='urn:xmpp:sce:1'><sce:content><body>Hi &amp; bye</body></sce:content><sce:from jid='a@b'/></sce:envelope>`,
		content: body, from: "a@b",
	}, {
		name: "whitespace, comments and a prolog",
		in: "<?xml version='1.0' encoding='UTF-8'?>\n<envelope xmlns='urn:xmpp:sce:1'>\n  <content>\n    <body xmlns='jabber:client'>Hi &amp; bye</body>\n  </content>\n" +
			"  <!-- padding --><rpad>xy</rpad>\n  <time stamp='2024-01-02T03:04:05.678Z'/>\n  <from jid=' a@b '/>\n</envelope>\n",
		content: "\n    " + body + "\n  ", from: "a@b", rpad: "xy", stamp: "2024-01-02T03:04:05.678Z",
	}, {
		name: "extra affixes",
		in: `<envelope xmlns='urn:xmpp:sce:1'><future-affix><x/></future-affix><content><body xmlns='jabber:client'>Hi &amp; bye</body></content>` +
			`<nonce xmlns='urn:example:affix'>1</nonce><from jid='a@b'/></envelope>`,
		content: body, from: "a@b",
	}, {
		name:    "nested namespaces and attributes",
		in:      `<e:envelope xmlns:e='urn:xmpp:sce:1'><e:content><r:reply xmlns:r='urn:xmpp:reply:0' xmlns:x='urn:x' id='1' x:a='&apos;"' xml:lang='en'><r:b/></r:reply></e:content><e:from jid='a@b'/></e:envelope>`,
		content: `<reply xmlns='urn:xmpp:reply:0' id='1' xmlns:a0='urn:x' a0:a='&apos;&quot;' xml:lang='en'><b/></reply>`, from: "a@b",
	}, {
		name:    "no namespace",
		in:      `<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns=''>x</body></content><from jid='a@b'/></envelope>`,
		content: `<body xmlns=''>x</body>`, from: "a@b",
	}, {
		name:    "unreadable time stamp dropped",
		in:      `<envelope xmlns='urn:xmpp:sce:1'><content/><time stamp='yesterday'/><from jid='a@b'/></envelope>`,
		content: ``, from: "a@b",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseEnvelope([]byte(tc.in), "a@b")
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Content) != tc.content || e.From != tc.from || e.To != tc.to || e.RPad != tc.rpad {
				t.Errorf("got content %q from %q to %q rpad %q", e.Content, e.From, e.To, e.RPad)
			}
			if tc.stamp != "" {
				want, _ := time.Parse(time.RFC3339, tc.stamp)
				if !e.Time.Equal(want) {
					t.Errorf("time %v, want %v", e.Time, want)
				}
			} else if !e.Time.IsZero() {
				t.Errorf("time %v, want none", e.Time)
			}
			// The content is self-contained: written into an envelope of
			// our own and read back, it is the same.
			x, err := e.Marshal(nil)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			again, err := ParseEnvelope(x, "")
			if err != nil || string(again.Content) != string(e.Content) {
				t.Errorf("round trip gave %q, %v", again.Content, err)
			}
		})
	}
	for _, bad := range []string{
		`<ns0:envelope xmlns:ns0='urn:xmpp:other'><ns0:content/><ns0:from jid='a@b'/></ns0:envelope>`,
		`<envelope xmlns='urn:xmpp:sce:1'><content xmlns='urn:other'/><from jid='a@b'/></envelope>`,
		`<envelope xmlns='urn:xmpp:sce:1'><content/><from xmlns='urn:other' jid='a@b'/></envelope>`,
		`text<envelope xmlns='urn:xmpp:sce:1'><content/><from jid='a@b'/></envelope>`,
	} {
		if _, err := ParseEnvelope([]byte(bad), ""); !errors.Is(err, ErrEnvelope) {
			t.Errorf("%s: got %v", bad, err)
		}
	}
}
