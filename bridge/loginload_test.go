package bridge

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// TestNewLoginInPortalCache: a login made in this process is marked in a
// portal once, as one loaded at start is (bridgev2's in-portal cache), not
// on every event: the second mark does not write the user_portal row that
// the first one made and that was deleted meanwhile. Plain NewLogin (the
// "bridgev2 alone" case) writes it again, which is what newLogin avoids.
func TestNewLoginInPortalCache(t *testing.T) {
	for _, tc := range []struct {
		name     string
		make     func(context.Context, *bridgev2.Bridge, *bridgev2.User, *database.UserLogin) (*bridgev2.UserLogin, error)
		existing bool // the account logs in again
		cached   bool
	}{
		{"newLogin", func(ctx context.Context, br *bridgev2.Bridge, u *bridgev2.User, d *database.UserLogin) (*bridgev2.UserLogin, error) {
			return newLogin(ctx, br, u, d, nil)
		}, false, true},
		{"newLogin again", func(ctx context.Context, br *bridgev2.Bridge, u *bridgev2.User, d *database.UserLogin) (*bridgev2.UserLogin, error) {
			return newLogin(ctx, br, u, d, nil)
		}, true, true},
		{"bridgev2 alone", func(ctx context.Context, _ *bridgev2.Bridge, u *bridgev2.User, d *database.UserLogin) (*bridgev2.UserLogin, error) {
			return u.NewLogin(ctx, d, nil)
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			br := testBridge(t)
			user, err := br.GetUserByMXID(ctx, "@alice:localhost")
			if err != nil {
				t.Fatal(err)
			}
			data := func() *database.UserLogin {
				return &database.UserLogin{ID: "alice@xmpp.localhost", RemoteName: "alice@xmpp.localhost",
					Metadata: &UserLoginMetadata{JID: "alice@xmpp.localhost"}}
			}
			if tc.existing {
				if _, err := tc.make(ctx, br, user, data()); err != nil {
					t.Fatal(err)
				}
			}
			ul, err := tc.make(ctx, br, user, data())
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := br.GetExistingUserLoginByID(ctx, ul.ID); got != ul {
				t.Fatalf("bridgev2 holds login %p, NewLogin returned %p", got, ul)
			}
			if ul.Client == nil || ul.Client.(*Client).account.String() != "alice@xmpp.localhost" {
				t.Fatalf("login has no client for its account: %#v", ul.Client)
			}
			portal, err := br.GetPortalByKey(ctx, networkid.PortalKey{ID: "bob@xmpp.localhost", Receiver: ul.ID})
			if err != nil {
				t.Fatal(err)
			}
			ul.MarkInPortal(ctx, portal)
			rows := func() int {
				var n int
				if err := br.DB.QueryRow(ctx, `SELECT COUNT(*) FROM user_portal WHERE login_id=$1`, ul.ID).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if rows() != 1 {
				t.Fatal("first mark wrote no user_portal row")
			}
			if _, err := br.DB.Exec(ctx, `DELETE FROM user_portal WHERE login_id=$1`, ul.ID); err != nil {
				t.Fatal(err)
			}
			ul.MarkInPortal(ctx, portal)
			if cached := rows() == 0; cached != tc.cached {
				t.Errorf("second mark answered from the cache: %v, want %v", cached, tc.cached)
			}
		})
	}
}

// testBridge is a bridgev2 bridge with this connector on a fresh SQLite
// database, not started (nothing talks to a homeserver).
func testBridge(t *testing.T) *bridgev2.Bridge {
	t.Helper()
	raw, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	cfg := &bridgeconfig.Config{
		Homeserver: bridgeconfig.HomeserverConfig{Address: "http://127.0.0.1:1", Domain: "localhost"},
		AppService: bridgeconfig.AppserviceConfig{ID: "xmpp", Bot: bridgeconfig.BotUserConfig{Username: "xmppbot"}, UsernameTemplate: "xmpp_{{.}}"},
	}
	mc := matrix.NewConnector(cfg)
	br := bridgev2.NewBridge("xmpp", raw, zerolog.Nop(), &cfg.Bridge, mc, &Connector{}, commands.NewProcessor)
	if err := br.DB.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	br.BackgroundCtx = t.Context()
	return br
}
