package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// instance is one bridge instance of the scale-out test: its own appservice registration,
// namespace (bot and ghost prefix) and PostgreSQL database (docs/scaling.md).
type instance struct {
	name   string
	cfg    *harness.BridgeConfig
	bridge *harness.Bridge
	bot    id.UserID
	prefix string // ghost localpart prefix
}

func (in *instance) ghost(contact jid.JID) id.UserID {
	return id.NewUserID(in.prefix+id.EncodeUserLocalpart(contact.Bare().String()), "localhost")
}

// TestScaleOutTwoInstances runs two bridge instances side by side on one Dendrite and one
// PostgreSQL server (a database each), as docs/scaling.md lays out: each instance has its own
// appservice registration, bot, ghost namespace and database. It shows that the homeserver
// keeps the namespaces apart, that each instance's logins, ghosts and rooms stay in its own
// database and rooms, and that both bridge messages both ways at the same time.
func TestScaleOutTwoInstances(t *testing.T) {
	bin := bridgeBin(t)
	prosody := testenv.StartProsody(t, testenv.ProsodyOptions{})
	pg := testenv.StartPostgres(t)
	hsPort := testenv.FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var insts []*instance
	for _, name := range []string{"a", "b"} {
		in := &instance{name: name, prefix: "xmpp" + name + "_"}
		in.bot = id.NewUserID("xmppbot_"+name, "localhost")
		in.cfg = &harness.BridgeConfig{
			Dir:            t.TempDir(),
			HomeserverURL:  fmt.Sprintf("http://127.0.0.1:%d", hsPort),
			Domain:         "localhost",
			AppservicePort: testenv.FreePort(t),
			Encryption:     true,
			PostgresURI:    pg.CreateDatabase(t, "xmppbridge_"+name),
			Set: map[string]any{
				"appservice.id":                "xmpp_" + name,
				"appservice.bot.username":      in.bot.Localpart(),
				"appservice.bot.displayname":   "XMPP bridge bot " + name,
				"appservice.username_template": in.prefix + "{{.}}",
			},
		}
		if err := harness.WriteConfig(ctx, bin, in.cfg); err != nil {
			t.Fatal(err)
		}
		insts = append(insts, in)
	}
	a, b := insts[0], insts[1]
	checkNamespacesDisjoint(t, a, b)

	dendrite := testenv.StartDendrite(t, testenv.DendriteOptions{
		Port:          hsPort,
		Registrations: []string{a.cfg.RegistrationPath(), b.cfg.RegistrationPath()},
	})
	for _, in := range insts {
		in.bridge = &harness.Bridge{Bin: bin, Config: in.cfg}
		t.Cleanup(func() {
			if err := in.bridge.Stop(); err != nil {
				t.Errorf("bridge %s: %v", in.name, err)
			}
			if t.Failed() || os.Getenv("MXOMEMO_E2E_LOG") != "" {
				t.Logf("--- bridge %s log (%s, last 30 kB) ---\n%s", in.name, in.bridge.LogPath(), in.bridge.Tail(30000))
			}
		})
		if err := in.bridge.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The homeserver enforces the namespaces: instance a's token cannot act as b's ghosts or bot.
	for _, c := range []struct {
		from, other *instance
	}{{a, b}, {b, a}} {
		for _, victim := range []id.UserID{c.other.bot, c.other.ghost(jid.MustParse("carol@localhost"))} {
			if code := whoamiAs(ctx, t, dendrite.URL(), asToken(t, c.from.cfg), victim); code == http.StatusOK {
				t.Errorf("instance %s's appservice token may act as %s of instance %s", c.from.name, victim, c.other.name)
			}
		}
		if code := whoamiAs(ctx, t, dendrite.URL(), asToken(t, c.from.cfg), c.from.bot); code != http.StatusOK {
			t.Errorf("instance %s's appservice token may not act as its own bot (HTTP %d)", c.from.name, code)
		}
	}

	account := func(localpart string) (jid.JID, string) {
		pw := localpart + "-secret"
		return jid.MustParse(prosody.CreateAccount(t, localpart, pw)), pw
	}
	alice, alicePW := account("alice") // bridged by instance a
	bob, bobPW := account("bob")       // bridged by instance b
	carol, carolPW := account("carol") // a contact of both
	carolC, err := harness.DialPeer(ctx, prosody.Addr(), prosody.CertFile(), jid.MustParse(carol.String()+"/laptop"), carolPW)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(carolC.Close)

	users := map[string]*harness.MatrixUser{}
	mgmts := map[string]id.RoomID{}
	logins := map[string]jid.JID{"a": alice, "b": bob}
	passwords := map[string]string{"a": alicePW, "b": bobPW}
	for _, in := range insts {
		uid, token := dendrite.RegisterUser(t, "mx"+in.name, "matrix-mx"+in.name+"-pw")
		u, err := harness.NewMatrixUser(dendrite.URL(), id.UserID(uid), token)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(u.Close)
		users[in.name] = u
		lctx, lcancel := context.WithTimeout(ctx, loginTimeout)
		mgmt, err := u.OpenManagementRoom(lctx, in.bot)
		if err != nil {
			lcancel()
			t.Fatalf("instance %s: %v", in.name, err)
		}
		mgmts[in.name] = mgmt
		cur := u.Cursor(mgmt)
		res, err := u.Login(lctx, mgmt, in.bot, harness.LoginInput{
			JID: logins[in.name].String(), Password: passwords[in.name], Server: prosody.Addr(), InsecureHost: "localhost",
		})
		if err != nil {
			lcancel()
			t.Fatalf("instance %s: login: %v (bot said %q)", in.name, err, res.Answer)
		}
		if _, _, err := u.WaitEvent(lctx, mgmt, cur, harness.StateNotice(logins[in.name].String(), "CONNECTED")); err != nil {
			lcancel()
			t.Fatalf("instance %s: no CONNECTED notice: %v", in.name, err)
		}
		lcancel()
	}

	// Messages both ways through both instances at once: carol writes to alice and to bob, each
	// user answers from Matrix.
	rooms := map[string]id.RoomID{}
	bodies := map[string]string{}
	for _, in := range insts {
		bodies[in.name] = uniq("carol to " + logins[in.name].Localpart())
		if err := carolC.SendChat(ctx, logins[in.name], "", "", bodies[in.name]); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range insts {
		sctx, scancel := stepCtx()
		u := users[in.name]
		room, err := u.FindRoomWith(sctx, in.ghost(carol), mgmts[in.name])
		if err != nil {
			scancel()
			t.Fatalf("instance %s: no portal with %s: %v", in.name, in.ghost(carol), err)
		}
		if _, _, err := u.WaitEvent(sctx, room, 0, harness.IsMessage(in.ghost(carol), bodies[in.name])); err != nil {
			scancel()
			t.Fatalf("instance %s: %q never arrived from %s: %v", in.name, bodies[in.name], in.ghost(carol), err)
		}
		scancel()
		rooms[in.name] = room
	}
	cur := carolC.Cursor()
	replies := map[string]string{}
	for _, in := range insts {
		replies[in.name] = uniq("reply from mx" + in.name)
		if _, err := users[in.name].Client.SendText(ctx, rooms[in.name], replies[in.name]); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range insts {
		sctx, scancel := stepCtx()
		m, _, err := carolC.WaitMessage(sctx, cur, bodyIs(replies[in.name]))
		scancel()
		if err != nil {
			t.Fatalf("instance %s: carol never received %q: %v", in.name, replies[in.name], err)
		}
		if from := jid.MustParse(m.From).Bare(); !from.Equal(logins[in.name]) {
			t.Errorf("instance %s: %q came from %s, want %s", in.name, replies[in.name], from, logins[in.name])
		}
	}

	// Apart: the rooms differ, each room has only its own instance's bot and ghosts, and each
	// database holds only its own instance's login, ghost MXIDs and rooms.
	if rooms["a"] == rooms["b"] {
		t.Fatalf("both instances bridged into the same room %s", rooms["a"])
	}
	for _, in := range insts {
		other := b
		if in == b {
			other = a
		}
		members, err := users[in.name].Client.JoinedMembers(ctx, rooms[in.name])
		if err != nil {
			t.Fatal(err)
		}
		for m := range members.Joined {
			if m == other.bot || strings.HasPrefix(m.Localpart(), other.prefix) {
				t.Errorf("instance %s's portal %s has %s of instance %s", in.name, rooms[in.name], m, other.name)
			}
		}
		if got := pgColumn(t, in.cfg.PostgresURI, "SELECT id FROM user_login"); !slices.Equal(got, []string{logins[in.name].String()}) {
			t.Errorf("instance %s's user_login = %v, want [%s]", in.name, got, logins[in.name])
		}
		if got := pgColumn(t, in.cfg.PostgresURI, "SELECT user_mxid FROM user_login"); !slices.Equal(got, []string{users[in.name].UserID().String()}) {
			t.Errorf("instance %s's user_login users = %v, want [%s]", in.name, got, users[in.name].UserID())
		}
		portals := pgColumn(t, in.cfg.PostgresURI, "SELECT COALESCE(mxid, '') FROM portal")
		if !slices.Contains(portals, rooms[in.name].String()) {
			t.Errorf("instance %s's portal table %v lacks its room %s", in.name, portals, rooms[in.name])
		}
		if slices.Contains(portals, rooms[other.name].String()) {
			t.Errorf("instance %s's portal table has instance %s's room %s", in.name, other.name, rooms[other.name])
		}
		// mxmain gives every instance the bridge_id "", so the rows of two instances cannot
		// share one database: each has its own (docs/scaling.md).
		ghosts := pgColumn(t, in.cfg.PostgresURI, "SELECT id FROM ghost")
		if !slices.Contains(ghosts, carol.String()) {
			t.Errorf("instance %s's ghost table %v lacks carol", in.name, ghosts)
		}
		if foreign := logins[other.name].String(); slices.Contains(ghosts, foreign) {
			t.Errorf("instance %s's ghost table %v has instance %s's login %s", in.name, ghosts, other.name, foreign)
		}
	}
	// Each user sees only their own instance's portal (no cross-bridging of the shared contact).
	for _, in := range insts {
		other := b
		if in == b {
			other = a
		}
		for _, room := range users[in.name].JoinedRooms() {
			members, err := users[in.name].Client.JoinedMembers(ctx, room)
			if err != nil {
				continue
			}
			if _, ok := members.Joined[other.ghost(carol)]; ok {
				t.Errorf("user mx%s is in %s with instance %s's ghost", in.name, room, other.name)
			}
		}
	}
	t.Logf("scale-out: two instances on one Dendrite and one PostgreSQL: rooms %s / %s, ghosts %s / %s",
		rooms["a"], rooms["b"], a.ghost(carol), b.ghost(carol))
}

// checkNamespacesDisjoint reads both registrations and checks that neither's user namespace
// matches the other's bot or ghosts, and that both are exclusive.
func checkNamespacesDisjoint(t *testing.T, a, b *instance) {
	t.Helper()
	carol := jid.MustParse("carol@localhost")
	for _, c := range []struct{ in, other *instance }{{a, b}, {b, a}} {
		var reg struct {
			ID         string `yaml:"id"`
			Namespaces struct {
				Users []struct {
					Regex     string `yaml:"regex"`
					Exclusive bool   `yaml:"exclusive"`
				} `yaml:"users"`
			} `yaml:"namespaces"`
		}
		raw, err := os.ReadFile(c.in.cfg.RegistrationPath())
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(raw, &reg); err != nil {
			t.Fatal(err)
		}
		if reg.ID != "xmpp_"+c.in.name {
			t.Errorf("registration %s has id %q", c.in.name, reg.ID)
		}
		ownMatched := map[id.UserID]bool{}
		for _, ns := range reg.Namespaces.Users {
			re, err := regexp.Compile(ns.Regex)
			if err != nil {
				t.Fatalf("registration %s: %v", c.in.name, err)
			}
			if !ns.Exclusive {
				t.Errorf("registration %s: namespace %s is not exclusive", c.in.name, ns.Regex)
			}
			for _, own := range []id.UserID{c.in.bot, c.in.ghost(carol)} {
				if re.MatchString(own.String()) {
					ownMatched[own] = true
				}
			}
			for _, foreign := range []id.UserID{c.other.bot, c.other.ghost(carol)} {
				if re.MatchString(foreign.String()) {
					t.Errorf("registration %s's namespace %s matches instance %s's %s", c.in.name, ns.Regex, c.other.name, foreign)
				}
			}
		}
		if len(ownMatched) != 2 {
			t.Errorf("registration %s's namespaces %+v do not cover its own bot and ghosts", c.in.name, reg.Namespaces.Users)
		}
	}
}

// asToken reads appservice.as_token from an instance's config.
func asToken(t *testing.T, c *harness.BridgeConfig) string {
	t.Helper()
	raw, err := os.ReadFile(c.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Appservice struct {
			ASToken string `yaml:"as_token"`
		} `yaml:"appservice"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Appservice.ASToken
}

// whoamiAs asks the homeserver who the appservice token is when masquerading as user, and
// returns the HTTP status (200 when the homeserver lets it).
func whoamiAs(ctx context.Context, t *testing.T, hs, token string, user id.UserID) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hs+"/_matrix/client/v3/account/whoami?user_id="+strings.ReplaceAll(user.String(), "@", "%40"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pgColumn runs q on a PostgreSQL database and returns the first column of every row, sorted.
func pgColumn(t *testing.T, uri, q string) []string {
	t.Helper()
	db, err := sql.Open("postgres", uri)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := stepCtx()
	defer cancel()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
