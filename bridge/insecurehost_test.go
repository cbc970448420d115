package bridge

import (
	"slices"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestLoginInsecureHost: the self-signed host a user names at login applies
// to that login's XMPP server only (its JID domain or the server it named);
// any other name (metadata, cloud metadata address, a LAN host) is ignored.
func TestLoginInsecureHost(t *testing.T) {
	for _, tc := range []struct {
		host, account, server string
		ok                    bool
	}{
		{"localhost", "alice@localhost", "127.0.0.1", true},
		{"xmpp.lan", "alice@xmpp.lan", "", true},
		{"XMPP.lan", "alice@xmpp.lan", "", true},
		{"127.0.0.1", "alice@localhost", "127.0.0.1", true},
		{"chat.example.org", "alice@example.org", "chat.example.org", true},
		{"169.254.169.254", "alice@example.org", "", false},
		{"10.0.0.5", "alice@example.org", "chat.example.org", false},
		{"kubernetes.default", "alice@example.org", "", false},
		{"", "alice@example.org", "", false},
	} {
		t.Run(tc.host+"/"+tc.account+"/"+tc.server, func(t *testing.T) {
			if got := loginInsecureHostOK(tc.host, jid.MustParse(tc.account), tc.server); got != tc.ok {
				t.Errorf("loginInsecureHostOK = %v, want %v", got, tc.ok)
			}
			// A login stored before the check existed is held to it too.
			c := &Client{main: &Connector{}, account: jid.MustParse(tc.account),
				login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{Metadata: &UserLoginMetadata{
					JID: tc.account, Host: tc.server, InsecureTLSHost: tc.host}}}}
			if got := slices.Contains(c.connConfig().InsecureTLSHosts, tc.host) && tc.host != ""; got != tc.ok {
				t.Errorf("host in the connection's insecure hosts = %v, want %v", got, tc.ok)
			}
			if m := c.media(); xmppclient.HostListed(m.InsecureTLSHosts, tc.host) || xmppclient.HostListed(m.PrivateHosts, tc.host) {
				t.Errorf("the login's host %q applies to media", tc.host)
			}
		})
	}
}
