package stanzabuf_test

import (
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

func TestReadTwice(t *testing.T) {
	const in = `  <message xmlns="jabber:client" id="m2" from="juliet@capulet.example/balcony"><body>> hi
yes</body>` +
		`<origin-id xmlns="urn:xmpp:sid:0" id="o2"/><reply xmlns="urn:xmpp:reply:0" id="m1"/></message>`
	st, err := stanzabuf.Read(xmltest.Reader(in))
	if err != nil {
		t.Fatal(err)
	}
	if st.Start().Name.Local != "message" {
		t.Errorf("wrong start %v", st.Start().Name)
	}
	ids, err := sid.Extract(st.Reader())
	if err != nil || ids.OriginID != "o2" {
		t.Errorf("sid: %+v %v", ids, err)
	}
	rep, ok, err := reply.Parse(st.Reader())
	if err != nil || !ok || rep.ID != "m1" {
		t.Errorf("reply: %+v %t %v", rep, ok, err)
	}
	var m struct {
		XMLName xml.Name `xml:"jabber:client message"`
		Body    string   `xml:"body"`
	}
	if err := st.Decode(&m); err != nil || m.Body != "> hi\nyes" {
		t.Errorf("decode: %+v %v", m, err)
	}
	out, err := xmltest.Encode(st.Reader())
	// encoding/xml may restate a namespace on children, but must never
	// write it twice on one element (which is malformed XML).
	if err != nil || strings.Contains(out, `xmlns="jabber:client" xmlns=`) {
		t.Errorf("re-encoding duplicates namespace declarations: %s (%v)", out, err)
	}
	if err := xml.Unmarshal([]byte(out), new(struct{})); err != nil {
		t.Errorf("re-encoded stanza is not well-formed: %v", err)
	}

	if _, err := stanzabuf.Read(xmltest.Reader("  ")); !errors.Is(err, stanzabuf.ErrNoStanza) {
		t.Errorf("empty input: %v", err)
	}
	if _, err := stanzabuf.Read(xmltest.Reader("<message><body>")); err == nil {
		t.Error("truncated stanza accepted")
	}
}

func TestHasChild(t *testing.T) {
	const in = `<message xmlns="jabber:client"><body>hi</body>` +
		`<n:nick xmlns:n="http://jabber.org/protocol/nick">Bob</n:nick>` +
		`<sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client">` +
		`<active xmlns="http://jabber.org/protocol/chatstates"/></message></forwarded></sent></message>`
	st, err := stanzabuf.Read(xmltest.Reader(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		space, local string
		want         bool
	}{
		{"jabber:client", "body", true},
		{"http://jabber.org/protocol/nick", "nick", true},
		{"urn:xmpp:carbons:2", "sent", true},
		{"urn:xmpp:carbons:2", "received", false},
		{"", "nick", false},
		{"urn:xmpp:forward:0", "forwarded", false},                 // a grandchild
		{"http://jabber.org/protocol/chatstates", "active", false}, // deeper still
		{"jabber:client", "message", false},                        // the stanza itself
	}
	for _, tc := range tests {
		if got := st.HasChild(tc.space, tc.local); got != tc.want {
			t.Errorf("HasChild(%q, %q) = %v, want %v", tc.space, tc.local, got, tc.want)
		}
	}
}

func TestHasChildIn(t *testing.T) {
	const in = `<message xmlns="jabber:client"><body>hi</body>` +
		`<markable xmlns="urn:xmpp:chat-markers:0"/>` +
		`<sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client">` +
		`<active xmlns="http://jabber.org/protocol/chatstates"/></message></forwarded></sent></message>`
	st, err := stanzabuf.Read(xmltest.Reader(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		space string
		want  bool
	}{
		{"jabber:client", true},
		{"urn:xmpp:chat-markers:0", true},
		{"urn:xmpp:carbons:2", true},
		{"urn:xmpp:forward:0", false},                    // a grandchild
		{"http://jabber.org/protocol/chatstates", false}, // deeper still
		{"urn:xmpp:reactions:0", false},
	}
	for _, tc := range tests {
		if got := st.HasChildIn(tc.space); got != tc.want {
			t.Errorf("HasChildIn(%q) = %v, want %v", tc.space, got, tc.want)
		}
	}
}

func TestReaderWithout(t *testing.T) {
	const in = `<message xmlns="jabber:client">t<body>hi</body>` +
		`<encrypted xmlns="urn:xmpp:omemo:2"><header sid="1"><keys jid="a@b"><key rid="2">AAAA</key></keys></header></encrypted>` +
		`<x xmlns="urn:x"><encrypted xmlns="urn:xmpp:omemo:2"/></x><origin-id xmlns="urn:xmpp:sid:0" id="o"/></message>`
	st, err := stanzabuf.Read(xmltest.Reader(in))
	if err != nil {
		t.Fatal(err)
	}
	enc := xml.Name{Space: "urn:xmpp:omemo:2", Local: "encrypted"}
	body := xml.Name{Space: "jabber:client", Local: "body"}
	tests := []struct {
		name string
		skip []xml.Name
		only bool   // ReaderOnly(skip...) instead
		want string // the elements read, in order, and the text
	}{
		{"nothing skipped", nil, false, "message t body hi encrypted header keys key AAAA x encrypted origin-id"},
		{"a child skipped, a deeper one of the same name kept", []xml.Name{enc}, false, "message t body hi x encrypted origin-id"},
		{"two names", []xml.Name{body, {Space: "urn:xmpp:sid:0", Local: "origin-id"}}, false,
			"message t encrypted header keys key AAAA x encrypted"},
		{"only a child, not a deeper one of the same name", []xml.Name{enc}, true, "message encrypted header keys key AAAA"},
		{"only two names", []xml.Name{body, enc}, true, "message body hi encrypted header keys key AAAA"},
		{"only an absent name", []xml.Name{{Space: "urn:y", Local: "y"}}, true, "message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			depth := 0
			r := st.ReaderWithout(tc.skip...)
			if tc.only {
				r = st.ReaderOnly(tc.skip...)
			}
			d := xml.NewTokenDecoder(r)
			for {
				tok, err := d.Token()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatal(err)
					}
					break
				}
				switch tok := tok.(type) {
				case xml.StartElement:
					depth++
					got = append(got, tok.Name.Local)
				case xml.EndElement:
					depth--
				case xml.CharData:
					got = append(got, string(tok))
				}
			}
			if g := strings.Join(got, " "); g != tc.want || depth != 0 {
				t.Errorf("read %q (depth %d at the end), want %q", g, depth, tc.want)
			}
		})
	}
}

// TestPrefixedChildren: children written with a namespace prefix are found
// and skipped by their namespace, as unprefixed ones are (the buffered
// tokens carry resolved names).
func TestPrefixedChildren(t *testing.T) {
	const in = `<message xmlns="jabber:client" id="p1"><body>fallback</body>` +
		`<o:encrypted xmlns:o="urn:xmpp:omemo:2"><o:header sid="1"><o:keys jid="a@b"><o:key rid="2">AAAA</o:key></o:keys></o:header><o:payload>BBBB</o:payload></o:encrypted>` +
		`<x:occupant-id xmlns:x="urn:xmpp:occupant-id:0" id="occ"/></message>`
	st, err := stanzabuf.Read(xmltest.Reader(in))
	if err != nil {
		t.Fatal(err)
	}
	omemo := xml.Name{Space: "urn:xmpp:omemo:2", Local: "encrypted"}
	if !st.HasChild(omemo.Space, omemo.Local) || !st.HasChildIn("urn:xmpp:occupant-id:0") {
		t.Error("prefixed children not found")
	}
	got := st.Children("urn:xmpp:occupant-id:0", "occupant-id")
	if len(got) != 1 || !slices.ContainsFunc(got[0].Attr, func(a xml.Attr) bool { return a.Name.Local == "id" && a.Value == "occ" }) {
		t.Errorf("Children: %+v", got)
	}
	r := st.ReaderWithout(omemo)
	for {
		tok, err := r.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Space == omemo.Space {
			t.Errorf("ReaderWithout handed out %v", s.Name)
		}
	}
	// ReaderOnly keeps the prefixed <encrypted/> (with its prefixed
	// descendants) and nothing else of the stanza's children.
	var kept []string
	r = st.ReaderOnly(omemo)
	for {
		tok, err := r.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			kept = append(kept, s.Name.Local)
		}
	}
	if want := []string{"message", "encrypted", "header", "keys", "key", "payload"}; !slices.Equal(kept, want) {
		t.Errorf("ReaderOnly handed out %v, want %v", kept, want)
	}
}
