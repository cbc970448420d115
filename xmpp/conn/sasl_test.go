package conn

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

func mechanismNames(c Config) []string {
	var names []string
	for _, m := range c.mechanisms() {
		names = append(names, m.Name)
	}
	return names
}

// The client's preference order: channel-bound SCRAM, plain SCRAM, the
// stronger hash first, PLAIN only when allowed and last.
func TestMechanismOrder(t *testing.T) {
	want := []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1"}
	if got := mechanismNames(Config{}); !slices.Equal(got, want) {
		t.Errorf("mechanisms = %q, want %q", got, want)
	}
	if got := mechanismNames(Config{AllowPlain: true}); !slices.Equal(got, append(want, "PLAIN")) {
		t.Errorf("mechanisms with AllowPlain = %q, want %q", got, append(want, "PLAIN"))
	}
}

var authRE = regexp.MustCompile(`<auth\b[^>]*\bmechanism=["']([^"']+)["'][^>]*>([^<]*)</auth>`)

// fakeSASLServer is a direct-TLS XMPP server that offers mechs (and the
// XEP-0440 channel binding types cbTypes unless nil), reads the client's
// <auth/> on each connection (reported on the channel, "" if none came) and
// refuses it with not-authorized: with the text "Invalid channel binding"
// for a -PLUS mechanism, as ejabberd does.
func fakeSASLServer(t *testing.T, mechs, cbTypes []string) (port uint16, auth <-chan [2]string) {
	t.Helper()
	cert := selfSigned(t)
	l, port := listen(t)
	ch := make(chan [2]string, 8)
	serve := func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		// Reported before the answer, so that a retry's <auth/> comes after.
		reported := false
		defer func() {
			if !reported {
				ch <- [2]string{}
			}
		}()
		if readUntil(tc, regexp.MustCompile(`<stream:stream\b[^>]*>`)) == nil {
			return
		}
		var features strings.Builder
		for _, m := range mechs {
			features.WriteString("<mechanism>" + m + "</mechanism>")
		}
		cb := ""
		if cbTypes != nil {
			cb = "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"
			for _, ty := range cbTypes {
				cb += "<channel-binding type='" + ty + "'/>"
			}
			cb += "</sasl-channel-binding>"
		}
		_, _ = io.WriteString(tc, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>`+
			`<stream:features>`+cb+`<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>`+features.String()+`</mechanisms></stream:features>`)
		if m := readUntil(tc, authRE); m != nil {
			ch <- [2]string{m[1], m[2]}
			reported = true
			text := ""
			if strings.HasSuffix(m[1], "-PLUS") {
				text = "<text xml:lang='en'>Invalid channel binding</text>"
			}
			_, _ = io.WriteString(tc, `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>`+text+`</failure>`)
		}
		_, _ = io.WriteString(tc, `</stream:stream>`)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return port, ch
}

// readUntil reads r until re matches what was read, and returns the
// submatches, or nil when r ends first.
func readUntil(r io.Reader, re *regexp.Regexp) []string {
	var buf []byte
	b := make([]byte, 4096)
	for {
		if m := re.FindStringSubmatch(string(buf)); m != nil {
			return m
		}
		n, err := r.Read(b)
		buf = append(buf, b[:n]...)
		if err != nil {
			return re.FindStringSubmatch(string(buf))
		}
	}
}

// What the client picks from what a (TLS 1.3) server offers, as seen on
// the wire and as reported by DialInfo: -PLUS only with a channel binding
// type announced through XEP-0440 that fits the TLS version; a refused
// -PLUS attempt is retried once without channel binding, and only a second
// refusal says "wrong password".
func TestSASLMechanismChoice(t *testing.T) {
	for _, tc := range []struct {
		name      string
		offered   []string
		cbTypes   []string
		plain     bool
		want      []string // the <auth/> mechanisms sent, one per connection; "" for none
		wantCB    string   // the binding of the first attempt
		wantErr   error
		wantTypes []string
	}{
		{name: "scram-sha-256 over sha-1 and plain", offered: []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"}, want: []string{"SCRAM-SHA-256"}, wantErr: ErrWrongPassword},
		{name: "scram-sha-1 only", offered: []string{"SCRAM-SHA-1", "PLAIN"}, want: []string{"SCRAM-SHA-1"}, wantErr: ErrWrongPassword},
		{name: "plus without xep-0440 on tls 1.3 not used", offered: []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"}, want: []string{"SCRAM-SHA-256"}, wantErr: ErrWrongPassword},
		{name: "plus with tls-exporter announced", offered: []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"}, cbTypes: []string{"tls-server-end-point", "tls-exporter"},
			want: []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256"}, wantCB: "tls-exporter", wantErr: ErrWrongPassword, wantTypes: []string{"tls-server-end-point", "tls-exporter"}},
		{name: "sha-256-plus first", offered: []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"}, cbTypes: []string{"tls-exporter"}, plain: true,
			want: []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, wantCB: "tls-exporter", wantErr: ErrWrongPassword, wantTypes: []string{"tls-exporter"}},
		{name: "announced types that do not fit tls 1.3", offered: []string{"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"}, cbTypes: []string{"tls-unique", "tls-server-end-point"},
			want: []string{"SCRAM-SHA-1"}, wantErr: ErrWrongPassword, wantTypes: []string{"tls-unique", "tls-server-end-point"}},
		{name: "only plus offered, no xep-0440", offered: []string{"SCRAM-SHA-1-PLUS"}, want: []string{"SCRAM-SHA-1-PLUS", ""}, wantCB: "tls-exporter", wantErr: ErrAuthFailed},
		{name: "scram preferred over allowed plain", offered: []string{"PLAIN", "SCRAM-SHA-1"}, plain: true, want: []string{"SCRAM-SHA-1"}, wantErr: ErrWrongPassword},
		{name: "plain only, not allowed", offered: []string{"PLAIN"}, want: []string{""}, wantErr: ErrAuthFailed},
		{name: "plain only, allowed", offered: []string{"PLAIN"}, plain: true, want: []string{"PLAIN"}, wantErr: ErrWrongPassword},
		{name: "nothing usable", offered: []string{"DIGEST-MD5", "X-OAUTH2"}, plain: true, want: []string{""}, wantErr: ErrAuthFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, auth := fakeSASLServer(t, tc.offered, tc.cbTypes)
			_, info, err := DialInfo(context.Background(), Config{
				JID: jid.MustParse("a@localhost"), Password: "pw", AllowPlain: tc.plain,
				Host: "127.0.0.1", Port: port, DirectTLS: true, InsecureTLSHosts: []string{"localhost"},
				Timeout: 10 * time.Second,
			})
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			var sent [][2]string
			for range tc.want {
				select {
				case a := <-auth:
					sent = append(sent, a)
				case <-time.After(10 * time.Second):
					t.Fatalf("%d connections, want %d", len(sent), len(tc.want))
				}
			}
			select {
			case a := <-auth:
				t.Errorf("one connection too many, with <auth mechanism=%q>", a[0])
			case <-time.After(100 * time.Millisecond):
			}
			var names []string
			for _, a := range sent {
				names = append(names, a[0])
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("client sent <auth/> with %q, want %q", names, tc.want)
			}
			wantMech, wantRefused := tc.want[len(tc.want)-1], ""
			if len(tc.want) > 1 {
				wantRefused = tc.wantCB
			}
			if info.Mechanism != wantMech || info.ChannelBindingRefused != wantRefused || !slices.Equal(info.Offered, tc.offered) || !slices.Equal(info.ChannelBindingTypes, tc.wantTypes) {
				t.Errorf("info = %+v, want mechanism %q, refused %q, offered %q, types %q", info, wantMech, wantRefused, tc.offered, tc.wantTypes)
			}
			for i, a := range sent {
				if !strings.HasPrefix(a[0], "SCRAM-") {
					continue
				}
				first, err := base64.StdEncoding.DecodeString(a[1])
				if err != nil {
					t.Fatal(err)
				}
				// The GS2 header says which channel binding the client uses.
				wantGS2 := "n,,"
				if i == 0 && tc.wantCB != "" {
					wantGS2 = "p=" + tc.wantCB + ",,"
				}
				if !strings.HasPrefix(string(first), wantGS2) {
					t.Errorf("client-first-message %d %q, want GS2 header %q", i, first, wantGS2)
				}
			}
		})
	}
}

// No mechanism, PLAIN included, is tried on a stream that is not secured:
// a plaintext server that offers SASL but no STARTTLS (and refuses it when
// the client asks anyway) gets no <auth/>.
func TestNoSASLWithoutTLS(t *testing.T) {
	l, port := listen(t)
	sent := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			sent <- ""
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		readUntil(c, regexp.MustCompile(`<stream:stream\b[^>]*>`))
		_, _ = io.WriteString(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>`+
			`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>`)
		var got strings.Builder
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			got.Write(b[:n])
			if err != nil {
				break
			}
			if strings.Contains(got.String(), "starttls") && !strings.Contains(got.String(), "<failure") {
				_, _ = io.WriteString(c, `<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>`)
				got.WriteString("<failure sent>")
			}
		}
		sent <- got.String()
	}()
	_, info, err := DialInfo(context.Background(), Config{
		JID: jid.MustParse("a@localhost"), Password: "pw", AllowPlain: true,
		Host: "127.0.0.1", Port: port, Timeout: 5 * time.Second,
	})
	if !errors.Is(err, ErrNoTLS) {
		t.Errorf("err = %v, want ErrNoTLS", err)
	}
	got := <-sent
	if !strings.Contains(got, "starttls") || strings.Contains(got, "<auth") {
		t.Errorf("client sent %q, want <starttls/> and no <auth/>", got)
	}
	if info.Mechanism != "" || info.Offered != nil {
		t.Errorf("info = %+v, want no SASL", info)
	}
}
