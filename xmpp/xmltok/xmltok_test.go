package xmltok_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

func TestCaptureReplay(t *testing.T) {
	d := xml.NewDecoder(strings.NewReader(`<a xmlns="urn:x"><b y="1">text</b><c/></a>`))
	tok, _ := d.Token()
	toks, err := xmltok.Capture(d, tok.(xml.StartElement))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		var v struct {
			XMLName xml.Name `xml:"urn:x a"`
			B       struct {
				Y    string `xml:"y,attr"`
				Text string `xml:",chardata"`
			} `xml:"b"`
		}
		if err := xml.NewTokenDecoder(xmltok.Replay(toks)).Decode(&v); err != nil {
			t.Fatalf("replay %d: %v", i, err)
		}
		if v.B.Y != "1" || v.B.Text != "text" {
			t.Errorf("replay %d: wrong value %+v", i, v)
		}
	}
	d = xml.NewDecoder(strings.NewReader(`<a><b>`))
	tok, _ = d.Token()
	if _, err := xmltok.Capture(d, tok.(xml.StartElement)); err == nil {
		t.Error("truncated element captured without error")
	}
}

// encode writes r as a string, as the stanza would go on the wire.
func encode(t *testing.T, r xml.TokenReader) string {
	t.Helper()
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(e, r); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<list xmlns="urn:x"><device id="1"/></list>`, `<list xmlns="urn:x"><device xmlns="urn:x" id="1"></device></list>`},
		{`<a xmlns:p="urn:p"><!-- c --><p:b>t</p:b></a>`, `<a><b xmlns="urn:p">t</b></a>`},
	} {
		toks, err := xmltok.Decode([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := encode(t, xmltok.Replay(toks)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.in, got, tc.want)
		}
	}
	if _, err := xmltok.Decode([]byte(`<a><b></a>`)); err == nil {
		t.Error("malformed fragment decoded without error")
	}
}

// cut is a reader that stops after n tokens of r, as a muxer's reader may.
type cut struct {
	r xml.TokenReader
	n int
}

func (c *cut) Token() (xml.Token, error) {
	if c.n == 0 {
		return nil, io.EOF
	}
	c.n--
	return c.r.Token()
}

func TestCloseOpen(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, `<a></a>`},
		{3, `<a><b>x</b></a>`},
		{6, `<a><b>x</b><c></c></a>`},
	} {
		d := xml.NewDecoder(strings.NewReader(`<a><b>x</b><c/></a>`))
		if got := encode(t, xmltok.CloseOpen(&cut{r: d, n: tc.n})); got != tc.want {
			t.Errorf("after %d tokens: got %s, want %s", tc.n, got, tc.want)
		}
	}
}
