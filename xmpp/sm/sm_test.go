package sm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
)

func TestSplitter(t *testing.T) {
	header := `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`
	for _, tc := range []struct {
		name   string
		stream string
		want   []string // local name, "+" if a stanza, "*" if stream management
	}{
		{"stanzas and nonzas", header + `<message to='a@b'><body>x</body></message><r xmlns='urn:xmpp:sm:3'/><presence/> <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq><a xmlns='urn:xmpp:sm:3' h='3'/>`,
			[]string{"message+", "r*", "presence+", "iq+", "a*"}},
		{"quotes with markup", header + `<message id='a>b' to="c/>d"><body>1 &lt; 2 &gt; 0</body></message>`, []string{"message+"}},
		{"cdata and comments", header + `<message><body><![CDATA[</message><presence/>]]></body><!-- </message> --></message>`, []string{"message+"}},
		{"features and errors are not stanzas", header + `<stream:features><sm xmlns='urn:xmpp:sm:3'/></stream:features><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`,
			[]string{"features", "error"}},
		{"other namespace", header + `<message xmlns='jabber:server'/><message xmlns='jabber:client'/>`, []string{"message", "message+"}},
		{"nested same name", header + `<message><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>in</body></message></forwarded></message>`, []string{"message+"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Read by a decoder through Conn.ReadByte (inbound, text
			// bytes not handed to the splitter): each element is
			// reported at its last byte, as a splitter fed every byte
			// reports it.
			type at struct {
				name string
				n    int
			}
			var ref, viaConn []at
			read := 0
			sp := splitter{emit: func(e element) { ref = append(ref, at{e.Start.Name.Local, read}) }}
			for read = 1; read <= len(tc.stream); read++ {
				sp.byte(tc.stream[read-1])
			}
			read = 0
			c := &Conn{br: bufio.NewReader(strings.NewReader(tc.stream))}
			c.in = splitter{emit: func(e element) { viaConn = append(viaConn, at{e.Start.Name.Local, read + 1}) }}
			for {
				if _, err := c.ReadByte(); err != nil {
					break
				}
				read++
			}
			if fmt.Sprint(viaConn) != fmt.Sprint(ref) || len(ref) != len(tc.want) {
				t.Errorf("through ReadByte: %v, want %v (%d elements)", viaConn, ref, len(tc.want))
			}
			// Whole, and a byte at a time: the same elements.
			for _, chunk := range []int{len(tc.stream), 1, 7} {
				var got []string
				var raws []string
				sp := splitter{capture: true, emit: func(e element) {
					n := e.Start.Name.Local
					switch {
					case e.isStanza():
						n += "+"
					case e.isSM():
						n += "*"
					}
					got = append(got, n)
					raws = append(raws, string(e.Raw))
				}}
				for i := 0; i < len(tc.stream); i += chunk {
					sp.writeBytes([]byte(tc.stream[i:min(i+chunk, len(tc.stream))]))
				}
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("chunk %d: got %v, want %v", chunk, got, tc.want)
				}
				// Each captured element is well-formed XML on its own.
				for _, r := range raws {
					d := xml.NewDecoder(strings.NewReader(r))
					for {
						if _, err := d.Token(); err != nil {
							if err.Error() != "EOF" {
								t.Errorf("captured %q: %v", r, err)
							}
							break
						}
					}
				}
			}
		})
	}
}

func TestQueueAck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		base    uint32
		pushed  int
		acks    []uint32
		wantErr bool
		left    int
	}{
		{"none", 0, 3, []uint32{0}, false, 3},
		{"some", 0, 3, []uint32{2}, false, 1},
		{"all in steps", 0, 3, []uint32{1, 1, 3}, false, 0},
		{"beyond what was sent", 0, 3, []uint32{4}, true, 3},
		{"wraps past 2^32", math.MaxUint32 - 1, 4, []uint32{math.MaxUint32, 1}, false, 1},
		{"wrapped ack beyond", math.MaxUint32, 2, []uint32{2}, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q queue
			q.reset(tc.base)
			for i := 0; i < tc.pushed; i++ {
				q.push(Stanza{Raw: []byte{byte(i)}})
			}
			var err error
			for _, h := range tc.acks {
				if e := q.ack(h); e != nil {
					err = e
				}
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
			if len(q.items) != tc.left || q.bytes != tc.left {
				t.Errorf("%d left (%d bytes), want %d", len(q.items), q.bytes, tc.left)
			}
			if q.sent() != tc.base+uint32(tc.pushed) {
				t.Errorf("sent = %d, want %d", q.sent(), tc.base+uint32(tc.pushed))
			}
		})
	}
}

func TestElements(t *testing.T) {
	enc := func(r xml.TokenReader) string {
		var b bytes.Buffer
		e := xml.NewEncoder(&b)
		if _, err := xmlstream.Copy(e, r); err != nil {
			t.Fatal(err)
		}
		_ = e.Flush()
		return b.String()
	}
	for _, tc := range []struct {
		got, want string
	}{
		{enc(Enable{Resume: true}.TokenReader()), `<enable xmlns="urn:xmpp:sm:3" resume="true"></enable>`},
		{enc(Enable{Max: 60}.TokenReader()), `<enable xmlns="urn:xmpp:sm:3" max="60"></enable>`},
		{enc(Resume{PrevID: "x", H: math.MaxUint32}.TokenReader()), `<resume xmlns="urn:xmpp:sm:3" previd="x" h="4294967295"></resume>`},
		{enc(Req{}.TokenReader()), `<r xmlns="urn:xmpp:sm:3"></r>`},
		{enc(Ack{H: 7}.TokenReader()), `<a xmlns="urn:xmpp:sm:3" h="7"></a>`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}

	for _, tc := range []struct {
		in      string
		check   func(xml.StartElement) (any, error)
		want    any
		wantErr bool
	}{
		{`<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true' max='60'/>`, func(s xml.StartElement) (any, error) { return ParseEnabled(s), nil }, Enabled{ID: "abc", Resume: true, Max: 60}, false},
		{`<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='1' location='h:5222'/>`, func(s xml.StartElement) (any, error) { return ParseEnabled(s), nil }, Enabled{ID: "abc", Resume: true, Location: "h:5222"}, false},
		{`<enabled xmlns='urn:xmpp:sm:3'/>`, func(s xml.StartElement) (any, error) { return ParseEnabled(s), nil }, Enabled{}, false},
		{`<a xmlns='urn:xmpp:sm:3' h='4294967295'/>`, func(s xml.StartElement) (any, error) { return ParseAck(s) }, Ack{H: math.MaxUint32}, false},
		{`<a xmlns='urn:xmpp:sm:3' h='4294967296'/>`, func(s xml.StartElement) (any, error) { return ParseAck(s) }, Ack{}, true},
		{`<a xmlns='urn:xmpp:sm:3'/>`, func(s xml.StartElement) (any, error) { return ParseAck(s) }, Ack{}, true},
		{`<a xmlns='urn:xmpp:sm:3' h='-1'/>`, func(s xml.StartElement) (any, error) { return ParseAck(s) }, Ack{}, true},
		{`<resumed xmlns='urn:xmpp:sm:3' previd='abc' h='3'/>`, func(s xml.StartElement) (any, error) { return ParseResumed(s) }, Resumed{PrevID: "abc", H: 3}, false},
		{`<resumed xmlns='urn:xmpp:sm:3' previd='abc'/>`, func(s xml.StartElement) (any, error) { return ParseResumed(s) }, Resumed{}, true},
	} {
		d := xml.NewDecoder(strings.NewReader(tc.in))
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		got, err := tc.check(tok.(xml.StartElement))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v", tc.in, err)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.in, got, tc.want)
		}
	}

	for _, tc := range []struct {
		in   string
		want Failed
	}{
		{`<failed xmlns='urn:xmpp:sm:3' h='5'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`, Failed{H: 5, HasH: true, Condition: "item-not-found"}},
		{`<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text></failed>`, Failed{Condition: "unexpected-request"}},
		{`<failed xmlns='urn:xmpp:sm:3'/>`, Failed{}},
	} {
		d := xml.NewDecoder(strings.NewReader(tc.in))
		tok, _ := d.Token()
		got, err := DecodeFailed(d, tok.(xml.StartElement))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// The manager's counts from the elements each way, without a server.
func TestManagerCounts(t *testing.T) {
	header := `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
	for _, tc := range []struct {
		name      string
		out, in   []string // written and read, in turn: out[i] then in[i]
		wantInH   uint32
		wantUnack int
		wantID    string
		wantBad   int
	}{
		{"nothing counted before enable/enabled",
			[]string{`<message/>`, `<enable xmlns='urn:xmpp:sm:3' resume='true'/>`, ``},
			[]string{`<message/>`, `<message/>`, `<enabled xmlns='urn:xmpp:sm:3' id='s1' resume='true'/><message/>`},
			1, 0, "s1", 0},
		{"acks drop the queue",
			[]string{`<enable xmlns='urn:xmpp:sm:3'/>`, `<message id='1'/><iq id='2' type='get'/><presence/>`, `<r xmlns='urn:xmpp:sm:3'/>`},
			[]string{`<enabled xmlns='urn:xmpp:sm:3' id='s2' resume='true'/>`, `<a xmlns='urn:xmpp:sm:3' h='2'/>`, `<iq id='2' type='result'/>`},
			1, 1, "s2", 0},
		{"an ack beyond what was sent",
			[]string{`<enable xmlns='urn:xmpp:sm:3'/>`, `<message/>`},
			[]string{`<enabled xmlns='urn:xmpp:sm:3' id='s3'/>`, `<a xmlns='urn:xmpp:sm:3' h='5'/>`},
			0, 1, "s3", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Options{})
			m.gen = 1
			in := splitter{emit: func(e element) { m.inbound(1, e) }}
			out := splitter{capture: true, emit: func(e element) { m.outbound(1, e) }}
			in.writeBytes([]byte(header))
			out.writeBytes([]byte(header))
			for i := range tc.out {
				out.writeBytes([]byte(tc.out[i]))
				in.writeBytes([]byte(tc.in[i]))
			}
			st := m.Stats()
			if st.InH != tc.wantInH || st.Unacked != tc.wantUnack || m.id != tc.wantID || st.BadAcks != tc.wantBad {
				t.Errorf("inH %d unacked %d id %q bad %d; want %d %d %q %d", st.InH, st.Unacked, m.id, st.BadAcks, tc.wantInH, tc.wantUnack, tc.wantID, tc.wantBad)
			}
			// A late element of an older connection changes nothing.
			m.inbound(0, element{Start: xml.StartElement{Name: xml.Name{Local: "message"}}})
			if m.Stats().InH != tc.wantInH {
				t.Error("an old connection's stanza was counted")
			}
		})
	}
}

// TestWaitAcked: a stanza counts as the server's only once an <a/> covers
// it; a write alone is not enough, and a stream that ends first says so.
func TestWaitAcked(t *testing.T) {
	header := `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
	setup := func() (*Manager, *splitter, *splitter) {
		m := New(Options{})
		m.gen = 1
		in := &splitter{emit: func(e element) { m.inbound(1, e) }}
		out := &splitter{capture: true, emit: func(e element) { m.outbound(1, e) }}
		in.writeBytes([]byte(header))
		out.writeBytes([]byte(header))
		out.writeBytes([]byte(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`))
		in.writeBytes([]byte(`<enabled xmlns='urn:xmpp:sm:3' id='s' resume='true'/>`))
		return m, in, out
	}
	wait := func(m *Manager, mk Mark) <-chan error {
		done := make(chan error, 1)
		go func() { done <- m.WaitAcked(context.Background(), mk) }()
		return done
	}
	pending := func(t *testing.T, done <-chan error) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("WaitAcked returned %v before the server acknowledged the stanza", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	got := func(t *testing.T, done <-chan error, want error) {
		t.Helper()
		select {
		case err := <-done:
			if !errors.Is(err, want) && err != want {
				t.Fatalf("WaitAcked = %v, want %v", err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WaitAcked did not return")
		}
	}

	t.Run("written, then acknowledged", func(t *testing.T) {
		m, in, out := setup()
		out.writeBytes([]byte(`<message id='1'/><message id='2'/>`))
		mk, ok := m.Written()
		if !ok {
			t.Fatal("stream management not on after <enabled/>")
		}
		done := wait(m, mk)
		pending(t, done)
		select {
		case <-m.kick:
		case <-time.After(5 * time.Second):
			t.Fatal("WaitAcked did not ask for an acknowledgement")
		}
		in.writeBytes([]byte(`<a xmlns='urn:xmpp:sm:3' h='1'/>`))
		pending(t, done)
		in.writeBytes([]byte(`<a xmlns='urn:xmpp:sm:3' h='2'/>`))
		got(t, done, nil)
		// Already acknowledged: at once.
		got(t, wait(m, mk), nil)
	})
	t.Run("the answer read before the request's write was seen", func(t *testing.T) {
		// Run records its <r/> before writing it; the reader may see the
		// <a/> before the writer's splitter sees the end of the <r/>.
		m, in, out := setup()
		out.writeBytes([]byte(`<message id='1'/><message id='2'/>`))
		m.requesting(time.Now())
		in.writeBytes([]byte(`<a xmlns='urn:xmpp:sm:3' h='1'/>`))
		out.writeBytes([]byte(`<r xmlns='urn:xmpp:sm:3'/>`))
		if !m.needRequest(time.Now()) {
			t.Fatal("a stanza waits and its request was answered, but no new request is due")
		}
		m.requesting(time.Now())
		if m.needRequest(time.Now()) {
			t.Fatal("a new request is due while one is outstanding")
		}
	})
	t.Run("the stream ends first", func(t *testing.T) {
		m, _, out := setup()
		out.writeBytes([]byte(`<message id='1'/>`))
		mk, _ := m.Written()
		done := wait(m, mk)
		pending(t, done)
		m.Reset()
		got(t, done, ErrStreamEnded)
		if lost := m.TakeLost(); len(lost) != 1 {
			t.Errorf("%d stanzas handed back, want 1", len(lost))
		}
	})
	t.Run("no stream management", func(t *testing.T) {
		m := New(Options{})
		if _, ok := m.Written(); ok {
			t.Error("Written says stream management is on before <enable/>")
		}
	})
	t.Run("the caller gives up", func(t *testing.T) {
		m, _, out := setup()
		out.writeBytes([]byte(`<message id='1'/>`))
		mk, _ := m.Written()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := m.WaitAcked(ctx, mk); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitAcked = %v, want context.Canceled", err)
		}
	})
}
