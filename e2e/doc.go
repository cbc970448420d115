// Package e2e holds the end-to-end tests: the bridge binary against real Prosody, Dendrite and
// PostgreSQL servers started by internal/testenv, with a Matrix user (mautrix.Client) and XMPP
// peers (mellium) on either side. They run in `go test -tags goolm ./...`.
package e2e
