package conn

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// DNS record types and the one class the test server knows.
const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsTypeSRV  = 33
	dnsClassIN  = 1
)

type srvRecord struct {
	target string // fully qualified, e.g. "xmpp.example.test."
	port   uint16
}

// dnsServer is a minimal authoritative DNS server on 127.0.0.1 (UDP) that
// answers SRV and A queries from its tables: NOERROR with no answer for a
// known name and another type, NXDOMAIN for unknown names. Every query is
// logged on queries.
type dnsServer struct {
	srv     map[string]srvRecord // "_xmpp-client._tcp.example.test."
	a       map[string]net.IP    // "xmpp.example.test."
	queries chan string          // "SRV _xmpp-client._tcp.example.test."
}

// start serves until the test ends and returns a resolver that asks only
// this server.
func (s *dnsServer) start(t *testing.T) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	s.queries = make(chan string, 100)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := s.answer(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// answer builds the response to one query (RFC 1035 §4), or nil for
// anything it cannot parse.
func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	// The question: a name as length-prefixed labels, then type and class.
	var labels []string
	i := 12
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	name := strings.ToLower(strings.Join(labels, ".")) + "."
	qtype, qclass := binary.BigEndian.Uint16(q[i:]), binary.BigEndian.Uint16(q[i+2:])
	question := q[12 : i+4]
	typeName := map[uint16]string{dnsTypeA: "A", dnsTypeAAAA: "AAAA", dnsTypeSRV: "SRV"}[qtype]
	if typeName == "" {
		typeName = fmt.Sprintf("TYPE%d", qtype)
	}
	select {
	case s.queries <- typeName + " " + name:
	default:
	}

	var rdata []byte
	_, knownSRV := s.srv[name]
	_, knownA := s.a[name]
	rcode := byte(0)
	switch {
	case qclass != dnsClassIN:
	case qtype == dnsTypeSRV && knownSRV:
		r := s.srv[name]
		rdata = binary.BigEndian.AppendUint16(rdata, 0) // priority
		rdata = binary.BigEndian.AppendUint16(rdata, 0) // weight
		rdata = binary.BigEndian.AppendUint16(rdata, r.port)
		rdata = appendDNSName(rdata, r.target)
	case qtype == dnsTypeA && knownA:
		rdata = s.a[name].To4()
	case knownSRV || knownA:
		// NOERROR, no data.
	default:
		rcode = 3 // NXDOMAIN
	}

	resp := make([]byte, 12, 512)
	copy(resp, q[:2])                       // ID
	resp[2] = 0x80 | 0x04 | q[2]&0x79       // QR, AA, opcode and RD from the query
	resp[3] = 0x80 | rcode                  // RA
	binary.BigEndian.PutUint16(resp[4:], 1) // QDCOUNT
	if rdata != nil {
		binary.BigEndian.PutUint16(resp[6:], 1) // ANCOUNT
	}
	resp = append(resp, question...)
	if rdata != nil {
		resp = append(resp, 0xc0, 12) // the name: pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, dnsClassIN)
		resp = binary.BigEndian.AppendUint32(resp, 60) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp
}

func appendDNSName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// With no host override, Dial finds the server by DNS SRV through
// Config.Resolver: _xmpps-client._tcp (XEP-0368, direct TLS with ALPN
// "xmpp-client") and _xmpp-client._tcp (RFC 6120, STARTTLS), the latter
// also when the direct-TLS target does not answer.
func TestDialSRV(t *testing.T) {
	cert := selfSigned(t)
	for _, tc := range []struct {
		name      string
		xmpp      bool // publish _xmpp-client._tcp -> the plain listener
		xmpps     bool // publish _xmpps-client._tcp -> the TLS listener
		xmppsDead bool // ... whose port does not answer
		wantTLS   bool // the TLS listener is reached, else the plain one
	}{
		{name: "xmpp-client", xmpp: true},
		{name: "xmpps-client", xmpps: true, wantTLS: true},
		{name: "xmpps-client down, xmpp-client", xmpp: true, xmpps: true, xmppsDead: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plainL, plainPort := listen(t)
			tlsL, tlsPort := listen(t)
			if tc.xmppsDead {
				_ = tlsL.Close()
			}
			dns := &dnsServer{
				srv: map[string]srvRecord{},
				a: map[string]net.IP{
					"xmpp.example.test.":  net.IPv4(127, 0, 0, 1),
					"xmpps.example.test.": net.IPv4(127, 0, 0, 1),
				},
			}
			if tc.xmpp {
				dns.srv["_xmpp-client._tcp.example.test."] = srvRecord{"xmpp.example.test.", plainPort}
			}
			if tc.xmpps {
				dns.srv["_xmpps-client._tcp.example.test."] = srvRecord{"xmpps.example.test.", tlsPort}
			}
			resolver := dns.start(t)

			// The listeners report what reached them: the plain one the
			// client's stream header, the TLS one the negotiated ALPN.
			reached := make(chan string, 2)
			go func() {
				c, err := plainL.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if m := readUntil(c, regexp.MustCompile(`<stream:stream\b[^>]*\bto=["']([^"']+)["']`)); m != nil {
					reached <- "plain, stream to " + m[1]
				}
			}()
			if !tc.xmppsDead {
				go func() {
					c, err := tlsL.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					sc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"xmpp-client"}})
					if err := sc.Handshake(); err != nil {
						reached <- "tls handshake failed: " + err.Error()
						return
					}
					if m := readUntil(sc, regexp.MustCompile(`<stream:stream\b[^>]*\bto=["']([^"']+)["']`)); m != nil {
						reached <- "tls " + sc.ConnectionState().NegotiatedProtocol + ", stream to " + m[1]
					}
				}()
			}

			_, err := Dial(context.Background(), Config{
				JID: jid.MustParse("a@example.test"), Password: "x",
				InsecureTLSHosts: []string{"example.test"},
				Resolver:         resolver, Timeout: 10 * time.Second,
			})
			// The listeners are not XMPP servers: Dial fails after reaching one.
			if err == nil {
				t.Fatal("Dial succeeded against a fake server")
			}
			want := "plain, stream to example.test"
			if tc.wantTLS {
				want = "tls xmpp-client, stream to example.test"
			}
			select {
			case got := <-reached:
				if got != want {
					t.Errorf("reached %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no listener reached (Dial: %v)", err)
			}
			var asked []string
			for len(dns.queries) > 0 {
				asked = append(asked, <-dns.queries)
			}
			for _, q := range []string{"SRV _xmpp-client._tcp.example.test.", "SRV _xmpps-client._tcp.example.test."} {
				if !strings.Contains(strings.Join(asked, "\n"), q) {
					t.Errorf("DNS queries %q, want %q among them", asked, q)
				}
			}
		})
	}
}

// Without SRV records Dial falls back to the domain itself (A/AAAA) on
// 5222; here the domain has neither, so it is unreachable, and the error
// says so.
func TestDialSRVNoRecords(t *testing.T) {
	dns := &dnsServer{srv: map[string]srvRecord{}, a: map[string]net.IP{}}
	_, err := Dial(context.Background(), Config{
		JID: jid.MustParse("a@nowhere.test"), Password: "x",
		Resolver: dns.start(t), Timeout: 10 * time.Second,
	})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}
