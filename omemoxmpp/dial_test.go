//go:build integration

package omemoxmpp

import (
	"context"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
)

func connDial(ctx context.Context, p *testenv.Prosody, account jid.JID, pw string) (*xmpp.Session, error) {
	return conn.Dial(ctx, conn.Config{
		JID: account, Password: pw, Host: p.Host(), Port: uint16(p.Port()),
		InsecureTLSHosts: []string{p.Domain()}, Timeout: 10 * time.Second,
	})
}
