//go:build integration

package conn_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Login outcomes against a real Prosody (self-signed certificate for
// "localhost", STARTTLS on one port, direct TLS on another).
func TestDialProsody(t *testing.T) {
	p := testenv.SharedProsody(t)
	account := jid.MustParse(p.CreateAccount(t, "conntest", "right-pw"))
	host, port := p.Host(), uint16(p.Port())
	tlsHost, tlsPortStr, _ := net.SplitHostPort(p.DirectTLSAddr())
	tlsPort, _ := strconv.Atoi(tlsPortStr)
	insecure := []string{p.Domain()}

	for _, tc := range []struct {
		name string
		cfg  conn.Config
		want error
	}{
		{"starttls", conn.Config{JID: account, Password: "right-pw", Host: host, Port: port, InsecureTLSHosts: insecure}, nil},
		{"direct tls", conn.Config{JID: account, Password: "right-pw", Host: tlsHost, Port: uint16(tlsPort), DirectTLS: true, InsecureTLSHosts: insecure}, nil},
		{"wrong password", conn.Config{JID: account, Password: "wrong-pw", Host: host, Port: port, InsecureTLSHosts: insecure}, conn.ErrWrongPassword},
		{"unknown account", conn.Config{JID: jid.MustParse("nobody@" + p.Domain()), Password: "x", Host: host, Port: port, InsecureTLSHosts: insecure}, conn.ErrWrongPassword},
		{"self-signed not accepted", conn.Config{JID: account, Password: "right-pw", Host: host, Port: port}, conn.ErrCertificate},
		{"self-signed direct tls not accepted", conn.Config{JID: account, Password: "right-pw", Host: tlsHost, Port: uint16(tlsPort), DirectTLS: true}, conn.ErrCertificate},
		{"insecure host names another server", conn.Config{JID: account, Password: "right-pw", Host: host, Port: port, InsecureTLSHosts: []string{"example.org"}}, conn.ErrCertificate},
		{"starttls port spoken as direct tls", conn.Config{JID: account, Password: "right-pw", Host: host, Port: port, DirectTLS: true, InsecureTLSHosts: insecure}, conn.ErrNoTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Timeout = 10 * time.Second
			s, err := conn.Dial(context.Background(), tc.cfg)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if st := s.State(); st&xmpp.Secure == 0 || st&xmpp.Authn == 0 || st&xmpp.Ready == 0 {
				t.Errorf("state = %v", st)
			}
			if !s.LocalAddr().Bare().Equal(account) || s.LocalAddr().Resourcepart() == "" {
				t.Errorf("bound %s", s.LocalAddr())
			}
			if s.ConnectionState().Version < 0x0303 {
				t.Errorf("TLS version %x", s.ConnectionState().Version)
			}
		})
	}
}
