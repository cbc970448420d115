//go:build integration

package conn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
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
			s, info, err := conn.DialInfo(context.Background(), tc.cfg)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if tc.want == conn.ErrWrongPassword {
					// Refused after SCRAM, not after a weaker mechanism.
					checkInfo(t, info, prosodyTLS13Offer, "SCRAM-SHA-1", "")
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
			if s.ConnectionState().Version != tls.VersionTLS13 {
				t.Errorf("TLS version %x, want 1.3", s.ConnectionState().Version)
			}
			checkInfo(t, info, prosodyTLS13Offer, "SCRAM-SHA-1", "")
		})
	}
}

// What Prosody 0.12 offers: SCRAM with the hash of its password_hash
// setting (SHA-1 by default, so no SCRAM-SHA-256) and PLAIN over TLS. Its
// only channel binding is tls-unique, which TLS 1.3 does not define (no
// tls-exporter, no tls-server-end-point), so the -PLUS variant is offered
// on TLS 1.2 only.
var prosodyTLS13Offer = []string{"PLAIN", "SCRAM-SHA-1"}

func checkInfo(t *testing.T, info conn.Info, offered []string, mechanism, channelBinding string) {
	t.Helper()
	got := slices.Sorted(slices.Values(info.Offered))
	if !slices.Equal(got, offered) || info.Mechanism != mechanism || info.ChannelBinding != channelBinding {
		t.Errorf("SASL: offered %q, used %q with channel binding %q; want offered %q, used %q with %q",
			info.Offered, info.Mechanism, info.ChannelBinding, offered, mechanism, channelBinding)
	}
}

// The mechanism chosen against Prosody: SCRAM always (also when PLAIN is
// allowed), SHA-256 when the server stores SHA-256 keys, and the
// channel-bound -PLUS variant whenever Prosody offers it (TLS 1.2,
// tls-unique), over STARTTLS and direct TLS.
func TestDialProsodyMechanisms(t *testing.T) {
	sha1 := testenv.SharedProsody(t)
	sha256 := testenv.StartProsody(t, testenv.ProsodyOptions{ExtraConfig: `password_hash = "SHA-256"`})
	for _, srv := range []struct {
		name string
		p    *testenv.Prosody
		hash string
	}{
		{"sha-1", sha1, "SCRAM-SHA-1"},
		{"sha-256", sha256, "SCRAM-SHA-256"},
	} {
		account := jid.MustParse(srv.p.CreateAccount(t, "mechtest", "right-pw"))
		tlsHost, tlsPortStr, _ := net.SplitHostPort(srv.p.DirectTLSAddr())
		tlsPort, _ := strconv.Atoi(tlsPortStr)
		for _, tc := range []struct {
			name     string
			direct   bool
			tls12    bool
			plain    bool
			password string
			offered  []string
			mech, cb string
			want     error
		}{
			{name: "starttls", offered: []string{"PLAIN", srv.hash}, mech: srv.hash},
			{name: "starttls plain allowed", plain: true, offered: []string{"PLAIN", srv.hash}, mech: srv.hash},
			{name: "direct tls", direct: true, offered: []string{"PLAIN", srv.hash}, mech: srv.hash},
			{name: "starttls tls1.2", tls12: true, offered: []string{"PLAIN", srv.hash, srv.hash + "-PLUS"}, mech: srv.hash + "-PLUS", cb: "tls-unique"},
			{name: "direct tls tls1.2", direct: true, tls12: true, offered: []string{"PLAIN", srv.hash, srv.hash + "-PLUS"}, mech: srv.hash + "-PLUS", cb: "tls-unique"},
			// A failed -PLUS attempt is tried again without channel binding
			// (the server may have refused the binding, not the password):
			// the second refusal says the password is wrong.
			{name: "tls1.2 wrong password", tls12: true, password: "wrong-pw", offered: []string{"PLAIN", srv.hash, srv.hash + "-PLUS"}, mech: srv.hash, want: conn.ErrWrongPassword},
		} {
			t.Run(srv.name+"/"+tc.name, func(t *testing.T) {
				cfg := conn.Config{JID: account, Password: "right-pw", AllowPlain: tc.plain,
					Host: srv.p.Host(), Port: uint16(srv.p.Port()), InsecureTLSHosts: []string{srv.p.Domain()}, Timeout: 10 * time.Second}
				if tc.password != "" {
					cfg.Password = tc.password
				}
				if tc.direct {
					cfg.Host, cfg.Port, cfg.DirectTLS = tlsHost, uint16(tlsPort), true
				}
				wantVersion := uint16(tls.VersionTLS13)
				if tc.tls12 {
					cfg = conn.WithMaxTLSVersion(cfg, tls.VersionTLS12)
					wantVersion = tls.VersionTLS12
				}
				s, info, err := conn.DialInfo(context.Background(), cfg)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				checkInfo(t, info, tc.offered, tc.mech, tc.cb)
				if s == nil {
					return
				}
				defer s.Close()
				if v := s.ConnectionState().Version; v != wantVersion {
					t.Errorf("TLS version %x, want %x", v, wantVersion)
				}
				if st := s.State(); st&xmpp.Secure == 0 || st&xmpp.Authn == 0 || st&xmpp.Ready == 0 {
					t.Errorf("state = %v", st)
				}
			})
		}
	}
}
