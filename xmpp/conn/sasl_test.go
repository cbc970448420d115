package conn

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
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

// fakeSASLServer is a direct-TLS XMPP server that offers mechs, reads the
// client's <auth/> (reported on the channel, "" if none came) and refuses
// it with not-authorized.
func fakeSASLServer(t *testing.T, mechs []string) (port uint16, auth <-chan [2]string) {
	t.Helper()
	cert := selfSigned(t)
	l, port := listen(t)
	ch := make(chan [2]string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- [2]string{}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		var got [2]string
		defer func() { ch <- got }()
		if readUntil(tc, regexp.MustCompile(`<stream:stream\b[^>]*>`)) == nil {
			return
		}
		var features strings.Builder
		for _, m := range mechs {
			features.WriteString("<mechanism>" + m + "</mechanism>")
		}
		_, _ = io.WriteString(tc, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>`+
			`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>`+features.String()+`</mechanisms></stream:features>`)
		if m := readUntil(tc, authRE); m != nil {
			got = [2]string{m[1], m[2]}
			_, _ = io.WriteString(tc, `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`)
		}
		_, _ = io.WriteString(tc, `</stream:stream>`)
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

// What the client picks from what a (TLS) server offers, as seen on the
// wire and as reported by DialInfo.
func TestSASLMechanismChoice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offered []string
		plain   bool
		want    string // "" for no <auth/> at all
		wantCB  string
		wantErr error
	}{
		{"scram-sha-256 over sha-1 and plain", []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"}, false, "SCRAM-SHA-256", "", ErrWrongPassword},
		{"scram-sha-1 only", []string{"SCRAM-SHA-1", "PLAIN"}, false, "SCRAM-SHA-1", "", ErrWrongPassword},
		{"plus preferred", []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"}, false, "SCRAM-SHA-1-PLUS", "tls-exporter", ErrWrongPassword},
		{"sha-256-plus first", []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"}, true, "SCRAM-SHA-256-PLUS", "tls-exporter", ErrWrongPassword},
		{"scram preferred over allowed plain", []string{"PLAIN", "SCRAM-SHA-1"}, true, "SCRAM-SHA-1", "", ErrWrongPassword},
		{"plain only, not allowed", []string{"PLAIN"}, false, "", "", ErrAuthFailed},
		{"plain only, allowed", []string{"PLAIN"}, true, "PLAIN", "", ErrWrongPassword},
		{"nothing usable", []string{"DIGEST-MD5", "X-OAUTH2"}, true, "", "", ErrAuthFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, auth := fakeSASLServer(t, tc.offered)
			_, info, err := DialInfo(context.Background(), Config{
				JID: jid.MustParse("a@localhost"), Password: "pw", AllowPlain: tc.plain,
				Host: "127.0.0.1", Port: port, DirectTLS: true, InsecureTLSHosts: []string{"localhost"},
				Timeout: 10 * time.Second,
			})
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			got := <-auth
			if got[0] != tc.want {
				t.Errorf("client sent <auth mechanism=%q>, want %q", got[0], tc.want)
			}
			if info.Mechanism != tc.want || info.ChannelBinding != tc.wantCB || !slices.Equal(info.Offered, tc.offered) {
				t.Errorf("info = %+v, want mechanism %q, channel binding %q, offered %q", info, tc.want, tc.wantCB, tc.offered)
			}
			if strings.HasPrefix(tc.want, "SCRAM-") {
				first, err := base64.StdEncoding.DecodeString(got[1])
				if err != nil {
					t.Fatal(err)
				}
				// The GS2 header says which channel binding the client uses.
				wantGS2 := "n,,"
				if tc.wantCB != "" {
					wantGS2 = "p=" + tc.wantCB + ",,"
				}
				if !strings.HasPrefix(string(first), wantGS2) {
					t.Errorf("client-first-message %q, want GS2 header %q", first, wantGS2)
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
