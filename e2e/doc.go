// Package e2e holds the end-to-end tests: the real bridge binary against real Prosody, Dendrite
// and PostgreSQL servers started by internal/testenv, with a Matrix user (mautrix.Client, and
// matrix-nio for encrypted rooms) and XMPP peers (mellium) on either side. They run in
// `go test -tags goolm ./...` (`make test`); no build tag is needed.
//
// Each run builds ./cmd/bridge once (go build -tags goolm). For each database (SQLite and
// PostgreSQL) a stack of Prosody, Dendrite with the bridge's appservice registration and the
// bridge (started with --ignore-unsupported-server, as Dendrite reports spec v1.2) runs the
// scenario of TestBridge step by step; TestEncryptedPortal checks Megolm portals on Dendrite.
// Steps wait on events with deadlines, never on fixed sleeps; negative checks ("not echoed",
// "not twice") use a later message as a barrier.
//
// The harness in e2e/internal/harness is shared with the demo (e2e/cmd/demo, scripts/demo.sh).
//
// Environment:
//
//	MXOMEMO_E2E_BRIDGE_BIN  use this bridge binary instead of building ./cmd/bridge
//	MXOMEMO_E2E_LOG         print the whole bridge log of every stack (by default only the tail, on failure)
//	MXOMEMO_E2E_KEEP_LOGS   copy the whole logs of a failed stack (bridge, XMPP server, Dendrite) to this directory
package e2e
