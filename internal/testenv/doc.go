// Package testenv starts the real servers the bridge's end-to-end tests run against: Prosody (XMPP),
// Dendrite (Matrix homeserver) and PostgreSQL, each on loopback with free-picked ports, under a
// temporary directory, and stopped again when the test (or the test binary) ends.
//
// Per test:
//
//	p := testenv.StartProsody(t, testenv.ProsodyOptions{})
//	alice := p.CreateAccount(t, "alice", "alicepw") // "alice@localhost"
//	d := testenv.StartDendrite(t, testenv.DendriteOptions{Registration: regPath})
//	uid, tok := d.RegisterUser(t, "bob", "bobpassword")
//	pg := testenv.StartPostgres(t)
//	uri := pg.CreateDatabase(t, "bridge")
//
// Once per test binary (servers started on first use, stopped after all tests):
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//	func TestX(t *testing.T) { p := testenv.SharedProsody(t) ... }
//
// Independent peers for the OMEMO e2e tests (scripts/peers): [StartMatrixPeer] (matrix-nio E2EE
// client reading and writing Megolm rooms), [StartLibervia] (OMEMO 0.3 and 2) and [StartProfanity]
// (OMEMO 0.3), each stopped when the test ends.
//
// When a test fails, the tail of each server's log is written to the test log; when a server does
// not start, the failure message carries its log.
//
// The servers need Debian packages (scripts/install-deps.sh) and a Dendrite binary, built once into
// a cache dir by scripts/build-dendrite.sh (StartDendrite runs it when the binary is missing).
// The bridge must accept Prosody's self-signed certificate only through its insecure-host option;
// [Prosody.CertFile] is there for clients that want to pin it instead.
//
// The same code backs the scripts/testenv command (cmd/testenv), which keeps the servers running
// under .testenv/ for the demo.
//
// This package is for tests and scripts only; the bridge must never import it.
package testenv
