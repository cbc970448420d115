package bridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
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

// TestNewLoginTakeover: another Matrix user logging in with the account
// takes the login over as bridgev2's NewLogin does (the old owner's login
// deleted, and the old owner told with a LOGIN_OVERRIDDEN_ANOTHER_USER
// bridge state), and the new login has the in-portal cache too. Without
// DeleteOnConflict the takeover is refused and the old login stays.
func TestNewLoginTakeover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		params   *bridgev2.NewLoginParams
		takeover bool
	}{
		{"delete on conflict", &bridgev2.NewLoginParams{DeleteOnConflict: true}, true},
		{"refused", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			states := make(chan status.BridgeState, 16)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var st status.BridgeState
				if err := json.NewDecoder(r.Body).Decode(&st); err == nil {
					states <- st
				}
			}))
			t.Cleanup(srv.Close)
			br := testBridgeWith(t, func(cfg *bridgeconfig.Config) { cfg.Homeserver.StatusEndpoint = srv.URL })
			data := func() *database.UserLogin {
				return &database.UserLogin{ID: "alice@xmpp.localhost", RemoteName: "alice@xmpp.localhost",
					Metadata: &UserLoginMetadata{JID: "alice@xmpp.localhost"}}
			}
			first, err := br.GetUserByMXID(ctx, "@first:localhost")
			if err != nil {
				t.Fatal(err)
			}
			second, err := br.GetUserByMXID(ctx, "@second:localhost")
			if err != nil {
				t.Fatal(err)
			}
			old, err := newLogin(ctx, br, first, data(), nil)
			if err != nil {
				t.Fatal(err)
			}
			ul, err := newLogin(ctx, br, second, data(), tc.params)
			if !tc.takeover {
				if err == nil {
					t.Fatal("the second user took the login over without DeleteOnConflict")
				}
				if got, _ := br.GetExistingUserLoginByID(ctx, old.ID); got != old || len(first.GetUserLoginIDs()) != 1 {
					t.Errorf("the first user's login did not stay: %p, want %p", got, old)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := br.GetExistingUserLoginByID(ctx, ul.ID); got != ul || ul == old || ul.UserMXID != second.MXID {
				t.Fatalf("bridgev2 holds %p (of %s), newLogin returned %p; old %p", got, ul.UserMXID, ul, old)
			}
			if ids := first.GetUserLoginIDs(); len(ids) != 0 || old.BridgeState != nil {
				t.Errorf("the first user's login was not deleted: %v", ids)
			}
			var rows int
			if err := br.DB.QueryRow(ctx, `SELECT COUNT(*) FROM user_login WHERE id=$1 AND user_mxid=$2`, ul.ID, second.MXID).Scan(&rows); err != nil || rows != 1 {
				t.Errorf("user_login rows of the new owner: %d, %v", rows, err)
			}
			told := false
			for !told {
				select {
				case st := <-states:
					told = st.UserID == first.MXID && st.StateEvent == status.StateLoggedOut && st.Reason == "LOGIN_OVERRIDDEN_ANOTHER_USER"
				case <-time.After(5 * time.Second):
					t.Fatal("the first user was not told that the login was taken over")
				}
			}
			portal, err := br.GetPortalByKey(ctx, networkid.PortalKey{ID: "bob@xmpp.localhost", Receiver: ul.ID})
			if err != nil {
				t.Fatal(err)
			}
			ul.MarkInPortal(ctx, portal)
			if _, err := br.DB.Exec(ctx, `DELETE FROM user_portal WHERE login_id=$1`, ul.ID); err != nil {
				t.Fatal(err)
			}
			ul.MarkInPortal(ctx, portal)
			if err := br.DB.QueryRow(ctx, `SELECT COUNT(*) FROM user_portal WHERE login_id=$1`, ul.ID).Scan(&rows); err != nil || rows != 0 {
				t.Errorf("the taken-over login has no in-portal cache: %d rows after the second mark, %v", rows, err)
			}
		})
	}
}

// testBridge is a bridgev2 bridge with this connector on a fresh SQLite
// database, not started (nothing talks to a homeserver).
func testBridge(t *testing.T) *bridgev2.Bridge {
	t.Helper()
	return testBridgeWith(t, nil)
}

// testBridgeWith is testBridge with its configuration changed by edit.
func testBridgeWith(t *testing.T, edit func(*bridgeconfig.Config)) *bridgev2.Bridge {
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
	if edit != nil {
		edit(cfg)
	}
	mc := matrix.NewConnector(cfg)
	br := bridgev2.NewBridge("xmpp", raw, zerolog.Nop(), &cfg.Bridge, mc, &Connector{}, commands.NewProcessor)
	if err := br.DB.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	br.BackgroundCtx = t.Context()
	return br
}
