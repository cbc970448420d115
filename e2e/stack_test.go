package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	_ "github.com/mattn/go-sqlite3"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// binDir holds the bridge binary, built once per test binary run.
var (
	binDir   string
	buildMu  sync.Mutex
	builtBin string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mxomemo-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// bridgeBin builds ./cmd/bridge (with -tags goolm) on first use. MXOMEMO_E2E_BRIDGE_BIN names a
// prebuilt binary instead.
func bridgeBin(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin := os.Getenv("MXOMEMO_E2E_BRIDGE_BIN"); bin != "" {
		return bin
	}
	if builtBin == "" && buildErr == nil {
		root, err := harness.RepoRoot()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			out := filepath.Join(binDir, "xmpp-bridge")
			err = harness.BuildBridge(ctx, root, out)
			cancel()
			builtBin = out
		}
		buildErr = err
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// Timeouts of single steps. A step that takes longer than this on loopback is a failure, not
// a slow machine.
const (
	stepTimeout  = 30 * time.Second
	loginTimeout = 60 * time.Second
)

// xmppServer is what the stack needs of its XMPP server: Prosody or ejabberd.
type xmppServer interface {
	testenv.XMPPServer
	CreateAccount(t testenv.TB, localpart, password string) string
	Addr() string
	DirectTLSAddr() string
	CertFile() string
	Domain() string
	MUCDomain() string
	Restart(t testenv.TB)
}

var (
	_ xmppServer = (*testenv.Prosody)(nil)
	_ xmppServer = (*testenv.Ejabberd)(nil)
)

// stack is one complete test environment: an XMPP server (Prosody, or ejabberd for the scenarios
// that run on both), Dendrite with the bridge's registration, the bridge on one database, and a
// Matrix user.
type stack struct {
	t       testing.TB
	backend string
	// server is "prosody" or "ejabberd"; xmpp is that server. prosody is set on Prosody only,
	// for the tests that need more of it.
	server   string
	xmpp     xmppServer
	prosody  *testenv.Prosody
	ejabberd *testenv.Ejabberd
	dendrite *testenv.Dendrite
	cfg      *harness.BridgeConfig
	bridge   *harness.Bridge
	bot      id.UserID
}

// newStack starts the servers and the bridge for backend "sqlite" or "postgres"; everything stops
// when t ends, and the bridge log is printed if t failed.
func newStack(t testing.TB, backend string, opts ...func(*harness.BridgeConfig)) *stack {
	t.Helper()
	return newStackWith(t, backend, testenv.ProsodyOptions{}, opts...)
}

// newStackWith is newStack with Prosody options.
func newStackWith(t testing.TB, backend string, popts testenv.ProsodyOptions, opts ...func(*harness.BridgeConfig)) *stack {
	t.Helper()
	return newStackOn(t, "prosody", backend, popts, opts...)
}

// newStackOn is newStack on the XMPP server named by server: "prosody" (with popts) or
// "ejabberd" (Debian's ejabberd, configured as shipped where it matters; of popts only the
// upload size limit applies).
func newStackOn(t testing.TB, server, backend string, popts testenv.ProsodyOptions, opts ...func(*harness.BridgeConfig)) *stack {
	t.Helper()
	bin := bridgeBin(t)
	s := &stack{t: t, backend: backend, server: server}
	switch server {
	case "prosody":
		s.prosody = testenv.StartProsody(t, popts)
		s.xmpp = s.prosody
	case "ejabberd":
		s.ejabberd = testenv.StartEjabberd(t, testenv.EjabberdOptions{UploadMaxSize: popts.UploadSizeLimit})
		s.xmpp = s.ejabberd
	default:
		t.Fatalf("unknown XMPP server %q", server)
	}
	hsPort := testenv.FreePort(t)
	s.cfg = &harness.BridgeConfig{
		Dir:            t.TempDir(),
		HomeserverURL:  fmt.Sprintf("http://127.0.0.1:%d", hsPort),
		Domain:         "localhost",
		AppservicePort: testenv.FreePort(t),
		Encryption:     true,
	}
	for _, o := range opts {
		o(s.cfg)
	}
	switch backend {
	case "sqlite":
	case "postgres":
		pg := testenv.StartPostgres(t)
		s.cfg.PostgresURI = pg.CreateDatabase(t, "xmppbridge")
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := harness.WriteConfig(ctx, bin, s.cfg); err != nil {
		t.Fatal(err)
	}
	// The registration carries the appservice URL; Dendrite reads it at startup, on the port the
	// config already names.
	s.dendrite = testenv.StartDendrite(t, testenv.DendriteOptions{Registration: s.cfg.RegistrationPath(), Port: hsPort})
	s.bridge = &harness.Bridge{Bin: bin, Config: s.cfg}
	t.Cleanup(func() {
		if err := s.bridge.Stop(); err != nil {
			t.Errorf("bridge: %v", err)
		}
		switch {
		case os.Getenv("MXOMEMO_E2E_LOG") != "":
			t.Logf("--- bridge log (%s) ---\n%s", s.bridge.LogPath(), s.bridge.Log())
		case t.Failed():
			t.Logf("--- bridge log (%s, last 40 kB) ---\n%s", s.bridge.LogPath(), s.bridge.Tail(40000))
		}
		if t.Failed() {
			s.keepLogs(t)
		}
	})
	if err := s.bridge.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s.bot = id.NewUserID("xmppbot", "localhost")
	return s
}

// matrixUser registers a Matrix user on the stack's Dendrite and starts syncing as it.
func (s *stack) matrixUser(t testing.TB, localpart string) *harness.MatrixUser {
	t.Helper()
	uid, token := s.dendrite.RegisterUser(t, localpart, "matrix-"+localpart+"-pw")
	u, err := harness.NewMatrixUser(s.dendrite.URL(), id.UserID(uid), token)
	if err != nil {
		t.Fatal(err)
	}
	s.t.Cleanup(u.Close)
	return u
}

// account creates an XMPP account and returns its bare JID and password.
func (s *stack) account(t testing.TB, localpart string) (jid.JID, string) {
	t.Helper()
	pw := localpart + "-secret"
	return jid.MustParse(s.xmpp.CreateAccount(t, localpart, pw)), pw
}

// uploadURL is the base URL of the files the server's HTTP upload service stores.
func (s *stack) uploadURL() string {
	if s.ejabberd != nil {
		return s.ejabberd.HTTPURL() + "upload/"
	}
	return s.prosody.UploadURL()
}

// serverDir is where the server keeps its data, uploads included.
func (s *stack) serverDir() string {
	if s.ejabberd != nil {
		return s.ejabberd.Dir()
	}
	return s.prosody.DataDir()
}

// setPassword changes an account's password on the server.
func (s *stack) setPassword(t testing.TB, localpart, pw string) {
	t.Helper()
	if s.ejabberd != nil {
		s.ejabberd.SetPassword(t, localpart, pw)
		return
	}
	// Prosody: registering the account again overwrites the password.
	s.prosody.CreateAccount(t, localpart, pw)
}

// peer logs in as account with the given resource.
func (s *stack) peer(t testing.TB, account jid.JID, password, resource string) *harness.Peer {
	t.Helper()
	full, err := account.WithResource(resource)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	p, err := harness.DialPeer(ctx, s.xmpp.Addr(), s.xmpp.CertFile(), full, password)
	if err != nil {
		t.Fatal(err)
	}
	s.t.Cleanup(p.Close)
	return p
}

// login runs the bot's login flow for account in the user's management room.
func (s *stack) login(t testing.TB, u *harness.MatrixUser, room id.RoomID, account jid.JID, password string) (harness.LoginResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	return u.Login(ctx, room, s.bot, harness.LoginInput{
		JID:          account.String(),
		Password:     password,
		Server:       s.xmpp.Addr(),
		InsecureHost: "localhost",
	})
}

// loginUser opens u's management room with the bot and logs u in to account there; it
// returns the room.
func (s *stack) loginUser(ctx context.Context, t testing.TB, u *harness.MatrixUser, account jid.JID, password string) id.RoomID {
	t.Helper()
	mgmt, err := u.OpenManagementRoom(ctx, s.bot)
	if err != nil {
		t.Fatal(err)
	}
	cur := u.Cursor(mgmt)
	if _, err := s.login(t, u, mgmt, account, password); err != nil {
		t.Fatal(err)
	}
	// The login's session is available (presence sent) once it reports CONNECTED. A message to
	// the account before that goes to its other clients only, or, on ejabberd, nowhere near
	// the bridge (no carbon for a resource without presence).
	if _, _, err := u.WaitEvent(ctx, mgmt, cur, harness.StateNotice(account.String(), "CONNECTED")); err != nil {
		t.Fatalf("no CONNECTED state notice for %s: %v", account, err)
	}
	return mgmt
}

func (s *stack) ghost(contact jid.JID) id.UserID {
	return harness.GhostMXID(contact.Bare().String(), "localhost")
}

// query runs a query on the bridge's database (read-only use) and returns the first column of
// every row.
func (s *stack) query(t testing.TB, q string, args ...any) []string {
	t.Helper()
	db, q := s.openDB(t, true, q)
	defer db.Close()
	ctx, cancel := stepCtx()
	defer cancel()
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s on the bridge's %s database: %v", q, s.backend, err)
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
	return out
}

// openDB opens the bridge's database (read-only for SQLite when ro) and rewrites q's
// placeholders for its dialect.
func (s *stack) openDB(t testing.TB, ro bool, q string) (*sql.DB, string) {
	t.Helper()
	dsn := "file:" + filepath.Join(s.cfg.Dir, "bridge.db") + "?_busy_timeout=5000"
	if ro {
		dsn += "&mode=ro"
	}
	driver := "sqlite3"
	if s.cfg.PostgresURI != "" {
		driver, dsn = "postgres", s.cfg.PostgresURI
		q = pgPlaceholders(q)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db, q
}

// pgPlaceholders turns ? into $1, $2, … for PostgreSQL.
func pgPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func stepCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), stepTimeout)
}

// uniq makes message bodies unique per test run, so that a match is never an older message.
func uniq(prefix string) string {
	return fmt.Sprintf("%s %d", prefix, time.Now().UnixNano())
}

// roomEvents is every message event of room the user can read, each once by its event id:
// /messages (the server's order) merged with the user's /sync timeline (mergeTimelines: an event
// only /sync has goes right after its /sync predecessor). Dendrite's /messages can leave out
// events that are in the room (TestMUCHistory once saw two of six missing for its whole 30 s
// poll; the kill tests saw it first), and a /sync timeline can be limited; the union of the two
// has every event either shows, and never one event twice, so exact counts stay exact.
func roomEvents(ctx context.Context, t *testing.T, u *harness.MatrixUser, room id.RoomID) []*event.Event {
	t.Helper()
	msgs, err := u.RoomMessages(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	var synced []*event.Event
	for _, evt := range u.Timeline(room) {
		if evt.Type == event.EventMessage {
			synced = append(synced, evt)
		}
	}
	merged, added := mergeTimelines(msgs, synced)
	if len(added) > 0 {
		t.Logf("%d events of %s only in the /sync timeline (not in /messages): %s", len(added), room, shortList(added[:min(len(added), 10)]))
	}
	return merged
}

// countBodies counts the messages of room (roomEvents) whose body equals body.
func countBodies(t *testing.T, u *harness.MatrixUser, room id.RoomID, body string) int {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	msgs := roomEvents(ctx, t, u, room)
	n := 0
	for _, evt := range msgs {
		if harness.Body(evt) == body {
			n++
		}
	}
	return n
}

// peerCount counts the messages p received (not carbons) whose body equals body.
func peerCount(p *harness.Peer, body string) int {
	n := 0
	for _, m := range p.Received() {
		if !m.Carbon && m.Body == body {
			n++
		}
	}
	return n
}

func bodyIs(body string) func(harness.ReceivedMessage) bool {
	return func(m harness.ReceivedMessage) bool { return !m.Carbon && m.Body == body }
}

func shortList(ss []string) string { return strings.Join(ss, "; ") }

// keepLogs copies the whole logs of a failed stack (bridge, XMPP server, Dendrite) to
// $MXOMEMO_E2E_KEEP_LOGS/<test name>/, as the temporary directories go with the test. It runs
// before the servers stop, so their logs are complete up to the failure.
func (s *stack) keepLogs(t testing.TB) {
	root := os.Getenv("MXOMEMO_E2E_KEEP_LOGS")
	if root == "" {
		return
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keeping logs: %v", err)
		return
	}
	files := map[string]string{"bridge.log": s.bridge.LogPath(), "dendrite.log": filepath.Join(s.dendrite.Dir(), "dendrite.log")}
	if s.prosody != nil {
		files["prosody.log"] = filepath.Join(s.prosody.Dir(), "prosody.log")
	}
	if s.ejabberd != nil {
		files["ejabberd.log"] = filepath.Join(s.ejabberd.Dir(), "logs", "ejabberd.log")
	}
	for name, src := range files {
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			t.Logf("keeping %s: %v", name, err)
		}
	}
	t.Logf("logs kept in %s", dir)
}
