//go:build integration

package conn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
)

// Login against a stock ejabberd 23.01: it offers SCRAM-SHA-1-PLUS on
// TLS 1.3 without announcing channel binding types (XEP-0440) and refuses
// tls-exporter ("Invalid channel binding"). The bridge logs in without
// binding on TLS 1.3, with tls-unique on TLS 1.2, and a refused binding is
// retried without it: it is never reported as a wrong password, and a wrong
// password still is.
func TestDialEjabberdChannelBinding(t *testing.T) {
	e := testenv.SharedEjabberd(t)
	account := jid.MustParse(e.CreateAccount(t, "cbtest", "right-pw"))
	base := conn.Config{JID: account, Password: "right-pw", Host: e.Host(), Port: uint16(e.Port()),
		InsecureTLSHosts: []string{e.Domain()}, Timeout: 20 * time.Second}
	for _, tc := range []struct {
		name        string
		cfg         func(conn.Config) conn.Config
		password    string
		forget      bool
		want        error
		mech        string
		cb, refused string
		version     uint16
	}{
		{name: "tls1.3: no binding without xep-0440", mech: "SCRAM-SHA-1", version: tls.VersionTLS13, forget: true},
		{name: "tls1.2: tls-unique", cfg: func(c conn.Config) conn.Config { return conn.WithMaxTLSVersion(c, tls.VersionTLS12) },
			mech: "SCRAM-SHA-1-PLUS", cb: "tls-unique", version: tls.VersionTLS12, forget: true},
		{name: "tls1.3 forced tls-exporter: refused, retried without", cfg: conn.WithForcedChannelBinding,
			mech: "SCRAM-SHA-1", refused: "tls-exporter", version: tls.VersionTLS13, forget: true},
		{name: "refusal remembered: no second refused attempt", cfg: conn.WithForcedChannelBinding,
			mech: "SCRAM-SHA-1", version: tls.VersionTLS13},
		{name: "forced binding and wrong password", cfg: conn.WithForcedChannelBinding, password: "wrong-pw", forget: true,
			want: conn.ErrWrongPassword, mech: "SCRAM-SHA-1", refused: "tls-exporter"},
		{name: "wrong password", password: "wrong-pw", forget: true, want: conn.ErrWrongPassword, mech: "SCRAM-SHA-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.forget {
				conn.ForgetChannelBindingRefusals()
			}
			cfg := base
			if tc.cfg != nil {
				cfg = tc.cfg(cfg)
			}
			if tc.password != "" {
				cfg.Password = tc.password
			}
			s, info, err := conn.DialInfo(context.Background(), cfg)
			t.Logf("offered %q, XEP-0440 %q, used %q with binding %q, refused %q: %v", info.Offered, info.ChannelBindingTypes, info.Mechanism, info.ChannelBinding, info.ChannelBindingRefused, err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if info.Mechanism != tc.mech || info.ChannelBinding != tc.cb || info.ChannelBindingRefused != tc.refused {
				t.Errorf("used %q with binding %q, refused %q; want %q, %q, %q", info.Mechanism, info.ChannelBinding, info.ChannelBindingRefused, tc.mech, tc.cb, tc.refused)
			}
			if tc.refused != "" && tc.want != nil && strings.Contains(err.Error(), "channel binding") {
				t.Errorf("a wrong password reported as a binding problem: %v", err)
			}
			if s == nil {
				return
			}
			defer s.Close()
			if v := s.ConnectionState().Version; v != tc.version {
				t.Errorf("TLS version %x, want %x", v, tc.version)
			}
			if st := s.State(); st&xmpp.Authn == 0 || st&xmpp.Ready == 0 {
				t.Errorf("state = %v", st)
			}
		})
	}
}
