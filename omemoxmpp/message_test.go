package omemoxmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

func xmlReader(s string) xml.TokenReader { return xml.NewDecoder(strings.NewReader(s)) }

// truncated is a reader over s without the stanza's end element, as
// mellium's muxer may hand a stanza to a handler.
func truncated(t *testing.T, s string) xml.TokenReader {
	t.Helper()
	var toks []xml.Token
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		toks = append(toks, xml.CopyToken(tok))
	}
	if _, ok := toks[len(toks)-1].(xml.EndElement); !ok {
		t.Fatal("input does not end with an end element")
	}
	return xmltok.Replay(toks[:len(toks)-1])
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// stanzaReader builds the message for out as BuildMessage does, writes it
// as text and returns a reader over it as received from "from".
func stanzaReader(t *testing.T, from string, out *Outgoing) xml.TokenReader {
	t.Helper()
	return xmlReader(stanzaText(t, from, out))
}

func stanzaText(t *testing.T, from string, out *Outgoing) string {
	t.Helper()
	r, err := BuildMessage(stanza.Message{From: jid.MustParse(from), ID: "m1"}, out)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return encode(r)
}

func TestBuildMessage(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer()
	a := newDevice(t, srv, "alice@example.org", Options{})
	a.announce(t)
	b := newDevice(t, srv, "bob@example.org", Options{})
	b.announce(t)
	b03 := newDevice(t, srv, "bob@example.org", Options{Versions: []omemo.Version{omemo.V03}})
	b03.announce(t)

	out, err := a.c.Encrypt(ctx, jid.MustParse("bob@example.org"), "secret <text> & more")
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	r, err := BuildMessage(stanza.Message{To: jid.MustParse("bob@example.org"), ID: "abc"}, out, sid.OriginID{ID: "abc"}.TokenReader())
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	got := encode(r)
	for _, want := range []string{
		`type="chat"`, `to="bob@example.org"`,
		`<body>I sent you an OMEMO encrypted message`,
		`<encrypted xmlns="urn:xmpp:omemo:2">`,
		`<encrypted xmlns="eu.siacs.conversations.axolotl">`,
		`<encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:omemo:2" name="OMEMO">`,
		`<encryption xmlns="urn:xmpp:eme:0" namespace="eu.siacs.conversations.axolotl" name="OMEMO">`,
		`<store xmlns="urn:xmpp:hints">`,
		`<origin-id xmlns="urn:xmpp:sid:0" id="abc">`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("message lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "secret") {
		t.Fatal("plaintext leaked into the stanza")
	}
	// Each xmlns is declared once per element: no duplicated attributes.
	if _, err := FindEncrypted(xmlReader(got)); err != nil {
		t.Fatalf("own stanza does not parse: %v", err)
	}

	// A heartbeat has no body and no EME.
	hb, err := a.c.EncryptEmpty(ctx, jid.MustParse("bob@example.org"), b.m.DeviceID(), omemo.V2)
	if err != nil {
		t.Fatalf("empty: %v", err)
	}
	r, err = BuildMessage(stanza.Message{To: jid.MustParse("bob@example.org")}, hb)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	got = encode(r)
	if strings.Contains(got, "<body") || strings.Contains(got, "eme:0") || strings.Contains(got, "<payload") || !strings.Contains(got, "urn:xmpp:hints") {
		t.Errorf("bad heartbeat stanza: %s", got)
	}
	if _, err := BuildMessage(stanza.Message{}, &Outgoing{}); err == nil {
		t.Error("built a message with nothing encrypted")
	}
}

func TestFindEncrypted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		versions []omemo.Version
		from     string
		wantErr  error
		cut      bool
	}{
		{"0.3", `<message xmlns='jabber:client' from='bob@x/y'><body>fallback</body><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='5'><key rid='6' prekey='1'>AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload></encrypted></message>`,
			[]omemo.Version{omemo.V03}, "bob@x/y", nil, false},
		{"both", `<message xmlns='jabber:client' from='bob@x'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='5'><keys jid='a@x'><key rid='6' kex='true'>AAAA</key></keys></header></encrypted><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='5'><key rid='6'>AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header></encrypted></message>`,
			[]omemo.Version{omemo.V2, omemo.V03}, "bob@x", nil, false},
		{"unterminated", `<message xmlns='jabber:client'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='5'><keys jid='a@x'><key rid='6'>AAAA</key></keys></header></encrypted></message>`,
			[]omemo.Version{omemo.V2}, "", nil, true},
		{"plain", `<message xmlns='jabber:client'><body>hi</body></message>`, nil, "", ErrNotEncrypted, false},
		{"other encrypted", `<message xmlns='jabber:client'><encrypted xmlns='jabber:x:encrypted'>x</encrypted></message>`, nil, "", ErrNotEncrypted, false},
		{"bad base64", `<message xmlns='jabber:client'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='5'><keys jid='a@x'><key rid='6'>!!</key></keys></header></encrypted></message>`, nil, "", omemo.ErrMalformed, false},
		{"bad sid", `<message xmlns='jabber:client'><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='x'><iv>AAAAAAAAAAAAAAAA</iv></header></encrypted></message>`, nil, "", omemo.ErrMalformed, false},
		{"not a message", `<presence xmlns='jabber:client'/>`, nil, "", ErrMalformed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := xmlReader(tc.in)
			if tc.cut {
				r = truncated(t, tc.in)
			}
			got, err := FindEncrypted(r)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.From.String() != tc.from {
				t.Errorf("from = %q, want %q", got.From, tc.from)
			}
			if len(got.Elements) != len(tc.versions) {
				t.Fatalf("%d elements, want %d", len(got.Elements), len(tc.versions))
			}
			for i, v := range tc.versions {
				if got.Elements[i].Version != v || got.Elements[i].SenderDevice != 5 {
					t.Errorf("element %d: %+v", i, got.Elements[i])
				}
			}
		})
	}
}

func TestReadContent(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		bad            bool
		unreadable     bool
	}{
		{"body", `<body xmlns='jabber:client'>hi &amp; bye</body>`, "hi & bye", false, false},
		{"default namespace", `<body>hi</body>`, "hi", false, false},
		{"no namespace", `<body xmlns=''>hi</body>`, "hi", false, false},
		{"sce namespace", `<body xmlns='urn:xmpp:sce:1'>hi</body>`, "hi", false, false},
		{"with other elements", `<reply xmlns='urn:xmpp:reply:0' id='1'/><body xmlns='jabber:client'>re</body>`, "re", false, false},
		{"prefer no lang", `<body xml:lang='de'>hallo</body><body>hello</body>`, "hello", false, false},
		{"first of langs", `<body xml:lang='de'>hallo</body><body xml:lang='fr'>salut</body>`, "hallo", false, false},
		{"oob url only", `<x xmlns='jabber:x:oob'><url> https://h/f.png </url></x>`, "https://h/f.png", false, false},
		{"foreign body", `<body xmlns='urn:example'>x</body>`, "", false, true},
		{"xhtml only", `<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>x</body></html>`, "", false, true},
		{"reaction", `<reactions xmlns='urn:xmpp:reactions:0' id='1'><reaction>👍</reaction></reactions>`, "", false, true},
		{"chat state", `<active xmlns='http://jabber.org/protocol/chatstates'/>`, "", false, false},
		{"key transport (Libervia)", `<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted>`, "", false, false},
		{"empty body", `<body xmlns='jabber:client'/>`, "", false, false},
		{"whitespace", "\n  \n", "", false, false},
		{"none", ``, "", false, false},
		{"broken", `<body>`, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readContent([]byte(tc.in))
			switch {
			case tc.bad || tc.unreadable:
				if !errors.Is(err, omemo.ErrEnvelope) {
					t.Fatalf("err = %v, want ErrEnvelope", err)
				}
				if errors.Is(err, ErrUnreadableContent) != tc.unreadable {
					t.Errorf("err = %v, unreadable %v", err, tc.unreadable)
				}
			case err != nil || got != tc.want:
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
