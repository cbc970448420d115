package xmpptap

import (
	"strings"
	"testing"
)

// frame feeds stream in chunks of size (0: whole) and returns the pieces,
// top-level elements as "name:raw", other runs (merged) as "~raw".
func frame(stream string, size int) []string {
	var (
		f   Framer
		out []string
	)
	emit := func(p Piece) {
		if p.Top {
			out = append(out, p.Name+":"+string(p.Raw))
			return
		}
		if n := len(out); n > 0 && strings.HasPrefix(out[n-1], "~") {
			out[n-1] += string(p.Raw)
			return
		}
		out = append(out, "~"+string(p.Raw))
	}
	if size == 0 {
		size = len(stream)
	}
	for i := 0; i < len(stream); i += size {
		f.Feed([]byte(stream[i:min(len(stream), i+size)]), emit)
	}
	return out
}

func TestFramer(t *testing.T) {
	header := `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`
	for _, tc := range []struct {
		name   string
		stream string
		want   []string
	}{
		{"header then stanzas", header + `<message to='a@b'><body>x &lt; y</body></message><r xmlns='urn:xmpp:sm:3'/>`,
			[]string{"~" + header, "message:<message to='a@b'><body>x &lt; y</body></message>", "r:<r xmlns='urn:xmpp:sm:3'/>"}},
		{"quoted > and / in attributes", header + `<iq id="a>/b" type='get'><ping xmlns='urn:xmpp:ping'/></iq>`,
			[]string{"~" + header, `iq:<iq id="a>/b" type='get'><ping xmlns='urn:xmpp:ping'/></iq>`}},
		{"nested same name", header + `<message><message><body/></message></message>`,
			[]string{"~" + header, "message:<message><message><body/></message></message>"}},
		{"whitespace keepalives between", header + " \n<a xmlns='urn:xmpp:sm:3' h='3'/>\n",
			[]string{"~" + header + " \n", "a:<a xmlns='urn:xmpp:sm:3' h='3'/>", "~\n"}},
		{"stream restart after SASL", header + `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>` + header + `<stream:features><bind/></stream:features>`,
			[]string{"~" + header, "success:<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "~" + header, "stream:features:<stream:features><bind/></stream:features>"}},
		{"stream end", header + `<presence/></stream:stream>`,
			[]string{"~" + header, "presence:<presence/>", "~</stream:stream>"}},
		{"text with > and CDATA-free entities", header + `<message><body>a > b &amp; c</body></message>`,
			[]string{"~" + header, "message:<message><body>a > b &amp; c</body></message>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{0, 1, 2, 7} {
				got := frame(tc.stream, size)
				if strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Errorf("chunks of %d:\n got %q\nwant %q", size, got, tc.want)
				}
			}
		})
	}
}

func TestAttr(t *testing.T) {
	for _, tc := range []struct {
		raw, name, want string
	}{
		{`<a xmlns='urn:xmpp:sm:3' h='17'/>`, "h", "17"},
		{`<a h = "5" xmlns="urn:xmpp:sm:3"/>`, "h", "5"},
		{`<message to='x@y/r' xml:lang='en'><body h='no'/></message>`, "h", ""},
		{`<message to='a&amp;b@y'>`, "to", "a&b@y"},
		{`<iq id='h' type='get'/>`, "h", ""},
	} {
		if got := Attr([]byte(tc.raw), tc.name); got != tc.want {
			t.Errorf("Attr(%s, %s) = %q, want %q", tc.raw, tc.name, got, tc.want)
		}
	}
}

func TestReaddress(t *testing.T) {
	for _, tc := range []struct {
		raw, from, to, child, want string
	}{
		{`<message to='room@muc' type='groupchat' id='1'><body>x</body></message>`, "room@muc/me", "me@host/res", `<stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='room@muc'/>`,
			`<message from='room@muc/me' to='me@host/res' type='groupchat' id='1'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='room@muc'/></message>`},
		{`<message xmlns="jabber:client" to="a@h" type="chat"><body/></message>`, "b@h/r", "a@h", "",
			`<message from='b@h/r' xmlns="jabber:client" to="a@h" type="chat"><body/></message>`},
		{`<message from='x' to='y'><body>it's</body></message>`, "b@h/o'r", "a@h", "<c/>",
			`<message from='b@h/o&#39;r' to='a@h'><body>it's</body><c/></message>`},
	} {
		if got := string(Readdress([]byte(tc.raw), tc.from, tc.to, tc.child)); got != tc.want {
			t.Errorf("Readdress(%s)\n got %s\nwant %s", tc.raw, got, tc.want)
		}
	}
}
